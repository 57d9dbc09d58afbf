"""What the benchmark scripts share: the repository root, the prompt lists, burnchat's replies."""

import json
import struct
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def read_prompts(name):
    """The messages of bench/<name>, one per line."""
    return [line.strip() for line in (ROOT / "bench" / name).read_text().splitlines() if line.strip()]


def burnchat_replies(burnchat, bundle, prompts):
    """Each reply as `burnchat reply --json` gives it (greedy: tokens, and scores, each
    token's probability)."""
    out = subprocess.run([burnchat, "reply", "--json", "--weights", bundle, *prompts],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def burnchat_tokens(burnchat, bundle, prompts):
    """The greedy tokens of each reply, from `burnchat reply --json`."""
    return [reply["tokens"] for reply in burnchat_replies(burnchat, bundle, prompts)]


def read_safetensors(path):
    """A safetensors file as {name: float32 numpy array}, header order kept. An int8 bundle's
    matrices come back as the float copies burnchat holds (src/quant.rs): q × scale[row] in
    float32, rounded to float16; their `_scale` tensors are consumed. (burnchat's replies
    multiply by the int8 values in integers instead: bench/int8.py.)"""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    dtypes = {"F32": np.float32, "F16": np.float16, "I8": np.int8}
    raw = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        array = np.frombuffer(data[8 + n + start : 8 + n + end], dtype=dtypes[meta["dtype"]])
        raw[name] = array.reshape(meta["shape"])
    out = {}
    for name, array in raw.items():
        if name.endswith("_scale"):
            continue
        if array.dtype == np.int8:
            scale = raw[name + "_scale"].astype(np.float32)
            array = (array.astype(np.float32) * scale[:, None]).astype(np.float16)
        out[name] = array.astype(np.float32)
    return out


def read_int8_matrices(path):
    """An int8 bundle's matrices as stored: {name: (q [out, in] int8, scale [out] float32)},
    as torch tensors."""
    import torch

    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    def tensor(name):
        meta = header[name]
        start, end = meta["data_offsets"]
        dtype = {"F32": np.float32, "I8": np.int8}[meta["dtype"]]
        array = np.frombuffer(data[8 + n + start : 8 + n + end], dtype=dtype)
        return torch.from_numpy(array.reshape(meta["shape"]).copy())
    return {name: (tensor(name), tensor(name + "_scale"))
            for name, meta in header.items()
            if name != "__metadata__" and meta["dtype"] == "I8"}


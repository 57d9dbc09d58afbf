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


def burnchat_tokens(burnchat, bundle, prompts):
    """The greedy tokens of each reply, from `burnchat reply --json`."""
    out = subprocess.run([burnchat, "reply", "--json", "--weights", bundle, *prompts],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line)["tokens"] for line in out.splitlines()]


def read_safetensors(path):
    """A safetensors file as {name: float32 numpy array}, header order kept."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    dtypes = {"F32": np.float32, "F16": np.float16}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        array = np.frombuffer(data[8 + n + start : 8 + n + end], dtype=dtypes[meta["dtype"]])
        out[name] = array.astype(np.float32).reshape(meta["shape"])
    return out

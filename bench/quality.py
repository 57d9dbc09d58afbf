"""How often a bundle stored at lower precision gives the same greedy reply as the f32 one.

Run by hand from the repository root (never in CI), burnchat built in release mode:

    python bench/quality.py REFERENCE_DIR CANDIDATE_DIR [CANDIDATE_DIR ...]

Every bundle answers the messages of bench/quality_prompts.txt (500 messages from the
validation conversations of the Chit-Chat corpus, every word in the bundled vocabulary) with
`burnchat reply --json`; a reply counts as identical when its greedy tokens are. The mean
absolute score difference is over the tokens of the identical replies (a token's score is
its probability).
"""

import argparse
import json
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

from common import ROOT, burnchat_replies, read_prompts, read_safetensors

PROMPTS = read_prompts("quality_prompts.txt")


def int8_round_trip(bundle, out):
    """A copy of `bundle` as an int8 format would compute it: every 2-D weight quantised to
    int8 with one absmax scale per row (PyTorch's layout: per output unit, per word for the
    embedding) and dequantised back, stored as f32; 1-D tensors (biases, attn.v) unchanged."""
    tensors = read_safetensors(Path(bundle) / "model.safetensors")
    int8_bytes = 0  # what an int8 file would hold: 1 byte a weight, 4 a scale or 1-D value
    for name, w in tensors.items():
        if w.ndim == 2:
            scale = np.abs(w).max(axis=1, keepdims=True) / 127.0
            scale[scale == 0] = 1.0
            w = (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)
            int8_bytes += w.size + 4 * w.shape[0]
        else:
            int8_bytes += 4 * w.size
        tensors[name] = w
    new_header, blobs, offset = {}, [], 0
    for name, w in tensors.items():
        blob = np.ascontiguousarray(w).tobytes()
        new_header[name] = {"dtype": "F32", "shape": list(w.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(new_header).encode()
    encoded += b" " * (-len(encoded) % 8)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.safetensors").write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))
    config = json.loads((Path(bundle) / "config.json").read_text())
    config["dtype"] = "f32"
    (out / "config.json").write_text(json.dumps(config))
    shutil.copy(Path(bundle) / "voc.json", out / "voc.json")
    return out, int8_bytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("candidates", nargs="+")
    parser.add_argument("--burnchat", default=str(ROOT / "target" / "release" / "burnchat"))
    parser.add_argument("--int8", action="store_true",
                        help="also compare the reference quantised to int8 per row and back")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    int8 = None
    if args.int8:
        int8, int8_bytes = int8_round_trip(args.reference, Path(tmp.name) / "int8-round-trip")
        args.candidates.append(str(int8))
    reference = burnchat_replies(args.burnchat, args.reference, PROMPTS)
    print(f"{len(PROMPTS)} prompts; reference {args.reference}")
    print("| bundle | dtype | model.safetensors bytes | identical replies | mean abs. score difference |")
    print("|---|---|---|---|---|")
    for bundle in [args.reference, *args.candidates]:
        dtype = json.loads((Path(bundle) / "config.json").read_text()).get("dtype", "f32")
        size = f"{(Path(bundle) / 'model.safetensors').stat().st_size:,}"
        label = bundle
        if int8 is not None and Path(bundle) == int8:
            label, dtype, size = "the reference", "int8 per row, round trip", f"{int8_bytes:,} (as int8)"
        replies = burnchat_replies(args.burnchat, bundle, PROMPTS)
        same = [(a, b) for a, b in zip(reference, replies) if a["tokens"] == b["tokens"]]
        # Over the tokens of the identical replies: each token's probability, as scored.
        gaps = [abs(x - y) for a, b in same for x, y in zip(a["scores"], b["scores"])]
        print(f"| {label} | {dtype} | {size} | {len(same)}/{len(PROMPTS)} ({100 * len(same) / len(PROMPTS):.1f}%) "
              f"| {sum(gaps) / max(len(gaps), 1):.2e} |")


if __name__ == "__main__":
    main()

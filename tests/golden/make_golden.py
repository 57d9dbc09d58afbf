"""PyTorch's replies to tests/golden/inputs.txt with the bundled model: tests/golden/replies.json.

The bundled weights (weights/, the tutorial's state-dict names and layouts) are loaded into
the tutorial's own model code (tests/fixtures/make_fixtures.py) and answer with its
GreedySearchDecoder in float32; tests/golden.rs (native) and tests/web.rs (the wasm module
in Chromium) must give the same tokens and words, and scores within 1e-4. Run by hand from
the repository root with torch installed: `make golden`.
"""

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from make_fixtures import EOS_token, PAD_token, GreedySearchDecoder, greedy  # noqa: E402
from reply_speed import bundled_model  # noqa: E402


def main():
    torch.set_num_threads(1)
    voc, _, encoder, decoder, _ = bundled_model(int8_products=True)
    encoder.eval()
    decoder.eval()
    searcher = GreedySearchDecoder(encoder, decoder, decoder.n_layers)
    inputs = (ROOT / "tests" / "golden" / "inputs.txt").read_text().splitlines()
    lines = []
    with torch.no_grad():
        for text in inputs:
            r = greedy(searcher, voc, text)
            words = [voc.index2word[t] for t in r["tokens"] if t not in (EOS_token, PAD_token)]
            reply = {"input": text, "reply": " ".join(words), "tokens": r["tokens"],
                     "scores": r["scores"], "unknown": r["unknown"]}
            lines.append(json.dumps(reply))
    (ROOT / "tests" / "golden" / "replies.json").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Milliseconds per training iteration: PyTorch (the tutorial's model and `train` step) against
`burnchat train`, same model size, batch size, sentence lengths and thread count, in one run.

Run by hand from the repository root (never in CI), with torch installed and burnchat built
with `cargo build --release --features train` (what `make train` runs):

    python bench/train_speed.py --threads 2 --rounds 3

Each round runs burnchat, then PyTorch, at each size; the machine's speed drifts between
minutes, so each round's ratio is printed and the median of the ratios summarises.

Both train on the same synthetic corpus (random words, 1 to 9 per sentence), written as a
Chit-Chat `dataset.json` for burnchat. Sizes: the tutorial's (hidden 500, 7,836 words) and
the bundled model's (hidden 256, 4,874 words); both 2+2 layers, dot attention, batch 64.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from make_fixtures import EOS_token, PAD_token, SOS_token, EncoderRNN, LuongAttnDecoderRNN  # noqa: E402

SIZES = [("tutorial", 500, 7836), ("bundled", 256, 4874)]


def word(i):
    """A letters-only name for word i (digits are not words after normalisation)."""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(97 + r) + s
    return "w" + s


def corpus(num_words, conversations, rng):
    """Conversations of random sentences over num_words - 3 words (PAD, SOS, EOS aside)."""
    out = {}
    for c in range(conversations):
        lines = [" ".join(word(rng.randrange(num_words - 3)) for _ in range(rng.randint(1, 9)))
                 for _ in range(rng.randint(2, 6))]
        out[f"c{c}"] = {"messages": [[{"text": t}] for t in lines]}
    return out


def torch_ms_per_iteration(hidden, num_words, pairs, iterations, batch_size=64):
    """The tutorial's `train` step (teacher forcing, masked NLL, Adam, clipping at 50)."""
    embedding = nn.Embedding(num_words, hidden)
    encoder = EncoderRNN(hidden, embedding, 2, 0.1)
    decoder = LuongAttnDecoderRNN("dot", embedding, hidden, num_words, 2, 0.1)
    encoder_opt = torch.optim.Adam(encoder.parameters(), lr=1e-4)
    decoder_opt = torch.optim.Adam(decoder.parameters(), lr=5e-4)
    encoder.train()
    decoder.train()

    def step(batch):
        batch.sort(key=lambda p: len(p[0]), reverse=True)
        inputs = [p[0] + [EOS_token] for p in batch]
        targets = [p[1] + [EOS_token] for p in batch]
        lengths = torch.tensor([len(s) for s in inputs])
        pad = lambda seqs: torch.LongTensor(  # noqa: E731
            [s + [PAD_token] * (max(map(len, seqs)) - len(s)) for s in seqs]).t()
        inp, target = pad(inputs), pad(targets)
        mask = target != PAD_token
        encoder_opt.zero_grad()
        decoder_opt.zero_grad()
        enc_out, enc_hidden = encoder(inp, lengths)
        dec_input = torch.LongTensor([[SOS_token] * len(batch)])
        dec_hidden = enc_hidden[:2]
        loss = 0
        for t in range(target.shape[0]):
            out, dec_hidden = decoder(dec_input, dec_hidden, enc_out)
            dec_input = target[t].view(1, -1)
            nll = -torch.log(torch.gather(out, 1, target[t].view(-1, 1)).squeeze(1))
            loss = loss + nll.masked_select(mask[t]).mean()
        loss.backward()
        nn.utils.clip_grad_norm_(encoder.parameters(), 50)
        nn.utils.clip_grad_norm_(decoder.parameters(), 50)
        encoder_opt.step()
        decoder_opt.step()

    rng = random.Random(0)
    for _ in range(3):
        step([rng.choice(pairs) for _ in range(batch_size)])
    start = time.perf_counter()
    for _ in range(iterations):
        step([rng.choice(pairs) for _ in range(batch_size)])
    return (time.perf_counter() - start) * 1000 / iterations


def burnchat_ms_per_iteration(binary, dataset, hidden, iterations, threads):
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        result = subprocess.run(
            [binary, "train", dataset, "--hidden-size", str(hidden), "--min-count", "1",
             "--iterations", str(iterations), "--valid-every", "100000",
             "--checkpoint-every", "100000", "--valid-fraction", "0",
             "--out", f"{tmp}/w", "--checkpoint", f"{tmp}/c", "--report", f"{tmp}/r"],
            env=env, capture_output=True, text=True, check=True)
        words = re.search(r"(\d+) words", result.stderr).group(1)
        ms = re.search(r"(\d+) ms per iteration", result.stderr).group(1)
        return float(ms), int(words)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1,
                        help="times each runtime runs at each size, taking turns")
    parser.add_argument("--burnchat", default=str(ROOT / "target" / "release" / "burnchat"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch 64, "
          f"{args.iterations} timed iterations, {args.rounds} rounds, {args.burnchat}")
    print("| size | hidden | words | round | PyTorch ms/it | burnchat ms/it | burnchat / PyTorch |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for name, hidden, num_words in SIZES:
            rng = random.Random(1)
            data = corpus(num_words, 3000, rng)
            path = f"{tmp}/{name}.json"
            Path(path).write_text(json.dumps(data))
            index = {word(i): i + 3 for i in range(num_words - 3)}
            pairs = []
            for conv in data.values():
                lines = [[index[w] for w in m[0]["text"].split(" ")] for m in conv["messages"]]
                pairs += list(zip(lines, lines[1:]))
            runs.append((name, hidden, num_words, path, pairs))
        ratios = {name: [] for name, *_ in runs}
        for r in range(args.rounds):
            for name, hidden, num_words, path, pairs in runs:
                ours, words = burnchat_ms_per_iteration(
                    args.burnchat, path, hidden, args.iterations, args.threads)
                theirs = torch_ms_per_iteration(hidden, num_words, pairs, args.iterations)
                ratios[name].append(ours / theirs)
                print(f"| {name} | {hidden} | {words} | {r + 1} | {theirs:.0f} | {ours:.0f} "
                      f"| {ours / theirs:.2f} |", flush=True)
    for name, values in ratios.items():
        values.sort()
        print(f"{name}: median burnchat / PyTorch {values[len(values) // 2]:.2f} "
              f"(from {values[0]:.2f} to {values[-1]:.2f})")


if __name__ == "__main__":
    main()

"""Milliseconds per reply: eager PyTorch, the tutorial's TorchScript path and `burnchat bench`,
same model, same messages (bench/prompts.txt), same thread count, in one run.

Run by hand from the repository root (never in CI), with torch installed and burnchat built
in release mode (`cargo build --release`, add `--features flex` for the flex backend):

    python bench/reply_speed.py --threads 1

Two sizes: the tutorial's (hidden 500, 2+2 layers, dot attention, 7,836 words; random
weights, written as a tutorial checkpoint and imported with `burnchat import`) and the bundled
model (weights/, read by this script straight from the safetensors file). `tutorial-f16` is
the tutorial's model converted to an f16 bundle (`burnchat convert`); PyTorch then runs the
same model, its weights rounded to f16 and computed in f32. `tutorial-int8` is the same
converted to int8, as burnchat ships its weights: PyTorch runs its matrices dequantised
(burnchat multiplies in integers, bench/int8.py, so a token may differ). PyTorch's side is
the tutorial's `evaluate`: normalise, index, encoder, `GreedySearchDecoder` for MAX_LENGTH
steps, words. burnchat stops at EOS, so the table gives milliseconds per token as well; with
random weights EOS is rare and both run 10 steps.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from common import ROOT, burnchat_tokens, read_int8_matrices, read_prompts, read_safetensors

sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from make_fixtures import (  # noqa: E402
    EOS_token,
    MAX_LENGTH,
    SOS_token,
    EncoderRNN,
    GreedySearchDecoder,
    LuongAttnDecoderRNN,
    Voc,
    greedy,
    normalizeString,
)

PROMPTS = read_prompts("prompts.txt")
TUTORIAL_WORDS = 7836


class ScriptedGreedySearchDecoder(nn.Module):
    """The TorchScript tutorial's searcher: typed for `torch.jit.script`, calling the traced
    encoder and decoder."""

    def __init__(self, encoder, decoder, decoder_n_layers: int):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self._decoder_n_layers = decoder_n_layers
        self._SOS_token = SOS_token

    def forward(self, input_seq: torch.Tensor, input_length: torch.Tensor, max_length: int):
        encoder_outputs, encoder_hidden = self.encoder(input_seq, input_length)
        decoder_hidden = encoder_hidden[: self._decoder_n_layers]
        decoder_input = torch.ones(1, 1, dtype=torch.long) * self._SOS_token
        all_tokens = torch.zeros([0], dtype=torch.long)
        all_scores = torch.zeros([0])
        for _ in range(max_length):
            decoder_output, decoder_hidden = self.decoder(decoder_input, decoder_hidden, encoder_outputs)
            decoder_scores, decoder_input = torch.max(decoder_output, dim=1)
            all_tokens = torch.cat((all_tokens, decoder_input), dim=0)
            all_scores = torch.cat((all_scores, decoder_scores), dim=0)
            decoder_input = torch.unsqueeze(decoder_input, 0)
        return all_tokens, all_scores


def evaluate(searcher, voc, sentence):
    """The tutorial's `evaluate` (unknown words dropped, as burnchat does): tokens up to EOS."""
    return greedy(searcher, voc, sentence)["tokens"]


def time_replies(searcher, voc, rounds):
    """One warm-up pass, then `rounds` timed passes, as `burnchat bench` does."""
    with torch.no_grad():
        for p in PROMPTS:
            evaluate(searcher, voc, p)
        times = []
        for _ in range(rounds):
            for p in PROMPTS:
                started = time.perf_counter()
                evaluate(searcher, voc, p)
                times.append((time.perf_counter() - started) * 1e3)
    times.sort()
    return {
        "median_ms": float(np.percentile(times, 50)),
        "p90_ms": float(np.percentile(times, 90)),
        "mean_ms": statistics.fmean(times),
        "steps": MAX_LENGTH,
    }


def build(hidden, num_words, enc_layers, dec_layers, attn):
    embedding = nn.Embedding(num_words, hidden)
    encoder = EncoderRNN(hidden, embedding, enc_layers, 0.1)
    decoder = LuongAttnDecoderRNN(attn, embedding, hidden, num_words, dec_layers, 0.1)
    return embedding, encoder, decoder


def tutorial_model(workdir, burnchat):
    """Random weights at the tutorial's size, as a tutorial checkpoint, imported."""
    torch.manual_seed(0)
    voc = Voc("bench")
    for p in PROMPTS:
        voc.addSentence(normalizeString(p))
    filler = 0
    while voc.num_words < TUTORIAL_WORDS:
        voc.addWord("filler" + "".join(chr(97 + int(d)) for d in str(filler)))
        filler += 1
    embedding, encoder, decoder = build(500, voc.num_words, 2, 2, "dot")
    checkpoint = workdir / "tutorial.tar"
    torch.save(
        {
            "iteration": 0,
            "en": encoder.state_dict(),
            "de": decoder.state_dict(),
            "voc_dict": voc.__dict__,
            "embedding": embedding.state_dict(),
        },
        checkpoint,
    )
    bundle = workdir / "tutorial"
    subprocess.run([burnchat, "import", checkpoint, "--out", bundle], check=True, capture_output=True)
    return voc, embedding, encoder, decoder, bundle


def to_f16(bundle, burnchat, *modules):
    """`bundle` converted to f16 by burnchat; `modules`' weights rounded to f16 to match."""
    converted = bundle.parent / (bundle.name + "-f16")
    subprocess.run([burnchat, "convert", bundle, "--out", converted, "--dtype", "f16"],
                   check=True, capture_output=True)
    with torch.no_grad():
        for module in modules:
            for parameter in module.parameters():
                parameter.copy_(parameter.half().float())
    return converted


def to_int8(bundle, burnchat):
    """`bundle` converted to int8 by burnchat (`bundled_model` then reads it into PyTorch,
    its matrices dequantised)."""
    converted = bundle.parent / (bundle.name + "-int8")
    subprocess.run([burnchat, "convert", bundle, "--out", converted, "--dtype", "int8"],
                   check=True, capture_output=True)
    return converted


def bundled_model(directory=ROOT / "weights", int8_products=False):
    """weights/ (or another bundle directory, such as weights/backward/) in PyTorch: the
    bundle's names and layouts are the tutorial's. An int8 bundle's weights are its matrices
    dequantised (as fast as float weights); with `int8_products` the products are burnchat's
    integer ones instead (bench/int8.py, slow), for references of its replies and scores."""
    config = json.loads((directory / "config.json").read_text())
    index2word = json.loads((directory / "voc.json").read_text())["index2word"]
    voc = Voc("bundled")
    for word in index2word[3:]:
        voc.addWord(word)
    embedding, encoder, decoder = build(
        config["hidden_size"], config["num_words"], config["encoder_n_layers"],
        config["decoder_n_layers"], config["attn_model"],
    )
    tensors = {k: torch.from_numpy(v) for k, v in read_safetensors(directory / "model.safetensors").items()}
    embedding.weight.data.copy_(tensors["embedding.weight"])
    for prefix, module in (("encoder.", encoder), ("decoder.", decoder)):
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        state["embedding.weight"] = tensors["embedding.weight"]
        module.load_state_dict(state)
    if int8_products and config["dtype"] == "int8":
        import int8
        int8.emulate(encoder, decoder, read_int8_matrices(directory / "model.safetensors"))
    return voc, embedding, encoder, decoder, directory


def torchscript(encoder, decoder, voc, dec_layers):
    """The TorchScript tutorial's deployment: trace encoder and decoder, script the searcher."""
    ids = [voc.word2index[w] for w in normalizeString(PROMPTS[0]).split(" ")] + [EOS_token]
    seq = torch.LongTensor([ids]).transpose(0, 1)
    length = torch.tensor([len(ids)])
    traced_encoder = torch.jit.trace(encoder, (seq, length))
    outputs, hidden = encoder(seq, length)
    decoder_input = torch.LongTensor([[SOS_token]])
    traced_decoder = torch.jit.trace(decoder, (decoder_input, hidden[:dec_layers], outputs))
    return torch.jit.script(ScriptedGreedySearchDecoder(traced_encoder, traced_decoder, dec_layers))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burnchat", action="append",
                        help="a burnchat binary; repeat to compare builds (default target/release/burnchat)")
    parser.add_argument("--sizes", default="tutorial,tutorial-f16,tutorial-int8,bundled")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time every runtime this many times, taking turns; report medians")
    parser.add_argument("--workdir", help="keep the tutorial checkpoint and bundle here (default: a temporary folder)")
    args = parser.parse_args()
    binaries = args.burnchat or [str(ROOT / "target" / "release" / "burnchat")]
    torch.set_num_threads(args.threads)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.workdir:
            tmp = args.workdir
            Path(tmp).mkdir(parents=True, exist_ok=True)
        for size in args.sizes.split(","):
            if size in ("tutorial", "tutorial-f16", "tutorial-int8"):
                voc, embedding, encoder, decoder, bundle = tutorial_model(Path(tmp), binaries[0])
                dec_layers = 2
                if size == "tutorial-f16":
                    bundle = to_f16(bundle, binaries[0], embedding, encoder, decoder)
                if size == "tutorial-int8":
                    bundle = to_int8(bundle, binaries[0])
                    voc, embedding, encoder, decoder, _ = bundled_model(bundle)
            else:
                voc, embedding, encoder, decoder, bundle = bundled_model()
                dec_layers = decoder.n_layers
            encoder.eval()
            decoder.eval()
            eager = GreedySearchDecoder(encoder, decoder, dec_layers)
            with torch.no_grad():
                scripted = torchscript(encoder, decoder, voc, dec_layers)
                same = sum(
                    evaluate(eager, voc, p) == t
                    for p, t in zip(PROMPTS, burnchat_tokens(binaries[0], bundle, PROMPTS))
                )
            # Runtimes take turns, `--repeat` times, so that a slow spell of a shared machine
            # does not fall on one of them alone; each figure is the median over the turns.
            turns = {}
            for _ in range(args.repeat):
                turns.setdefault("eager", []).append(time_replies(eager, voc, args.rounds))
                turns.setdefault("torchscript", []).append(time_replies(scripted, voc, args.rounds))
                for binary in binaries:
                    bench = subprocess.run(
                        [binary, "bench", "--weights", bundle, "--threads", str(args.threads),
                         "--rounds", str(args.rounds), "--json"],
                        check=True, capture_output=True, text=True,
                    )
                    report = json.loads(bench.stdout)
                    latency = report["latency"]
                    name = "burnchat " + report["backend"]
                    if len(binaries) > 1:
                        name += f" ({binary})"
                    turns.setdefault(name, []).append(
                        dict(latency, steps=latency["mean_tokens"]))
            results = {name: {key: statistics.median(t[key] for t in runs) for key in runs[0]}
                       for name, runs in turns.items()}
            rows.append((size, voc.num_words, embedding.embedding_dim, same, results))

    print(f"torch {torch.__version__}, {args.threads} thread(s), {len(PROMPTS)} prompts x {args.rounds} rounds"
          f", {args.repeat} turn(s)")
    print("| model | runtime | median ms | p90 ms | steps per reply | ms per step | vs TorchScript (median) |")
    print("|---|---|---|---|---|---|---|")
    for size, words, hidden, same, results in rows:
        ts = results["torchscript"]["median_ms"]
        for name, r in results.items():
            print(f"| {size} (hidden {hidden}, {words} words) | {name} | {r['median_ms']:.2f} | "
                  f"{r['p90_ms']:.2f} | {r['steps']:.1f} | {r['mean_ms'] / r['steps']:.3f} | "
                  f"{r['median_ms'] / ts:.2f} |")
        print(f"| {size} | burnchat's tokens equal PyTorch's | {same}/{len(PROMPTS)} | | | | |")


if __name__ == "__main__":
    main()

"""How the searches change the bundled model's replies: diversity over many messages, and the
replies to everyday messages side by side for a person to judge.

Run by hand from the repository root (never in CI), burnchat built in release mode:

    python bench/decoding.py [--weights DIR] [--show]

For each search below, every message of bench/quality_prompts.txt (500 messages from the
validation conversations of the Chit-Chat corpus) is answered with `burnchat reply --json`,
and the table reports over those replies:
  - distinct-1 and distinct-2: distinct words and distinct word pairs over all replies'
    words and pairs (Li et al. 2016), higher is more varied;
  - top reply: the share of replies equal to the single most common reply;
  - distinct replies: how many of the 500 differ;
  - words: mean words per reply; ms: mean milliseconds per reply (one process, 2 threads).
--show prints the replies (as `text`) to bench/everyday.txt under each search.
"""

import argparse
import collections
import json
import subprocess
import time

from common import ROOT, read_prompts

SEARCHES = {
    "greedy": [],
    "beam 5": ["--search", "beam", "--beam-width", "5"],
    "beam 10, no repeated bigram": ["--search", "beam", "--beam-width", "10", "--no-repeat-ngram", "2"],
    "beam 10, bigram, anti-LM 0.3": ["--search", "beam", "--beam-width", "10", "--no-repeat-ngram", "2",
                                     "--anti-lm", "0.3"],
    "beam 10, bigram, anti-LM 0.5": ["--search", "beam", "--beam-width", "10", "--no-repeat-ngram", "2",
                                     "--anti-lm", "0.5"],
    "beam 10, bigram, anti-LM 0.5, min 2": ["--search", "beam", "--beam-width", "10", "--no-repeat-ngram", "2",
                                            "--anti-lm", "0.5", "--min-length", "2"],
    "beam 10, bigram, anti-LM 0.7, min 2": ["--search", "beam", "--beam-width", "10", "--no-repeat-ngram", "2",
                                            "--anti-lm", "0.7", "--min-length", "2"],
    "beam 10, bigram, anti-LM 1.0, min 2": ["--search", "beam", "--beam-width", "10", "--no-repeat-ngram", "2",
                                            "--anti-lm", "1.0", "--min-length", "2"],
    "beam 5, bigram, anti-LM 0.5, min 2": ["--search", "beam", "--beam-width", "5", "--no-repeat-ngram", "2",
                                           "--anti-lm", "0.5", "--min-length", "2"],
    "sample T 0.7, top-p 0.9, seed 1": ["--search", "sample", "--temperature", "0.7", "--top-p", "0.9",
                                        "--seed", "1"],
}


def replies(burnchat, weights, flags, prompts):
    started = time.perf_counter()
    out = subprocess.run([burnchat, "reply", "--json", "--weights", weights, *flags, *prompts],
                         capture_output=True, text=True).stdout
    ms = (time.perf_counter() - started) * 1e3 / len(prompts)
    return [json.loads(line) for line in out.splitlines()], ms


def distinct(sentences, n):
    grams = [tuple(s[i:i + n]) for s in sentences for i in range(len(s) - n + 1)]
    return len(set(grams)) / max(len(grams), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "weights"))
    parser.add_argument("--burnchat", default=str(ROOT / "target" / "release" / "burnchat"))
    parser.add_argument("--show", action="store_true")
    parser.add_argument("--only", help="run only the searches whose name contains this")
    args = parser.parse_args()
    prompts = read_prompts("quality_prompts.txt")
    print(f"{len(prompts)} messages of bench/quality_prompts.txt; bundle {args.weights}\n")
    print("| search | distinct-1 | distinct-2 | top reply | distinct replies | words | ms |")
    print("|---|---|---|---|---|---|---|")
    searches = {k: v for k, v in SEARCHES.items() if args.only is None or args.only in k}
    for name, flags in searches.items():
        got, ms = replies(args.burnchat, args.weights, flags, prompts)
        words = [r["reply"].split() for r in got if "reply" in r]
        counts = collections.Counter(r["reply"] for r in got if "reply" in r)
        top, top_n = counts.most_common(1)[0]
        print(f"| {name} | {distinct(words, 1):.3f} | {distinct(words, 2):.3f} | "
              f"{top_n / len(words):.1%} ({top!r}) | {len(counts)} | "
              f"{sum(map(len, words)) / len(words):.1f} | {ms:.1f} |")
    if args.show:
        everyday = read_prompts("everyday.txt")
        for name, flags in searches.items():
            got, _ = replies(args.burnchat, args.weights, flags, everyday)
            print(f"\n## {name}")
            for r in got:
                print(f"{r['input']!r:45} -> {r.get('text', r.get('error'))}")


if __name__ == "__main__":
    main()

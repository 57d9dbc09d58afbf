"""How often a bundle stored at lower precision gives the same greedy reply as the f32 one.

Run by hand from the repository root (never in CI), burnchat built in release mode:

    python bench/quality.py REFERENCE_DIR CANDIDATE_DIR [CANDIDATE_DIR ...]

Every bundle answers the messages of bench/quality_prompts.txt (500 messages from the
validation conversations of the Chit-Chat corpus, every word in the bundled vocabulary) with
`burnchat reply --json`; a reply counts as identical when its greedy tokens are.
"""

import argparse
import json
from pathlib import Path

from common import ROOT, burnchat_tokens, read_prompts

PROMPTS = read_prompts("quality_prompts.txt")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("candidates", nargs="+")
    parser.add_argument("--burnchat", default=str(ROOT / "target" / "release" / "burnchat"))
    args = parser.parse_args()
    reference = burnchat_tokens(args.burnchat, args.reference, PROMPTS)
    print(f"{len(PROMPTS)} prompts; reference {args.reference}")
    print("| bundle | dtype | model.safetensors bytes | identical replies |")
    print("|---|---|---|---|")
    for bundle in [args.reference, *args.candidates]:
        dtype = json.loads((Path(bundle) / "config.json").read_text()).get("dtype", "f32")
        size = (Path(bundle) / "model.safetensors").stat().st_size
        same = sum(a == b for a, b in zip(reference, burnchat_tokens(args.burnchat, bundle, PROMPTS)))
        print(f"| {bundle} | {dtype} | {size:,} | {same}/{len(PROMPTS)} ({100 * same / len(PROMPTS):.1f}%) |")


if __name__ == "__main__":
    main()

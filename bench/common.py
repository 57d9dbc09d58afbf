"""What the benchmark scripts share: the repository root, the prompt lists, burnchat's replies."""

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_prompts(name):
    """The messages of bench/<name>, one per line."""
    return [line.strip() for line in (ROOT / "bench" / name).read_text().splitlines() if line.strip()]


def burnchat_tokens(burnchat, bundle, prompts):
    """The greedy tokens of each reply, from `burnchat reply --json`."""
    out = subprocess.run([burnchat, "reply", "--json", "--weights", bundle, *prompts],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line)["tokens"] for line in out.splitlines()]

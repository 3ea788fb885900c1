"""The options of bench/train_throughput.py (``python -m bench.train_throughput --help``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench.bench_models import ARCHS, SIZES
from bench.train_contenders import CONTENDERS, TRL_CONFIGS


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """`NAME:key=value,key=value` → (NAME, {key: value}); values are JSON when they parse (true, 1, 2.0e-05)."""
    name, _, spec = text.partition(":")
    if not name or not spec:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: write NAME:key=value[,key=value]")
    out: dict[str, Any] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: {item!r} is not key=value")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return name, out


def build_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.train_throughput", description=description)
    p.add_argument("--quick", action="store_true", help="fewer tokens, 1 seed, small eval set")
    p.add_argument("--out", default="results/train_throughput.json")
    p.add_argument("--arch", nargs="+", choices=ARCHS, default=["gpt2"],
                   help="model shape(s); several run one after the other, each into <out>_<arch>.json")
    p.add_argument("--size", choices=sorted(SIZES["gpt2"]), default="small")
    p.add_argument("--variant", action="append", type=parse_variant, default=[],
                   help="NAME:key=value,... an extra ours_packed run with these TrainingArguments (threads=N: torch "
                        "threads); repeatable")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--tokens", type=int, default=None, help="useful-token budget per run (default 300k, quick 30k)")
    p.add_argument("--budgets", type=int, nargs="+", default=None,
                   help="several useful-token budgets (e.g. 30000 100000 300000), one after the other, each into "
                        "<out>_30k.json etc.; replaces --tokens")
    p.add_argument("--seeds", type=int, default=None, help="data-order seeds (default 3, quick 1)")
    p.add_argument("--contenders", nargs="+", default=CONTENDERS, choices=CONTENDERS)
    p.add_argument("--trl-configs", nargs="+", default=list(TRL_CONFIGS), choices=list(TRL_CONFIGS))
    p.add_argument("--trl-finalists", type=int, default=2,
                   help="TRL configurations (fastest probes) trained to the full budget; `trl` is the one reaching "
                        "the perplexity target first")
    p.add_argument("--trl-probe-tokens", type=int, default=None, help="tokens per TRL configuration probe")
    p.add_argument("--seed-style-max-seconds", type=float, default=None,
                   help="cap the seed-style run's training time (default none, quick 25 s)")
    p.add_argument("--label-mode", default="-100+sys", choices=["-100+sys", "input"])
    p.add_argument("--batch-size", type=int, default=32,
                   help="examples per step, rounded so that it fills whole packed rows (same tokens per step)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--eval-dialogues", type=int, default=None, help="held-out dialogues (default 600, quick 250)")
    p.add_argument("--evals", type=int, default=6, help="held-out evaluations per run (the ppl curve)")
    p.add_argument("--ppl-target", type=float, default=None,
                   help="held-out ppl target for time-to-target (default: 1.10 × the reference's median final ppl)")
    p.add_argument("--seed-tokens-per-dialogue", type=float, default=40.0,
                   help="mean tokens of one seed-workload dialogue for the 190,000 × 5 epochs projection "
                        "(40 ≈ the synthetic AIHub corpus of bench/preprocess.py)")
    p.add_argument("--limit-dialogues", type=int, default=None, help="use only this many training dialogues")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice = cores); on a shared machine 1 thread "
                        "avoids OpenMP oversubscription stalls")
    return p

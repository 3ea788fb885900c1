"""Where the benchmarks find things (the checkout, the shared data, the cache), offline defaults, small helpers."""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable
from pathlib import Path

from chathuman_hf.data.files import SAMPLE_DIR  # noqa: F401  (re-exported for the bench scripts)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CHATBOT_CSV = SHARED / "data" / "ChatbotData.csv"
# corpora and tokenizers built by the scripts (reused across runs); results/ is git-ignored
CACHE = Path(os.environ.get("CHATHUMAN_BENCH_CACHE") or REPO / "results" / "bench_cache")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process (a recipe, a worker): this checkout first on its PYTHONPATH, plus `extra`.

    `python -m bench.NAME` puts the checkout on this process's path only; a child started as a script
    (`recipes/train.py`) would otherwise import whatever an installed copy of the package points at.
    """
    path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, **extra}


def median(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b

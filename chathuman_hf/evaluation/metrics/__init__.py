"""``evaluate`` metric modules shipped with the package (load offline with ``evaluate.load(metric_path(NAME))``)."""

from __future__ import annotations

from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent


def metric_path(name: str) -> str:
    """Directory of a shipped metric module, for ``evaluate.load``: ``generation_health`` or ``token_perplexity``."""
    path = METRICS_DIR / name
    if not (path / f"{name}.py").is_file():
        known = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"No shipped metric {name!r} in {METRICS_DIR}; known: {', '.join(known)}")
    return str(path)

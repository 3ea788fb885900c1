"""Loss curves as PNG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, ax, path: str | Path) -> Path:
    """Grid, legend, tight layout, write the PNG and free the figure."""
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def series(log_history: list[dict[str, Any]], key: str, x: str = "step") -> tuple[list[float], list[float]]:
    """(x, y) points of ``key`` in a Trainer ``log_history``."""
    points = [(float(e[x]), float(e[key])) for e in log_history if key in e and x in e]
    return [p[0] for p in points], [p[1] for p in points]


def plot_loss_curves(log_history: list[dict[str, Any]], path: str | Path, *, title: str = "") -> Path:
    """Train loss, eval loss and eval assistant loss against the optimizer step."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for key, label, style in (
        ("loss", "train loss (label mode)", "-"),
        ("eval_loss", "eval loss (label mode)", "o-"),
        ("eval_assistant_loss", "eval assistant-token loss", "s--"),
    ):
        xs, ys = series(log_history, key)
        if xs:
            ax.plot(xs, ys, style, label=label, markersize=4)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title(title or "loss curves")
    return _save(plt, fig, ax, path)


def plot_eval_curves(runs: dict[str, list[dict[str, Any]]], path: str | Path, *,
                     key: str = "eval_assistant_perplexity", title: str = "") -> Path:
    """One line per run: ``key`` against the epoch (the label-mode comparison plot)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    styles = ("o-", "s--", "^:", "d-.")  # distinct styles: identical curves (input and shift) stay visible
    for i, (name, history) in enumerate(runs.items()):
        xs, ys = series(history, key, x="epoch")
        if xs:
            ax.plot(xs, ys, styles[i % len(styles)], label=name, markersize=5 if i % 2 else 4)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.set_title(title or key)
    return _save(plt, fig, ax, path)

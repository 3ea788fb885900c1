"""The label-mode leaderboard: one row per training run, rendered as Markdown (``recipes/compare.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# conversation-quality columns (chathuman_hf.evaluation.conversation), shown when the runs computed them
CONVERSATION_KEYS = {
    "eval_selection_hits_at_1": "hits@1", "eval_selection_mrr": "MRR", "eval_context_sensitivity": "distinct replies",
    "eval_speech_agreement": "speech agreement", "eval_repeat_rate": "repeat rate",
    "eval_speech_control_plain": "반말 when asked", "eval_speech_control_polite": "존댓말 when asked",
}
SAMPLE_PROMPTS = ("안녕! 오늘 기분 어때?", "점심 뭐 먹을까?", "요즘 잠이 잘 안 와", "주말에 뭐 하고 놀지?")


@dataclass
class RunSummary:
    """What the leaderboard shows for one label mode."""

    mode: str
    train_loss_per_epoch: list[float]
    eval_loss: float
    eval_assistant_perplexity: float
    gen_empty_share: float
    gen_stopped_share: float
    wall_seconds: float
    global_step: int
    samples: list[str] = field(default_factory=list)
    eval_history: list[dict[str, Any]] = field(default_factory=list)
    conversation: dict[str, float] = field(default_factory=dict)  # eval_* keys of CONVERSATION_KEYS


def summarize_run(mode: str, run_dir: str | Path, wall_seconds: float, samples: list[str]) -> RunSummary:
    """Read a finished run's ``trainer_state.json`` and ``eval_results.json``."""
    run_dir = Path(run_dir)
    state = json.loads((run_dir / "trainer_state.json").read_text(encoding="utf-8"))
    evals = json.loads((run_dir / "eval_results.json").read_text(encoding="utf-8"))
    history = state["log_history"]
    # per-epoch train loss: the entries logged at whole epochs (logging_strategy "epoch")
    train = [
        e["loss"]
        for e in history
        if "loss" in e and e.get("epoch", 0) >= 1 and abs(e["epoch"] - round(e["epoch"])) < 1e-6
    ]
    return RunSummary(
        mode=mode,
        train_loss_per_epoch=[float(x) for x in train],
        eval_loss=float(evals["eval_loss"]),
        eval_assistant_perplexity=float(evals["eval_assistant_perplexity"]),
        gen_empty_share=float(evals.get("eval_gen_empty_share", float("nan"))),
        gen_stopped_share=float(evals.get("eval_gen_stopped_share", float("nan"))),
        wall_seconds=wall_seconds,
        global_step=int(state["global_step"]),
        samples=samples,
        eval_history=[e for e in history if "eval_loss" in e],
        conversation={k: float(evals[k]) for k in CONVERSATION_KEYS if k in evals},
    )


def render_leaderboard(runs: list[RunSummary], *, prompts: tuple[str, ...] = SAMPLE_PROMPTS, setup: str = "") -> str:
    """Markdown: the table sorted by assistant-token perplexity, then sample replies per prompt."""
    ranked = sorted(runs, key=lambda r: r.eval_assistant_perplexity)
    lines = ["# Label-mode leaderboard", ""]
    if setup:
        lines += [setup, ""]
    lines += [
        "`eval_assistant_perplexity` scores every model on the same held-out assistant-turn tokens (token-weighted), "
        "so it compares the modes; `eval_loss` is each mode's own objective and does not. Best checkpoint per run "
        "(lowest `eval_assistant_perplexity`).",
        "",
        "| rank | label mode | train loss per epoch | eval_loss (own mode) | eval_assistant_perplexity | "
        "empty replies | replies ending the turn | steps | wall time |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(ranked, 1):
        losses = " → ".join(f"{x:.3f}" for x in r.train_loss_per_epoch)
        lines.append(
            f"| {i} | `{r.mode}` | {losses} | {r.eval_loss:.3f} | {r.eval_assistant_perplexity:.2f} | "
            f"{r.gen_empty_share:.0%} | {r.gen_stopped_share:.0%} | {r.global_step} | {r.wall_seconds:.0f} s |"
        )
    keys = [k for k in CONVERSATION_KEYS if any(k in r.conversation for r in ranked)]
    if keys:
        lines += ["", "Conversation quality (`chathuman_hf.evaluation.conversation`): hits@1/MRR rank the true "
                  "held-out reply against 19 from other dialogues (chance 5%); distinct replies = share of different "
                  "greedy replies to the fixed held-out prompts.", "",
                  "| label mode | " + " | ".join(CONVERSATION_KEYS[k] for k in keys) + " |",
                  "|---|" + "---:|" * len(keys)]
        for r in ranked:
            cells = [f"{r.conversation[k]:.1%}" if k in r.conversation else "—" for k in keys]
            lines.append(f"| `{r.mode}` | " + " | ".join(cells) + " |")
    lines += ["", "## Sample replies (greedy, fixed prompts)", ""]
    for j, prompt in enumerate(prompts):
        lines.append(f"**{prompt}**")
        lines.append("")
        for r in ranked:
            reply = r.samples[j] if j < len(r.samples) else ""
            lines.append(f"- `{r.mode}`: {reply or '(empty)'}")
        lines.append("")
    return "\n".join(lines)

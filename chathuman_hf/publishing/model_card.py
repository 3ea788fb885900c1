"""The model card (``README.md``) written next to a trained chat model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from chathuman_hf.publishing.modelfile import run_locally_lines
from chathuman_hf.publishing.provenance import base_model_license, grouped_sources

HYPERPARAMETERS = (
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "weight_decay", "warmup_steps", "lr_scheduler_type", "optim", "seed", "bf16",
    "fp16", "max_grad_norm",
)
METRICS = (
    "eval_loss", "eval_perplexity", "eval_assistant_loss", "eval_assistant_perplexity", "eval_tokens",
    "eval_assistant_tokens", "eval_gen_stopped_share", "eval_gen_empty_share", "eval_gen_distinct_2",
    "eval_gen_mean_length",
)
# conversation quality (chathuman_hf.evaluation.conversation): shown in their own table when present
CONVERSATION_METRICS = (
    ("eval_selection_hits_at_1", "response selection hits@1: true reply ranked first among 20 (chance 0.05)"),
    ("eval_selection_mrr", "response selection MRR"),
    ("eval_context_sensitivity", "distinct greedy replies / fixed held-out prompts (1/N = same reply to all)"),
    ("eval_speech_agreement", "replies at the reference reply's speech level (존댓말/반말), determined pairs"),
    ("eval_speech_undetermined_share", "pairs left out of speech agreement (no final ending)"),
    ("eval_distinct_1", "distinct Kiwi morphemes / all, over the replies"),
    ("eval_distinct_2", "distinct Kiwi morpheme bigrams / all"),
    ("eval_repeat_rate", "replies repeating a 4-gram of the user's or the assistant's previous turn"),
)


@dataclass
class ModelCardInfo:
    """Everything the card shows; filled by the training recipe."""

    model_name: str
    base_model: str | None
    model_config: dict[str, Any]
    label_mode: str
    chat_options: dict[str, Any]
    cleaning: dict[str, Any]
    report: dict[str, Any]
    hyperparameters: dict[str, Any]
    eval_metrics: dict[str, Any] = field(default_factory=dict)
    epoch_table: list[dict[str, Any]] = field(default_factory=list)
    sample_replies: list[tuple[str, str]] = field(default_factory=list)
    tokenizer_note: str = ""
    hub_model_id: str | None = None
    adapter: dict[str, Any] | None = None  # LoRA: chathuman_hf.models.lora.adapter_summary
    chathuman_template: bool = True  # False: trained with the base model's own (or a .jinja) chat template


def _fmt(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_model_card(info: ModelCardInfo) -> str:
    """Markdown with YAML front matter for the Hub."""
    license_id = base_model_license(info.base_model)
    meta: dict[str, Any] = {
        "language": ["ko"],
        "license": license_id,
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["chathuman_hf", "korean", "chat", "conversational", f"label-mode-{info.label_mode}"],
    }
    if info.base_model:
        meta["base_model"] = info.base_model
    if info.adapter:
        meta["library_name"] = "peft"
        meta["tags"] += ["lora", "peft"]
    repo = info.hub_model_id or f"./{info.model_name}"
    lines = ["---", yaml.safe_dump(meta, allow_unicode=True, sort_keys=False).strip(), "---", ""]
    lines += [f"# {info.model_name}", ""]
    base = (
        f"fine-tuned from [`{info.base_model}`](https://huggingface.co/{info.base_model})"
        if info.base_model and not Path(info.base_model).exists()
        else f"fine-tuned from `{info.base_model}`"
        if info.base_model
        else "trained from scratch (" + ", ".join(f"{k}={v}" for k, v in info.model_config.items()) + ")"
    )
    lines += [
        f"A Korean everyday-conversation (일상 대화) chat model, {base} with "
        "chathuman_hf (Hugging Face Trainer + accelerate).",
        "",
        "## Usage",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        f'chat = pipeline("text-generation", model="{repo}"'
        + (f', tokenizer="{repo}")' if info.adapter else ")"),  # an adapter: not the base's tokenizer
        'out = chat([{"role": "user", "content": "안녕! 오늘 뭐 했어?"}])',
        'print(out[0]["generated_text"][-1]["content"])',
        "```",
        "",
        ("The tokenizer carries the chat template (`<usr>user<sys>assistant</s>`), `generation_config.json` stops "
         "at the end of the turn or a new `<usr>`, " if info.chathuman_template else
         "The tokenizer carries the chat template it was trained with (the base model's own or the `.jinja` given), "
         "`generation_config.json` stops at its end of turn, ")
        + "and `chat_window.json` holds the history window used in training "
        f"(max_turns={info.chat_options.get('max_turns')}, max_length={info.chat_options.get('max_length')}); "
        "chathuman_hf front ends (`recipes/chat.py`, `recipes/serve.py`) drop the oldest exchanges to stay inside it.",
        "",
        *run_locally_lines(info.model_name),
        "## Training data",
        "",
    ]
    dialogues = info.report.get("dialogues")
    lines += [f"{dialogues} dialogues after cleaning and the turn rules.", ""]
    rows = grouped_sources(info.report.get("sources", {}), info.report.get("files", {}))
    if rows:
        lines += ["| source | format | dialogues | provenance |", "|---|---|---:|---|"]
        lines += [f"| `{s}` | {f or '-'} | {n} | {p} |" for s, f, n, p in rows]
        lines.append("")
    dropped = info.report.get("dropped", {})
    if dropped:
        lines += ["Dropped (reason: count): " + ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())), ""]
    if info.cleaning:
        on = [k for k, v in info.cleaning.items() if v is True]
        off = [k for k, v in info.cleaning.items() if v is False]
        lines += [f"Cleaning on: {', '.join(on) or 'none'}; off: {', '.join(off) or 'none'}.", ""]
    if info.report.get("pii"):
        from chathuman_hf.data.scrub import privacy_line

        lines += [privacy_line(info.report["pii"]), ""]
    lines += [
        "## Training",
        "",
        f"- label mode: **{info.label_mode}** (which tokens carry loss; see the chathuman_hf README)",
        "- examples: " + ", ".join(f"{k}={v}" for k, v in info.chat_options.items()),
    ]
    if info.tokenizer_note:
        lines.append(f"- tokenizer: {info.tokenizer_note}")
    lines += _adapter_lines(info.adapter)
    lines += ["", "| hyperparameter | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in info.hyperparameters.items()]
    lines += ["", "## Evaluation", ""]
    lines.append(
        "Held-out dialogues. `eval_assistant_perplexity` scores the assistant-turn tokens the same way for every "
        "label mode (token-weighted), so it compares runs; `eval_loss` is the label mode's own loss."
    )
    lines.append("")
    shown = [(k, info.eval_metrics[k]) for k in METRICS if k in info.eval_metrics]
    if shown:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in shown] + [""]
    conversation = [(k, what, info.eval_metrics[k]) for k, what in CONVERSATION_METRICS if k in info.eval_metrics]
    if conversation:
        lines += ["Conversation quality (greedy replies to fixed held-out prompts; response selection ranks the "
                  "true reply against 19 from other held-out dialogues by how much the context raises its "
                  "likelihood):",
                  ""]
        lines += ["| metric | value | what |", "|---|---|---|"]
        lines += [f"| {k} | {_fmt(v)} | {what} |" for k, what, v in conversation] + [""]
    if info.epoch_table:
        cols = list(info.epoch_table[0].keys())
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in info.epoch_table]
        lines.append("")
    if info.sample_replies:
        lines += ["Sample replies (greedy, held-out prompts):", ""]
        lines += [f"- {p} → {r or '(empty)'}" for p, r in info.sample_replies]
        lines.append("")
    lines += [
        "## License and provenance",
        "",
        f"License: `{license_id}`"
        + (f", inherited from the base model `{info.base_model}`." if info.base_model else " (trained from scratch).")
        + " The training data keeps its own terms (see the provenance column above).",
        "",
    ]
    return "\n".join(lines)


def _adapter_lines(adapter: dict[str, Any] | None) -> list[str]:
    if not adapter:
        return []
    rows = adapter.get("trainable_token_rows") or []
    return [
        f"- LoRA adapter (PEFT): r={adapter['r']}, alpha={adapter['lora_alpha']}, dropout={adapter['lora_dropout']}, "
        f"on {', '.join(adapter['target_modules'])}"
        + (", base loaded in 4-bit (QLoRA)" if adapter.get("quantized_4bit") else ""),
        f"- trainable parameters: {adapter['trainable_params']:,} of {adapter['total_params']:,} "
        f"({adapter['trainable_share']:.3f}%)",
        f"- token rows trained: {len(rows)} (ids {rows})" if rows else "- token rows trained: none (no token added)",
        "- merge into a standalone model: `python recipes/export.py --model THIS_DIR --output MERGED_DIR`",
    ]


def write_model_card(info: ModelCardInfo, output_dir: str | Path) -> Path:
    """Render and write ``README.md`` into ``output_dir``."""
    path = Path(output_dir) / "README.md"
    path.write_text(render_model_card(info), encoding="utf-8")
    return path


def epoch_table(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-epoch rows: train loss (mean of logged losses in the epoch), eval loss and assistant perplexity."""
    rows: dict[int, dict[str, Any]] = {}
    train: dict[int, list[float]] = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        epoch = max(math.ceil(entry["epoch"] - 1e-9), 1)
        if "loss" in entry:
            train.setdefault(epoch, []).append(float(entry["loss"]))
        if "eval_loss" in entry:
            rows[epoch] = {
                "epoch": epoch,
                "eval_loss": entry["eval_loss"],
                "eval_assistant_perplexity": entry.get("eval_assistant_perplexity", float("nan")),
            }
    out = []
    for epoch in sorted(set(rows) | set(train)):
        row = {
            "epoch": epoch,
            "train_loss": sum(train[epoch]) / len(train[epoch]) if train.get(epoch) else float("nan"),
        }
        row.update({k: v for k, v in rows.get(epoch, {}).items() if k != "epoch"})
        out.append(row)
    return out


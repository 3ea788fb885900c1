"""Checks before a training run spends time (hopeless settings stop in one line) and the hints around it."""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from chathuman_hf.cli import UsageError
from chathuman_hf.features import DROP_EMPTY_TARGET, DROP_TOO_LONG, TRUNCATED_EXCHANGES, TRUNCATED_USER_TURN

logger = logging.getLogger(__name__)

MIN_KEPT_SHARE = 0.10  # fewer surviving training examples than this share of the candidates: stop before training
# What to change for each reason tokenization drops an example (chathuman_hf.features' drop reasons).
FIXES = {
    DROP_TOO_LONG: "the last exchange alone does not fit: raise --max-length",
    DROP_EMPTY_TARGET: "no token carries loss under this label mode: use --label-mode input or -100+sys, or check "
                       "that the dialogues end with an assistant turn",
}
NOT_DROPS = (TRUNCATED_EXCHANGES, TRUNCATED_USER_TURN)  # shortened, still kept


def example_drops(before: Counter, after: Counter, prefix: str = "") -> Counter:
    """Examples dropped between two snapshots of a report's ``dropped`` counter (truncations are not drops)."""
    out: Counter = Counter()
    for reason, count in (after - before).items():
        if reason.startswith(prefix) and not reason[len(prefix):].startswith(NOT_DROPS):
            out[reason[len(prefix):]] += count
    return out


def check_examples_left(part: str, kept: int, drops: Counter, *, max_length: int) -> None:
    """Stop (``UsageError``, one line) when tokenization left nothing, or under ``MIN_KEPT_SHARE``, of ``part``."""
    total = kept + sum(drops.values())
    if total == 0 or (kept > 0 and (part == "held-out" or kept >= MIN_KEPT_SHARE * total)):
        return
    reason, count = drops.most_common(1)[0]
    fix = FIXES.get(reason.split(":")[0], "see report.json")
    floor = "at least one must be left to evaluate" if part == "held-out" else (
        f"at least {MIN_KEPT_SHARE:.0%} must be left to train")
    raise UsageError(
        f"--max-length {max_length} leaves {kept} of {total} {part} examples ({count} dropped as {reason}; "
        f"{floor}): {fix}."
    )


def warn_if_output_dir_has_a_run(output_dir: str | Path, resume: str | None, overwrite: bool = False) -> bool:
    """Warn when a fresh run starts in a directory that holds checkpoints or a model (it would be overwritten)."""
    out = Path(output_dir)
    if resume or overwrite or not out.is_dir():
        return False
    found = sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint-") or p.name == "model.safetensors")
    if not found:
        return False
    logger.warning(
        "%s already holds a run (%s): this run starts over and overwrites it. To continue that run instead, pass "
        "--resume_from_checkpoint auto; to keep it, pick another --output_dir.", out, ", ".join(found[:3]))
    return True


def log_vocab_fill(tokenizer: Any, requested: int) -> None:
    """Log when the trained tokenizer is smaller than ``--vocab-size`` (the data has fewer pieces to learn)."""
    if len(tokenizer) < requested:
        logger.warning("--vocab-size %d was asked; the training text only fills %d tokens (256 of them byte "
                       "fallback), so the model's vocabulary is %d.", requested, len(tokenizer), len(tokenizer))


def quiet_progress_when_piped(training_args: Any, stream: Any = None) -> bool:
    """When output is not a terminal: no progress bars (no nesting, no control codes), Trainer prints log lines."""
    stream = stream or sys.stderr
    if stream.isatty():
        return False
    import datasets
    import transformers

    training_args.disable_tqdm = True
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    return True


def next_steps(output_dir: str | Path) -> str:
    """What to run with the trained model (printed at the end of training)."""
    out = Path(output_dir)
    shown = os.path.relpath(out) if not os.path.relpath(out).startswith("..") else str(out)
    # an adapter: pipeline() would take the base's tokenizer (and its template, if any) unless told this one
    tokenizer = f", tokenizer='{shown}'" if (out / "adapter_config.json").is_file() else ""
    return "\n".join([
        f"The model is in {shown}/ (weights, tokenizer with chat template, model card README.md). Next:",
        f"  python recipes/chat.py --model {shown}                  # chat in the terminal",
        f"  python recipes/serve.py --model {shown} --port 8000     # web chat + OpenAI-compatible API",
        f"  python recipes/evaluate.py --model {shown} --data FILE  # score it on other dialogues",
        f"  python -c \"from transformers import pipeline; print(pipeline('text-generation', model='{shown}'"
        f"{tokenizer})([{{'role': 'user', 'content': '안녕'}}])[0]['generated_text'][-1]['content'])\"",
    ])

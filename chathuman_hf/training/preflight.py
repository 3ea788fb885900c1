"""Checks before a training run spends time (hopeless settings stop in one line) and the hints around it."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from chathuman_hf.core.cli import UsageError
from chathuman_hf.tokens.features import DROP_EMPTY_TARGET, DROP_TOO_LONG, TRUNCATED_EXCHANGES, TRUNCATED_USER_TURN
from chathuman_hf.training.checkpoints import CHECKPOINT_RE

logger = logging.getLogger(__name__)

MIN_KEPT_SHARE = 0.10  # fewer surviving training examples than this share of the candidates: stop before training
# What to change for each reason tokenization drops an example (chathuman_hf.tokens.features' drop reasons).
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


PREVIOUS_RUN_DIR = "_previous_run"
# what an earlier run leaves that a fresh one must not mix with its own: checkpoints (Trainer keeps the higher-numbered
# stale ones, and --resume_from_checkpoint auto would pick them) and weights/configs (a LoRA run into a full model's
# folder would leave config.json, and the folder would still load as the old model)
RUN_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", "adapter_config.json",
             "adapter_model.safetensors", "trainer_state.json")


def set_aside_previous_run(output_dir: str | Path, resume: str | None) -> list[str]:
    """A fresh run in a folder that holds an earlier one: move that run's checkpoints and weights to
    ``_previous_run/`` (replacing an older one there), say so, and return the names moved."""
    out = Path(output_dir)
    if resume or not out.is_dir():
        return []
    found = sorted(p.name for p in out.iterdir() if (p.is_dir() and CHECKPOINT_RE.match(p.name))
                   or (p.is_file() and (p.name in RUN_FILES or p.name.startswith("model-"))))
    if not found:
        return []
    aside = out / PREVIOUS_RUN_DIR
    shutil.rmtree(aside, ignore_errors=True)
    aside.mkdir()
    for name in found:
        (out / name).rename(aside / name)
    logger.warning(
        "%s already held a run (%s): this run starts over, and that run's checkpoints and weights are now in %s "
        "(delete it to free the space). To continue a run instead, pass --resume_from_checkpoint auto; to keep "
        "runs side by side, pick another --output_dir.", out, ", ".join(found[:3]) + (" …" if len(found) > 3 else ""),
        aside)
    return found


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
        f"  python recipes/evaluate_model.py --model {shown} --data FILE  # score it on other dialogues",
        f"  python -c \"from transformers import pipeline; print(pipeline('text-generation', model='{shown}'"
        f"{tokenizer})([{{'role': 'user', 'content': '안녕'}}])[0]['generated_text'][-1]['content'])\"",
    ])

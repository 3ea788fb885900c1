"""Speech levels of the training data: every utterance's level stored with its dialogue (``speech_levels``),
counts in the report, converted counterparts to balance 반말/존댓말, and the level instruction that conditions each
dialogue's replies (``--speech_levels``, ``--speech_level_balance``, ``--speech_level_control``)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from datasets import Dataset

from chathuman_hf.korean.analysis import (
    LEVEL_INSTRUCTIONS,
    PLAIN,
    POLITE,
    UNDETERMINED,
    speech_level,
    with_level_instruction,
)

from .options import DataArguments
from .report import DataReport

LEVELS = (PLAIN, POLITE, UNDETERMINED)
COUNTERPART = {PLAIN: POLITE, POLITE: PLAIN}


def dialogue_level(messages: list[dict[str, str]], levels: list[str]) -> str:
    """The level of a dialogue's replies: the majority of its determined assistant replies (a tie: the last one's)."""
    replies = [lv for m, lv in zip(messages, levels, strict=True) if m["role"] == "assistant" and lv != UNDETERMINED]
    if not replies:
        return UNDETERMINED
    counts = Counter(replies)
    if counts[PLAIN] == counts[POLITE]:
        return replies[-1]
    return counts.most_common(1)[0][0]


def _levels_batch(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
    memo: dict[str, str] = {}
    out = []
    for messages in batch["messages"]:
        row = []
        for m in messages:
            text = m["content"]
            if m["role"] == "system":
                row.append("")
                continue
            if text not in memo:
                memo[text] = speech_level(text)
            row.append(memo[text])
        out.append(row)
    return {"speech_levels": out}


def add_speech_levels(dialogues: Dataset) -> Dataset:
    """``dialogues`` with a ``speech_levels`` column: per message ``plain``/``polite``/``undetermined`` (``""`` for
    system messages), from ``chathuman_hf.korean.analysis.speech_level``."""
    if "speech_levels" in dialogues.column_names:
        return dialogues
    return dialogues.map(_levels_batch, batched=True, batch_size=1000, desc="speech level of every utterance")


def level_counts(dialogues: Dataset) -> dict[str, dict[str, int]]:
    """``{"assistant": {level: n}, "user": {level: n}, "dialogues": {level: n}}`` of a ``speech_levels`` dataset."""
    counts: dict[str, Counter[str]] = {"assistant": Counter(), "user": Counter(), "dialogues": Counter()}
    for messages, levels in zip(dialogues["messages"], dialogues["speech_levels"], strict=True):
        for m, lv in zip(messages, levels, strict=True):
            if m["role"] in ("assistant", "user"):
                counts[m["role"]][lv] += 1
        counts["dialogues"][dialogue_level(messages, levels)] += 1
    return {role: {lv: c[lv] for lv in LEVELS} for role, c in counts.items()}


def _counterpart(messages: list[dict[str, str]], levels: list[str], target: str) -> tuple[list, list] | None:
    """The dialogue with every reply converted to ``target``; None unless each converted reply classifies so."""
    from chathuman_hf.korean.conversion import convert

    out_messages, out_levels = [], []
    for m, lv in zip(messages, levels, strict=True):
        if m["role"] == "assistant" and lv not in (target, UNDETERMINED):
            text = convert(m["content"], target)
            if speech_level(text) != target:
                return None
            m, lv = {"role": m["role"], "content": text}, target
        out_messages.append(m)
        out_levels.append(lv)
    return out_messages, out_levels


def balance_levels(dialogues: Dataset, share: float, report: DataReport, seed: int = 42) -> Dataset:
    """Add converted counterparts (the other level) of up to ``share`` of the dialogues at the majority level, never
    past balance; conversions the classifier does not confirm are counted in the report, not added. ``share`` in
    0..1 is checked when the options are parsed (``DataArguments``)."""
    levels = [dialogue_level(m, lv) for m, lv in zip(dialogues["messages"], dialogues["speech_levels"], strict=True)]
    counts = Counter(levels)
    major = PLAIN if counts[PLAIN] > counts[POLITE] else POLITE
    target = COUNTERPART[major]
    wanted = min(round(share * counts[major]), counts[major] - counts[target])
    order = [i for i, lv in enumerate(levels) if lv == major]
    random.Random(seed).shuffle(order)
    added: list[dict[str, Any]] = []
    failed = 0
    for i in order:
        if len(added) >= wanted:
            break
        row = dialogues[i]
        converted = _counterpart(row["messages"], row["speech_levels"], target)
        if converted is None:
            failed += 1
            continue
        added.append({**row, "messages": converted[0], "speech_levels": converted[1],
                      "dialogue_id": f"{row['dialogue_id']}#{target}"})
    report.stats["speech_level_balance"] = {"from": major, "to": target, "share": share, "wanted": wanted,
                                            "added": len(added), "conversion_rejected": failed}
    if not added:
        return dialogues
    from datasets import concatenate_datasets

    extra = Dataset.from_list(added, features=dialogues.features)
    return concatenate_datasets([dialogues, extra])


def _instruct_batch(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
    out_messages, out_levels = [], []
    for messages, levels in zip(batch["messages"], batch["speech_levels"], strict=True):
        level = dialogue_level(messages, levels)
        new = with_level_instruction(messages, level)
        if level in LEVEL_INSTRUCTIONS and len(new) > len(messages):
            levels = ["", *levels]
        out_messages.append(new)
        out_levels.append(levels)
    return {"messages": out_messages, "speech_levels": out_levels}


def add_level_instructions(dialogues: Dataset) -> Dataset:
    """Each dialogue with a determined level gets the level's instruction as (or appended to) its system message."""
    return dialogues.map(_instruct_batch, batched=True, batch_size=1000, desc="speech-level instruction")


def apply_speech_options(dialogues: Dataset, args: DataArguments, report: DataReport, *, name: str = "train",
                         balance: bool = True, seed: int = 42) -> Dataset:
    """Levels (counted in ``report.stats['speech_levels'][name]``), then balancing (``balance``), then control."""
    if not args.wants_speech_levels():
        return dialogues
    dialogues = add_speech_levels(dialogues)
    if balance and args.speech_level_balance > 0:
        dialogues = balance_levels(dialogues, args.speech_level_balance, report, seed=seed)
    report.stats.setdefault("speech_levels", {})[name] = level_counts(dialogues)
    if args.speech_level_control:
        dialogues = add_level_instructions(dialogues)
    return dialogues

"""The rules for one preference row: scrub, clean, normalize the prompt, check the replies, and dedupe.

A row that breaks a rule raises :class:`Dropped` with its drop reason (counted by ``preferences.py``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from .clean import CleaningOptions, clean_utterance
from .formats.preference import Messages, PrefRecord
from .names import FakeNamer
from .scrub import scrub_dialogue
from .turns import normalize_prompt


class Dropped(Exception):
    """A record that cannot become a pair or rating (``reason``, ``message``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def assistant(text: str) -> Messages:
    """A reply as TRL's conversational completion: one assistant message."""
    return [{"role": "assistant", "content": text}]


def clean_record(record: PrefRecord, namer: FakeNamer, cleaning: CleaningOptions, scrub: str | None,
                 pii: Counter[str], parts: list[str]) -> dict[str, Any]:  # fmt: skip
    """Scrub (``scrub``: placeholder|fake|None), clean and check one record; raises :class:`Dropped`.

    Returns the output row (``prompt`` + ``chosen``/``rejected`` or ``completion``/``label``); utterances of the
    prompt lost to cleaning are appended to ``parts``.
    """
    replies = [key for key in ("chosen", "rejected", "completion") if key in record]
    prompt = record["prompt"]
    texts = [m["content"] for m in prompt] + [record[key] for key in replies]
    if scrub:
        roles = [m["role"] for m in prompt] + ["assistant"] * len(replies)
        _, texts, counts = scrub_dialogue(roles, texts, namer, scrub)
        pii.update(counts)
    context = []
    for message, text in zip(prompt, texts, strict=False):
        cleaned, reason = clean_utterance(text, cleaning, namer)
        if reason:
            parts.append(reason)
        else:
            context.append({"role": message["role"], "content": cleaned})
    context = normalize_prompt(context, parts)
    if not any(m["role"] == "user" for m in context):
        raise Dropped("empty_prompt", "the prompt has no user message (after cleaning)")
    if context[-1]["role"] != "user":
        raise Dropped("prompt_not_ending_with_user", "the prompt ends with an assistant turn; end it with the user's")
    out: dict[str, Any] = {"prompt": context}
    for key, text in zip(replies, texts[len(prompt):], strict=True):
        cleaned, reason = clean_utterance(text, cleaning, namer)
        if reason:
            raise Dropped("empty_reply", f"{key} is empty (after cleaning)")
        out[key] = assistant(cleaned)
    if "chosen" in out and out["chosen"] == out["rejected"]:
        raise Dropped("chosen_equals_rejected", "chosen and rejected are the same reply (after cleaning)")
    if "label" in record:
        out["label"] = record["label"]
    return out


class Deduper:
    """First occurrence wins: ``duplicate_pair``, ``duplicate_rating``, ``conflicting_rating`` (the other label)."""

    def __init__(self) -> None:
        self.pairs: set[str] = set()
        self.ratings: dict[str, bool] = {}

    def check(self, row: dict[str, Any]) -> None:
        if "chosen" in row:
            key = json.dumps([row["prompt"], row["chosen"], row["rejected"]], ensure_ascii=False)
            if key in self.pairs:
                raise Dropped("duplicate_pair", "the same prompt, chosen and rejected as an earlier pair")
            self.pairs.add(key)
            return
        key = json.dumps([row["prompt"], row["completion"]], ensure_ascii=False)
        if key in self.ratings:
            if self.ratings[key] == row["label"]:
                raise Dropped("duplicate_rating", "the same prompt, completion and label as an earlier rating")
            raise Dropped("conflicting_rating", "an earlier rating gives this prompt and completion the other label")
        self.ratings[key] = row["label"]

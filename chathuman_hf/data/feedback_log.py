"""The feedback log: one JSON line per rating or preferred reply, PII-scrubbed before it reaches disk.

Every line has ``schema`` (``FEEDBACK_SCHEMA``), ``event``, ``time`` (UTC, ISO 8601), ``source`` (``page``,
``terminal``, ``api``), ``model``, ``revision``, ``conversation`` (an opaque id), ``reply_id`` and ``messages`` (the
conversation before the reply, ending with a user message). Then, by ``event``:

- ``rating``: ``reply`` (the rated text), ``rating`` (1 or -1), ``comment`` (text or null);
- ``pair``: ``chosen`` and ``rejected`` (texts) and ``how``: ``retry`` (a regenerated sibling was kept over the other)
  or ``edit`` (the person's corrected reply over the model's).

A line is written with one ``write`` on a file opened for appending, under an exclusive ``flock``: a crash leaves no
half line and two server workers never interleave. The raw text never reaches the file.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .pii import placeholder, scrub_text
from .pii_runs import scrub_runs

FEEDBACK_SCHEMA = "chathuman_hf.feedback/1"
EVENTS = ("rating", "pair")
SOURCES = ("page", "terminal", "api")
PAIR_HOW = ("retry", "edit")

Messages = Sequence[dict[str, str]]


def scrub_event_texts(messages: Messages, replies: list[str]) -> tuple[list[dict[str, str]], list[str]]:
    """The messages and replies with personal numbers and addresses replaced, also those split across messages."""
    texts = [scrub_text(m["content"], placeholder) for m in messages] + [scrub_text(r, placeholder) for r in replies]
    conversation = scrub_runs(texts[: len(messages) + 1], placeholder)  # the context and the first reply, in order
    texts[: len(conversation)] = conversation
    scrubbed = [{"role": m["role"], "content": text} for m, text in zip(messages, texts, strict=False)]
    return scrubbed, texts[len(messages) :]


def _check_messages(messages: Messages) -> None:
    if not messages or messages[-1].get("role") != "user":
        raise ValueError("a feedback event needs the conversation before the reply, ending with a user message.")


class FeedbackLog:
    """Appends feedback events for one model to ``path`` (created with its folders); safe across processes."""

    def __init__(self, path: str | Path, *, model: str, revision: str | None = None, source: str = "api") -> None:
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)} (got {source!r}).")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.model, self.revision, self.source = model, revision, source

    def _base(self, event: str, conversation: str | None, reply_id: str | None) -> dict[str, Any]:
        return {"schema": FEEDBACK_SCHEMA, "event": event,
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "source": self.source, "model": self.model, "revision": self.revision,
                "conversation": conversation, "reply_id": reply_id}  # fmt: skip

    def rating(self, messages: Messages, reply: str, rating: int, *, comment: str | None = None,
               conversation: str | None = None, reply_id: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Log 👍 (``rating`` 1) or 👎 (-1) on ``reply``, the answer to ``messages``; returns the line written."""
        _check_messages(messages)
        if rating not in (1, -1) or isinstance(rating, bool):
            raise ValueError(f"rating must be 1 or -1 (got {rating!r}).")
        scrubbed, texts = scrub_event_texts(messages, [reply] + ([comment] if comment else []))
        event = self._base("rating", conversation, reply_id)
        event.update(messages=scrubbed, reply=texts[0], rating=rating, comment=texts[1] if comment else None)
        self.write(event)
        return event

    def pair(self, messages: Messages, chosen: str, rejected: str, *, how: str, conversation: str | None = None,
             reply_id: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Log that ``chosen`` was preferred to ``rejected`` as the answer to ``messages``; returns the line."""
        _check_messages(messages)
        if how not in PAIR_HOW:
            raise ValueError(f"how must be one of {', '.join(PAIR_HOW)} (got {how!r}).")
        scrubbed, (chosen_text, rejected_text) = scrub_event_texts(messages, [chosen, rejected])
        event = self._base("pair", conversation, reply_id)
        event.update(messages=scrubbed, chosen=chosen_text, rejected=rejected_text, how=how)
        self.write(event)
        return event

    def write(self, event: dict[str, Any]) -> None:
        """One line, one ``write`` under an exclusive lock (no interleaving, no half line), flushed to disk."""
        data = (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:  # a regular file takes the whole line at once; the loop only guards a short write
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

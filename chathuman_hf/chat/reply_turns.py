"""The model's replies in one conversation as people see them, and the feedback they give on them.

Each reply has an index (counted from 0 in the conversation, never reused) and siblings: 다시 (regenerate) writes a new
reply to the same context next to the old one. 👍/👎 write ``rating`` events; keeping one sibling (👍 on it, or going
on with the conversation from it) writes a ``pair`` event against each other sibling (``how="retry"``); a reply the
person corrects writes ``pair`` chosen=their text, rejected=the model's (``how="edit"``). Events go to a
``FeedbackLog`` (``data/feedback_log.py``); without one, 다시 and edits still work and nothing is stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from chathuman_hf.data.feedback_log import FeedbackLog

KEPT_TURNS = 200  # the newest replies of a conversation that can still be rated


class FeedbackOff(RuntimeError):
    """Ratings were asked for but none are kept (no feedback log)."""


class ReplyConflict(ValueError):
    """The reply cannot change that way now: it is not the newest (다시, ‹ 1/2 ›) or the person corrected it."""


@dataclass
class ModelTurn:
    """One reply of the model: the conversation before it (a copy), its siblings and what the person did."""

    index: int
    context: list[dict[str, str]]  # ends with the user message; without the speech-level system line
    replies: list[str]  # the first reply, then each 다시
    speech_level: str | None = None  # the level asked for (다시 asks for the same)
    shown: int = 0
    edited: str | None = None
    message: dict[str, str] | None = None  # the assistant message of the session's history that shows this reply
    paired: set[frozenset[int]] = field(default_factory=set)  # siblings already written as a retry pair

    @property
    def text(self) -> str:
        """What the conversation goes on from: the person's correction, else the shown sibling."""
        return self.edited if self.edited is not None else self.replies[self.shown]


class ReplyTurns:
    """The replies of one conversation (the newest ``KEPT_TURNS``) and the feedback events written about them."""

    def __init__(self, log: FeedbackLog | None = None) -> None:
        self.log = log
        self.turns: list[ModelTurn] = []
        self.next_index = 0
        self.conversation = uuid.uuid4().hex[:16]  # opaque: not the page's session id

    def reset(self) -> None:
        """A new conversation: earlier replies can no longer be rated (indices go on, never reused)."""
        self.turns.clear()
        self.conversation = uuid.uuid4().hex[:16]

    def add(self, context: list[dict[str, str]], reply: str, message: dict[str, str] | None,
            speech_level: str | None = None) -> ModelTurn:
        """Record a new reply to ``context`` (copied)."""
        turn = ModelTurn(self.next_index, [dict(m) for m in context], [reply], speech_level, message=message)
        self.next_index += 1
        self.turns.append(turn)
        del self.turns[:-KEPT_TURNS]
        return turn

    def get(self, index: int) -> ModelTurn:
        """The reply ``index``; ``LookupError`` when the conversation has none (never, reset or too old)."""
        for turn in reversed(self.turns):
            if turn.index == index:
                return turn
        raise LookupError(f"no reply #{index} in this conversation (it was reset, has expired or never had it).")

    def latest(self) -> ModelTurn | None:
        return self.turns[-1] if self.turns else None

    def reply_id(self, turn: ModelTurn, sibling: int) -> str:
        return f"{self.conversation}-{turn.index}-{sibling}"

    def _sibling(self, turn: ModelTurn, sibling: int | None) -> int:
        if sibling is None:
            return turn.shown
        if not 0 <= sibling < len(turn.replies):
            raise ValueError(f"reply #{turn.index} has {len(turn.replies)} version(s); sibling {sibling} is not one.")
        return sibling

    def show(self, turn: ModelTurn, sibling: int) -> str:
        """Show sibling ``sibling`` of ``turn`` (the conversation goes on from it); returns its text."""
        if turn.edited is not None:
            raise ReplyConflict(f"reply #{turn.index} was corrected: the conversation goes on from your text.")
        turn.shown = self._sibling(turn, sibling)
        if turn.message is not None:
            turn.message["content"] = turn.text
        return turn.text

    def add_sibling(self, turn: ModelTurn, reply: str) -> int:
        """A 다시 reply to ``turn``'s context; it is shown. Returns its sibling number."""
        turn.replies.append(reply)
        self.show(turn, len(turn.replies) - 1)
        return turn.shown

    def rate(self, index: int, rating: int, *, comment: str | None = None, sibling: int | None = None) -> int:
        """👍 (1) or 👎 (-1) on reply ``index`` (its shown sibling by default). 👍 keeps that sibling (it is shown
        and wins over the others). Returns the number of events written."""
        log = self.need_log()
        turn = self.get(index)
        chosen = self._sibling(turn, sibling)
        log.rating(turn.context, turn.replies[chosen], rating, comment=comment or None,
                   conversation=self.conversation, reply_id=self.reply_id(turn, chosen))
        if rating != 1:
            return 1
        if chosen != turn.shown and turn.edited is None and turn is self.latest():
            self.show(turn, chosen)  # an older reply keeps the version the conversation went on from
        return 1 + self.keep(turn, chosen)

    def keep(self, turn: ModelTurn, chosen: int | None = None) -> int:
        """Write sibling ``chosen`` (default: the shown one) preferred to each other sibling not paired yet (the
        first choice between two siblings counts; the same text twice is no preference). Returns events written."""
        if self.log is None or len(turn.replies) < 2:
            return 0
        chosen = turn.shown if chosen is None else chosen
        written = 0
        for other, text in enumerate(turn.replies):
            key = frozenset((chosen, other))
            if other == chosen or key in turn.paired:
                continue
            turn.paired.add(key)
            if text == turn.replies[chosen]:
                continue
            self.log.pair(turn.context, turn.replies[chosen], text, how="retry", conversation=self.conversation,
                          reply_id=self.reply_id(turn, chosen))
            written += 1
        return written

    def keep_latest(self) -> int:
        """The conversation goes on: the newest reply's shown sibling is kept over the others."""
        turn = self.latest()
        return self.keep(turn) if turn is not None and turn.edited is None else 0

    def edit(self, index: int, text: str) -> int:
        """The person's correction of reply ``index`` replaces it (in the history too while it is there); written as
        preferred to the model's shown sibling when ratings are kept. Returns the number of events written."""
        turn = self.get(index)
        text = text.strip()
        if not text:
            raise ValueError("the corrected reply is empty: write the reply you wanted.")
        original = turn.replies[turn.shown]
        if text == turn.text:
            raise ValueError("the corrected reply is the same as the reply: change something first.")
        turn.edited = text
        if turn.message is not None:
            turn.message["content"] = text
        if self.log is None or text == original:
            return 0
        self.log.pair(turn.context, text, original, how="edit", conversation=self.conversation,
                      reply_id=self.reply_id(turn, turn.shown))
        return 1

    def need_log(self) -> FeedbackLog:
        if self.log is None:
            raise FeedbackOff("ratings are not kept: start with --feedback_log PATH to keep them.")
        return self.log

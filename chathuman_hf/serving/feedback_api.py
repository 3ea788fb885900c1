"""``POST /v1/feedback``: 👍/👎 on a chat completion this server made, by its id, appended to the feedback log.

The server remembers recent completions (the messages the client sent and each choice's text) in a bounded store
(``CompletionMemory``) only while it keeps a feedback log; a rating names the completion ``id``, ``rating`` 1 or -1,
an optional ``comment`` and the choice ``index`` (``n`` > 1). The line is written, PII-scrubbed, by the completion's
model's ``FeedbackLog`` (``data/feedback_log.py``) before the answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from chathuman_hf.data.feedback_log import FeedbackLog
from chathuman_hf.serving.errors import ApiError, check_unicode

logger = logging.getLogger(__name__)
NO_LOG = ("This server keeps no ratings: it was started without a feedback log. Restart it with "
          "recipes/serve.py --feedback_log PATH (create_app(feedback_log=PATH)) to keep them.")


@dataclass
class Completion:
    """What a rating needs of one chat completion: its model, the messages the client sent, each choice's text."""

    model: str
    messages: list[dict[str, Any]]
    replies: list[str]
    at: float

    def size(self) -> int:
        return sum(len(str(m.get("content") or "")) for m in self.messages) + sum(len(r) for r in self.replies)


class CompletionMemory:
    """The most recent chat completions by id: at most ``max_entries`` and ``max_chars`` characters of text, each
    for ``ttl`` seconds; the oldest go first. Thread-safe."""

    def __init__(self, *, max_entries: int = 10_000, max_chars: int = 20_000_000, ttl: float = 1800.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1 or max_chars < 1 or ttl <= 0:
            raise ValueError(f"max_entries, max_chars and ttl must be positive (got {max_entries}, {max_chars}, "
                             f"{ttl}).")
        self.max_entries, self.max_chars, self.ttl, self.clock = max_entries, max_chars, ttl, clock
        self._entries: OrderedDict[str, Completion] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._entries)

    def _drop_oldest(self) -> None:
        _, old = self._entries.popitem(last=False)
        self._chars -= old.size()

    def _expire(self, now: float) -> None:
        while self._entries and now - next(iter(self._entries.values())).at > self.ttl:
            self._drop_oldest()

    def remember(self, completion_id: str, model: str, messages: list[dict[str, Any]], replies: list[str]) -> None:
        """Keep ``completion_id``'s messages and reply texts (one per choice) for rating."""
        entry = Completion(model, [dict(m) for m in messages], list(replies), self.clock())
        with self._lock:
            self._expire(entry.at)
            if completion_id in self._entries:
                self._chars -= self._entries.pop(completion_id).size()
            self._entries[completion_id] = entry
            self._chars += entry.size()
            while len(self._entries) > self.max_entries or (self._chars > self.max_chars and len(self._entries) > 1):
                self._drop_oldest()

    def get(self, completion_id: str) -> Completion | None:
        with self._lock:
            self._expire(self.clock())
            return self._entries.get(completion_id)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="The id of a chat completion from this server (chatcmpl-...).")
    rating: Any = Field(description="1 (👍) or -1 (👎).")
    comment: str | None = Field(default=None, description="Why, in the rater's words (PII-scrubbed in the log).")
    index: Any = Field(default=0, description="Which choice was rated when the completion had n > 1.")


def check_rating(body: FeedbackRequest, max_chars: int) -> None:
    """A 400 naming the field for a rating other than 1/-1, a bad index or a comment that is too long."""
    if type(body.rating) is not int or body.rating not in (1, -1):
        raise ApiError(400, f"rating must be 1 (👍) or -1 (👎), got {str(body.rating)[:40]!r}.", param="rating")
    if type(body.index) is not int or body.index < 0:
        raise ApiError(400, f"index must be a choice index (0, 1, ...), got {str(body.index)[:40]!r}.", param="index")
    check_unicode(body.id, "id")
    if body.comment is not None:
        check_unicode(body.comment, "comment")
        if len(body.comment) > max_chars:
            raise ApiError(400, f"comment is {len(body.comment)} characters long; the limit is {max_chars}.",
                           param="comment")


def make_feedback_router(memory: CompletionMemory | None, logs: Callable[[str], FeedbackLog | None], *,
                         max_chars: int) -> APIRouter:
    """``memory``: the recent completions (``None``: the server keeps no ratings, every post is a 403 that says how
    to turn them on); ``logs``: the feedback log of a model name."""
    api = APIRouter()

    @api.post("/v1/feedback")
    def feedback(body: FeedbackRequest) -> dict:  # sync: the write waits for the disk in a worker thread
        if memory is None:
            raise ApiError(403, NO_LOG, type="permission_error")
        check_rating(body, max_chars)
        completion = memory.get(body.id)
        if completion is None:
            raise ApiError(404, f"No chat completion '{body.id[:100]}' to rate: the id is unknown here or has expired "
                           f"(the server keeps the last {memory.max_entries} for {memory.ttl:g} s while it runs).",
                           param="id", type="not_found_error")
        if body.index >= len(completion.replies):
            raise ApiError(400, f"index {body.index} is out of range: completion '{body.id[:100]}' has "
                           f"{len(completion.replies)} choice(s).", param="index")
        log = logs(completion.model)
        if log is None:  # the model was served without a log (cannot happen with one log for all)
            raise ApiError(403, NO_LOG, type="permission_error")
        if completion.messages[-1].get("role") != "user":
            raise ApiError(400, f"completion '{body.id[:100]}' answered a tool result; the feedback log keeps ratings "
                           "of replies to a user message.", param="id")
        reply_id = f"{body.id}:{body.index}"
        try:
            log.rating(completion.messages, completion.replies[body.index], body.rating, comment=body.comment,
                       conversation=body.id, reply_id=reply_id)
        except OSError as exc:
            logger.error("could not write the feedback log %s: %s", log.path, exc)
            raise ApiError(500, f"The feedback log could not be written ({exc.strerror or exc}).",
                           type="server_error") from None
        return {"object": "feedback", "id": body.id, "index": body.index, "rating": body.rating,
                "model": completion.model, "reply_id": reply_id}

    return api

"""The page's feedback endpoints, by ``session_id`` and reply ``index``: 👍/👎, 다시 (streamed), ‹ 1/2 › and edits.

``POST /page/api/rate`` ``{"session_id", "index", "rating": 1|-1, "comment"?, "sibling"?}``,
``POST /page/api/regenerate/stream`` ``{"session_id", "index"}`` (server-sent events as ``/page/api/chat/stream``),
``POST /page/api/select`` ``{"session_id", "index", "sibling"}``, ``POST /page/api/edit`` ``{"session_id", "index",
"text"}``. An unknown reply is a 404; 다시 or a choice on a reply that is not the newest (or that the person
corrected) a 409; ratings on a server started without ``--feedback_log`` a 403 that says how to keep them (as
``POST /v1/feedback``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from chathuman_hf.chat import EngineBusy
from chathuman_hf.chat.reply_turns import FeedbackOff, ReplyConflict
from chathuman_hf.data.feedback_log import FeedbackLog
from chathuman_hf.serving.errors import ApiError, check_unicode
from chathuman_hf.serving.store import SessionStore
from chathuman_hf.serving.streaming import EventStreamResponse

logger = logging.getLogger(__name__)


class ReplyRef(BaseModel):
    session_id: str
    index: int = Field(ge=0, description="The reply's number in the conversation (the chat stream's done event).")


class RateRequest(ReplyRef):
    rating: Literal[1, -1] = Field(description="1: 👍, -1: 👎.")
    comment: str | None = Field(default=None, max_length=1000)
    sibling: int | None = Field(default=None, ge=0, description="Which version (다시); default: the shown one.")


class SelectRequest(ReplyRef):
    sibling: int = Field(ge=0)


class EditRequest(ReplyRef):
    text: str


def event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def make_page_feedback_router(store: SessionStore, check_prompt: Callable[[list[dict[str, str]]], None],
                              max_chars: int) -> APIRouter:
    """The routes above over the sessions of ``store`` (``check_prompt``: the page's template check)."""
    router = APIRouter()

    def entry_for(body: ReplyRef) -> Any:
        try:
            return store.get(body.session_id)
        except ValueError as exc:  # the message does not repeat the (possibly huge) id
            raise ApiError(400, str(exc), param="session_id") from exc

    def run(action: Callable[[], Any], param: str) -> Any:
        try:
            return action()
        except LookupError as exc:
            raise ApiError(404, str(exc), param="index", type="not_found_error") from exc
        except FeedbackOff as exc:
            message = str(exc).replace("start with", "start the server with")
            raise ApiError(403, message, type="permission_error") from exc
        except ReplyConflict as exc:
            raise ApiError(409, str(exc), param="index") from exc
        except ValueError as exc:
            raise ApiError(400, str(exc), param=param) from exc

    @router.post("/page/api/rate")
    def rate(body: RateRequest) -> dict:
        comment = check_unicode(body.comment, "comment").strip() if body.comment else None
        entry = entry_for(body)
        with store.turn(entry):
            written = run(lambda: entry.session.turns.rate(body.index, body.rating, comment=comment,
                                                           sibling=body.sibling), "sibling")
        return {"ok": True, "index": body.index, "rating": body.rating, "events": written}

    @router.post("/page/api/select")
    def select(body: SelectRequest) -> dict:
        entry = entry_for(body)
        with store.turn(entry):
            text = run(lambda: entry.session.select(body.index, body.sibling), "sibling")
            count = len(entry.session.turns.get(body.index).replies)
        return {"ok": True, "index": body.index, "sibling": body.sibling, "siblings": count, "reply": text}

    @router.post("/page/api/edit")
    def edit(body: EditRequest) -> dict:
        text = check_unicode(body.text, "text").strip()
        if len(text) > max_chars:
            raise ApiError(400, f"text is {len(text)} characters long; the limit is {max_chars}.", param="text")
        entry = entry_for(body)
        with store.turn(entry):
            written = run(lambda: entry.session.turns.edit(body.index, text), "text")
        return {"ok": True, "index": body.index, "reply": text, "events": written}

    @router.post("/page/api/regenerate/stream")
    def regenerate(body: ReplyRef) -> EventStreamResponse:
        """다시 as server-sent events: ``delta`` pieces, then ``done`` with the sibling number and count."""
        entry = entry_for(body)

        def events() -> Iterator[str]:
            with store.turn(entry):
                session = entry.session
                pieces = session.stream_regenerate(body.index, check=check_prompt)
                try:
                    first = run(lambda: next(pieces, None), "index")  # refusals before the stream starts: 4xx
                    if first is not None:
                        yield event({"type": "delta", "text": first})
                    for piece in pieces:
                        yield event({"type": "delta", "text": piece})
                except (EngineBusy, ApiError):
                    raise
                except Exception as exc:
                    logger.exception("다시 failed for reply %d", body.index)
                    yield event({"type": "error", "message": f"Generation failed: {exc}"})
                    return
                finally:
                    pieces.close()
                turn = session.turns.get(body.index)
            yield event({"type": "done", "reply": turn.text, "index": turn.index, "sibling": turn.shown,
                         "siblings": len(turn.replies), "session_id": body.session_id})

        return EventStreamResponse(events())

    return router


def page_feedback_log(server_log: FeedbackLog | None) -> FeedbackLog | None:
    """A writer on the server's feedback log (same file, model and revision) whose events say ``source: page``."""
    if server_log is None:
        return None
    return FeedbackLog(server_log.path, model=server_log.model, revision=server_log.revision, source="page")

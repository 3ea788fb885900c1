"""Server-sent events whose source generator is always closed, so a client that leaves frees the model."""

from __future__ import annotations

import time
from collections.abc import Generator
from itertools import chain
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from chathuman_hf.chat import EngineBusy
from chathuman_hf.serving.errors import ApiError, busy_error

_END = object()
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _close(source: Generator) -> None:
    while source.gi_running:  # a worker thread is still inside next(); it returns after one token
        time.sleep(0.01)
    source.close()


class EventStreamResponse(StreamingResponse):
    """``text/event-stream`` over a sync generator that is closed when the response ends, however it ends.

    The first event is produced before the headers are sent, so an ``ApiError`` or ``EngineBusy`` raised before
    it is answered with its own status (a full server: 503 with ``Retry-After``), not inside a 200 stream."""

    def __init__(self, source: Generator[str, None, None], **kwargs: Any) -> None:
        self.source = source
        headers = {**SSE_HEADERS, **(kwargs.pop("headers", None) or {})}
        super().__init__(source, media_type="text/event-stream", headers=headers, **kwargs)

    async def __call__(self, scope, receive, send) -> None:
        try:
            try:
                first = await anyio.to_thread.run_sync(next, self.source, _END)
            except EngineBusy as exc:
                return await busy_error(exc).response()(scope, receive, send)
            except ApiError as exc:
                return await exc.response()(scope, receive, send)
            self.body_iterator = iterate_in_threadpool(chain([] if first is _END else [first], self.source))
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_close, self.source)

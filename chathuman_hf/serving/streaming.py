"""Server-sent events whose source generator is always closed, so a client that leaves frees the model."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Generator
from typing import Any

import anyio
from fastapi.responses import StreamingResponse

from chathuman_hf.chat import EngineBusy
from chathuman_hf.serving.errors import ApiError, busy_error

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class Drain:
    """Runs a sync generator in a thread of its own and hands what it yields to the event loop in batches.

    ``starlette``'s ``iterate_in_threadpool`` hops to a worker thread and back for every item (every token of a
    reply); here the thread runs the generator to its end and wakes the loop once for whatever came while the loop was
    busy, which goes out as one body chunk. After ``stop`` the thread ends at the generator's next item and closes
    it in that thread (a generator cannot be closed while another thread is inside it)."""

    def __init__(self, source: Generator) -> None:
        self.source = source
        self.loop = asyncio.get_running_loop()
        self.ready = asyncio.Event()
        self.ended = asyncio.Event()
        self.lock = threading.Lock()
        self.items: list = []
        self.done = False
        self.error: BaseException | None = None
        self.stop = False
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(self._run,), name="sse-drain", daemon=True).start()

    def _run(self) -> None:
        try:
            for item in self.source:
                with self.lock:
                    self.items.append(item)
                    wake = len(self.items) == 1
                if wake:
                    self.loop.call_soon_threadsafe(self.ready.set)
                if self.stop:
                    break
        except BaseException as exc:  # handed to the loop: raised where the items are taken
            self.error = exc
        finally:
            try:
                self.source.close()
            finally:
                with self.lock:
                    self.done = True
                self._wake_loop()

    def _wake_loop(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self._end)
        except RuntimeError:  # the loop is closed (server shutting down): nobody waits
            pass

    def _end(self) -> None:
        self.ready.set()
        self.ended.set()

    async def take(self) -> list:
        """The items that came since the last call (at least one), or ``[]`` at the end; the generator's exception
        is raised once its earlier items are taken."""
        while True:
            with self.lock:
                items, self.items, done = self.items, [], self.done
            if items:
                return items
            if done:
                if self.error is not None:
                    raise self.error
                return []
            await self.ready.wait()
            self.ready.clear()

    async def batches(self, first: list) -> AsyncIterator[str]:
        items = first
        while items:
            yield "".join(items)
            items = await self.take()

    async def close(self) -> None:
        """Stop the thread at the generator's next item and wait until the generator is closed."""
        self.stop = True
        await self.ended.wait()


class EventStreamResponse(StreamingResponse):
    """``text/event-stream`` over a sync generator that is closed when the response ends, however it ends.

    The first event is produced before the headers are sent, so an ``ApiError`` or ``EngineBusy`` raised before
    it is answered with its own status (a full server: 503 with ``Retry-After``), not inside a 200 stream."""

    def __init__(self, source: Generator[str, None, None], **kwargs: Any) -> None:
        self.source = source
        headers = {**SSE_HEADERS, **(kwargs.pop("headers", None) or {})}
        super().__init__(source, media_type="text/event-stream", headers=headers, **kwargs)

    async def __call__(self, scope, receive, send) -> None:
        drain = Drain(self.source)
        try:
            try:
                first = await drain.take()
            except EngineBusy as exc:
                return await busy_error(exc).response()(scope, receive, send)
            except ApiError as exc:
                return await exc.response()(scope, receive, send)
            self.body_iterator = drain.batches(first)
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await drain.close()

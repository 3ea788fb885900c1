"""The event streams' drain thread: batched hand-off to the event loop, closing, errors (serving/streaming.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from chathuman_hf.serving.streaming import Drain


def test_items_that_come_while_the_loop_is_busy_are_taken_at_once():
    """One wake-up of the loop for every item that came meanwhile, not a thread hop per item."""
    produced, gate, closed = threading.Event(), threading.Event(), []

    def source():
        try:
            for i in range(50):
                yield f"data: {i}\n\n"
            produced.set()  # runs once item 49 is handed over
            gate.wait(10)
            yield "data: last\n\n"
        finally:
            closed.append(threading.current_thread().name)

    async def main():
        drain = Drain(source())
        assert produced.wait(10)  # the loop is busy here; the drain thread runs ahead
        assert await drain.take() == [f"data: {i}\n\n" for i in range(50)]
        gate.set()
        assert [chunk async for chunk in drain.batches(await drain.take())] == ["data: last\n\n"]
        await drain.close()

    asyncio.run(main())
    assert closed == ["sse-drain"]


def test_close_stops_the_generator_at_its_next_item_and_closes_it_in_its_thread():
    steps, closed = [], []

    def endless():
        try:
            while True:
                steps.append(1)
                time.sleep(0.01)
                yield "data: x\n\n"
        finally:
            closed.append(threading.current_thread().name)

    async def main():
        drain = Drain(endless())
        assert await drain.take()
        await drain.close()
        return len(steps)

    seen = asyncio.run(main())
    assert closed == ["sse-drain"]
    time.sleep(0.1)
    assert len(steps) == seen  # nothing ran after the close


def test_an_error_is_raised_after_the_items_before_it():
    def failing():
        yield "data: 1\n\n"
        raise RuntimeError("boom")

    async def main():
        drain = Drain(failing())
        items = []
        with pytest.raises(RuntimeError, match="boom"):
            while chunk := await drain.take():
                items += chunk
        await drain.close()
        return items

    assert asyncio.run(main()) == ["data: 1\n\n"]

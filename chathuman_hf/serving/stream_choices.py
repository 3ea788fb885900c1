"""Several streamed replies at once (``n`` > 1 with ``stream``): each generator runs in its own thread, items come
out as they are made, tagged with the reply's index; closing the merged stream stops every reply."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator
from typing import Any

_ITEM, _END, _ERROR = "item", "end", "error"


def merge_streams(sources: list[Generator]) -> Generator[tuple[int, Any], None, list[Any]]:
    """Yield ``(index, item)`` from ``sources`` as they come; returns each source's return value, in order. An
    exception of a source is raised here (the others are stopped)."""
    out: queue.Queue = queue.Queue()
    stop = threading.Event()

    def pump(index: int, source: Generator) -> None:
        value = None
        try:
            while not stop.is_set():
                try:
                    item = next(source)
                except StopIteration as end:
                    value = end.value
                    break
                out.put((index, _ITEM, item))
        except BaseException as exc:  # handed to the consumer
            out.put((index, _ERROR, exc))
            return
        finally:
            source.close()  # in its own thread: stops that reply's generation
        out.put((index, _END, value))

    threads = [threading.Thread(target=pump, args=(i, s), name=f"choice-{i}", daemon=True)
               for i, s in enumerate(sources)]
    for thread in threads:
        thread.start()
    results: list[Any] = [None] * len(sources)
    running = len(sources)
    try:
        while running:
            index, kind, payload = out.get()
            if kind == _ITEM:
                yield index, payload
            elif kind == _ERROR:
                raise payload
            else:
                results[index] = payload
                running -= 1
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return results

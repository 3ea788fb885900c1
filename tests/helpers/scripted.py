"""A tiny model made to write a given reply, token for token, whatever it is asked (a forward hook on the model's
logits): the decoding, streaming and serving around it run for real."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def scripted(model: Any, script: list[int] | None = None) -> Iterator[list[list[int]]]:
    """While inside, each reply of ``model`` is ``box[0]`` (settable; ``script`` at first): token i of a reply is
    ``box[0][i]`` (the last one repeated after the end). A reply starts at each prompt (``input_ids`` longer than one).
    One reply at a time (no batching)."""
    box, step = [list(script or [])], [0]

    def follow(_module: Any, _args: Any, kwargs: dict, output: Any) -> Any:
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[-1] > 1:
            step[0] = 0
        logits = output.logits
        logits[..., -1, :] = -1.0e4
        logits[..., -1, box[0][min(step[0], len(box[0]) - 1)]] = 1.0e4
        step[0] += 1
        return output

    handle = model.register_forward_hook(follow, with_kwargs=True)
    try:
        yield box
    finally:
        handle.remove()

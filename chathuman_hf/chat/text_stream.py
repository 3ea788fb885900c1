"""Streaming helpers: stopping a running ``generate`` and the text rules of a streamed reply as a user sees it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import torch
from transformers import StoppingCriteria, TextIteratorStreamer


class CancelGeneration(StoppingCriteria):
    """Stops a running ``generate`` once ``event`` is set (a streaming client went away) or at ``deadline``."""

    def __init__(self, event: threading.Event, deadline: float = float("inf")) -> None:
        self.event = event
        self.deadline = deadline

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        stop = self.event.is_set() or time.monotonic() > self.deadline
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def shown_pieces(streamer: TextIteratorStreamer) -> Iterator[str]:
    """Yield the streamer's text as shown to a user; returns (pieces shown, trailing U+FFFD held, started)."""
    started, shown = False, []
    spaces = ""  # trailing whitespace held back until more text comes (never at the end of a reply)
    held = ""  # trailing U+FFFD: bytes of a character not complete yet (byte fallback): never shown
    for piece in streamer:
        piece = held + piece
        kept = piece.rstrip("\ufffd")
        held, piece = piece[len(kept):], kept
        if not piece:
            continue
        if not started:
            piece = piece.lstrip()
            started = bool(piece)
        piece = spaces + piece  # whitespace is shown once text follows it: the reply is stripped
        body = piece.rstrip()
        spaces = piece[len(body):]
        if body:
            shown.append(body)
            yield body
    return shown, held, started

"""Checks of an OpenAI chat request made before generation starts, and the client's ``stop`` strings.

A conversation the model's chat template refuses (Gemma-2: "System role not supported"; Mistral-style templates:
"roles must alternate") is the client's mistake: a 400 with the template's reason, before a stream starts.
``stop`` (a string or up to 4) is honoured: the reply ends before the first one, finish_reason "stop".
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

from jinja2.exceptions import TemplateError

from chathuman_hf.serving.errors import ApiError

MAX_STOP_STRINGS = 4  # as OpenAI


def check_template_accepts(tokenizer: Any, messages: list[dict[str, str]], tools: list[dict] | None = None) -> None:
    """``ApiError`` 400 with the template's own reason when it refuses to render ``messages`` (with ``tools``)."""
    try:
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, tools=tools)
    except TemplateError as exc:  # raise_exception(...) in the template: what it says is for the client
        raise ApiError(400, f"The model's chat template refuses this conversation: {exc}", param="messages") from None


def stop_strings(stop: str | list[str] | None) -> list[str]:
    """The request's ``stop`` as a list; more than ``MAX_STOP_STRINGS`` or an empty string is a 400."""
    stops = [] if stop is None else [stop] if isinstance(stop, str) else list(stop)
    if len(stops) > MAX_STOP_STRINGS:
        raise ApiError(400, f"stop: at most {MAX_STOP_STRINGS} sequences (got {len(stops)}).", param="stop")
    if any(not s for s in stops):
        raise ApiError(400, "stop: an empty string cannot end a reply; leave it out.", param="stop")
    return stops


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string (excluded, trailing whitespace dropped), and whether one was found."""
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(hits)].rstrip(), True) if hits else (text, False)


class StopStream:
    """Streamed pieces with the stop strings applied: text that may begin a stop string is held back until the
    next piece tells; ``stopped`` once one came (the caller then ends the generation)."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = stops
        self.pending = ""
        self.stopped = False
        self.shown: list[str] = []  # every piece given out so far

    def cut(self, pieces: Iterator[str],
            shape: Callable[[str], Any] = lambda piece: piece) -> Generator[Any, None, Any]:
        """``shape(piece)`` for each piece of ``pieces`` as it may be shown; returns the source's return value
        (``None`` when a stop string ended it). The source is closed at the end, at a stop string or when the
        consumer closes this generator (a client that went away stops the generation and frees the model)."""
        result = None
        try:
            while not self.stopped:
                try:
                    piece = self.feed(next(pieces))
                except StopIteration as stop:
                    result = stop.value
                    break
                if piece:
                    self.shown.append(piece)
                    yield shape(piece)
        finally:
            if hasattr(pieces, "close"):
                pieces.close()
        rest = self.flush()
        if rest:
            self.shown.append(rest)
            yield shape(rest)
        return result

    def feed(self, piece: str) -> str:
        """What of ``piece`` (with what was held back) can be shown now."""
        if self.stopped:
            return ""
        text, self.stopped = cut_at_stop(self.pending + piece, self.stops)
        if self.stopped:
            self.pending = ""
            return text
        hold = max((k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        shown = text[: len(text) - hold].rstrip()  # trailing whitespace waits too: a stop may follow it
        self.pending = text[len(shown):]
        return shown

    def flush(self) -> str:
        """The held-back rest once the reply ended without a stop string."""
        rest, self.pending = self.pending.rstrip(), ""
        return "" if self.stopped else rest

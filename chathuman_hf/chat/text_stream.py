"""Streaming helpers: stopping a running ``generate`` and the text rules of a streamed reply as a user sees it."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Generator, Iterator
from queue import Queue
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase, StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from chathuman_hf.chat.reply_text import split_reply


class CancelGeneration(StoppingCriteria):
    """Stops a running ``generate`` once ``event`` is set (a streaming client went away) or at ``deadline``."""

    def __init__(self, event: threading.Event, deadline: float = float("inf")) -> None:
        self.event = event
        self.deadline = deadline

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        stop = self.event.is_set() or time.monotonic() > self.deadline
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


_BYTE_IDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def byte_fallback_ids(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """Ids of byte-fallback tokens (``<0x15>``): a run of them is decoded together, and a run that is not valid
    UTF-8 as a whole becomes U+FFFD byte for byte (``<0x15>`` alone is ``\\x15``, ``<0x15><0xEC>`` is two U+FFFD),
    so a prefix ending inside a run is not a prefix of the whole reply. Computed once per tokenizer."""
    if tokenizer not in _BYTE_IDS:
        _BYTE_IDS[tokenizer] = frozenset(i for token, i in tokenizer.get_vocab().items()
                                         if len(token) == 6 and token.startswith("<0x") and token.endswith(">"))
    return _BYTE_IDS[tokenizer]


class ReplyStreamer(BaseStreamer):
    """A streamer for ``generate`` and the batch scheduler (``put``/``end``): iterating it yields the whole reply
    decoded so far each time tokens came, decoded on the consumer's thread, never in the generation loop.

    transformers' ``TextIteratorStreamer`` yields pieces decoded in separate runs (reset at each newline), whose
    concatenation can differ from the reply decoded at once; here every text is the decode of a token prefix."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, *, skip_prompt: bool, timeout: float | None = None) -> None:
        self.tokenizer = tokenizer
        self.byte_ids = byte_fallback_ids(tokenizer)
        self.skip_prompt = skip_prompt
        self.timeout = timeout
        self.tokens: list[int] = []
        self.queue: Queue = Queue()

    def put(self, value: torch.Tensor) -> None:
        if self.skip_prompt:
            self.skip_prompt = False
            return
        self.tokens.extend(value.reshape(-1).tolist())
        self.queue.put(len(self.tokens))

    def end(self) -> None:
        self.queue.put(None)

    def __iter__(self) -> Iterator[str]:
        while True:
            count = self.queue.get(timeout=self.timeout)  # queue.Empty after ``timeout`` seconds without a token
            while count is not None and not self.queue.empty():  # behind: decode only the latest prefix
                count = self.queue.get_nowait()
            if count is None:
                return
            while count and self.tokens[count - 1] in self.byte_ids:  # a run of byte tokens decodes as a whole
                count -= 1
            yield self.tokenizer.decode(self.tokens[:count], skip_special_tokens=True)


def shown_pieces(streamer: ReplyStreamer, opened: str | None = None) -> Generator[str, None, str]:
    """Yield the reply as shown to a user (``reply_text.split_reply`` of each decoded prefix), the new text each
    time it grows; returns the text shown."""
    shown = ""
    for text in streamer:
        now = split_reply(text, opened=opened, final=False)[1]
        if len(now) > len(shown) and now.startswith(shown):
            yield now[len(shown):]
            shown = now
    return shown

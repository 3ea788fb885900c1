"""The text of a reply as it is shown and returned: one rule for the streamed pieces and the final reply.

A leading reasoning block (``<think>…</think>``, EXAONE Deep's ``<thought>…</thought>``; Qwen3 writes an empty one
before every reply) is not part of the answer: it is split off (``Generation.reasoning``). Trailing whitespace and
trailing U+FFFD (the bytes of a character not complete yet, byte-level and byte-fallback tokenizers) are never shown.
The text shown for a prefix of the reply's tokens is a prefix of the text shown for the whole reply, so what is
streamed is what is returned.
"""

from __future__ import annotations

import re
from collections.abc import Callable

REASONING_TAGS = (("<think>", "</think>"), ("<thought>", "</thought>"))
_TAIL = re.compile(r"[\s\ufffd]+\Z")
MAX_CHAR_TOKENS = 4  # a UTF-8 character is at most 4 bytes: at most 4 byte tokens of one may be left incomplete


def opens_reasoning(prompt_text: str) -> str | None:
    """The closing tag awaited when the prompt itself opened a reasoning block (DeepSeek-R1's ``<think>\\n``)."""
    tail = prompt_text.rstrip()
    return next((close for start, close in REASONING_TAGS if tail.endswith(start)), None)


def split_reply(text: str, *, opened: str | None = None, final: bool = True) -> tuple[str, str]:
    """``(reasoning, answer)`` of a decoded reply, or of the part decoded so far (``final=False``: text that may
    still become a reasoning tag, and an unclosed block, are held back). ``opened``: the prompt's open block."""
    body, close = text.lstrip(), opened
    if close is None:
        for start, end in REASONING_TAGS:
            if body.startswith(start):
                body, close = body[len(start):], end
                break
            if not final and start.startswith(body):
                return "", ""  # "<thi": a tag or not, the next token tells
    reasoning = ""
    if close is not None:
        head, found, rest = body.partition(close)
        if not found:
            return head.strip(), ""  # still thinking (cut there: no answer)
        reasoning, body = head.strip(), rest
    return reasoning, _TAIL.sub("", body.lstrip())


def final_text(decode: Callable[[list[int]], str], ids: list[int], *, opened: str | None = None) -> tuple[str, str]:
    """``(reasoning, answer)`` of the reply ``ids`` (``decode``: ids → text). When it ends inside a character, the
    longest answer among the decodes without its last byte tokens: byte-level pieces can hold a whole character
    and half the next; byte fallback turns a whole run of byte tokens into U+FFFD when its end is incomplete."""
    text = decode(ids)
    best = split_reply(text, opened=opened)
    if "\ufffd" in (_TAIL.search(text) or [""])[0]:
        for cut in range(1, min(MAX_CHAR_TOKENS, len(ids)) + 1):
            parts = split_reply(decode(ids[:-cut]), opened=opened)
            if len(parts[1]) > len(best[1]):
                best = parts
    return best

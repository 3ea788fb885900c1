"""Gemma 4's tool-call syntax read back into calls: ``<|tool_call>call:NAME{key:value,…}<tool_call|>``, where keys
are bare, strings sit between ``<|"|>`` tokens and numbers, ``true``/``false``/``null``, lists and objects are
written as in JSON (what Gemma 4's template renders and xgrammar's ``gemma_4`` structural tag forces)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

QUOTE = '<|"|>'
CALL = re.compile(r"<\|tool_call>call:([A-Za-z0-9_.\-]+)\{(.*?)\}<tool_call\|>", re.DOTALL)
_BARE = re.compile(r"[^,:{}\[\]]+")
_PYTHON = {"None": None, "True": True, "False": False}


class _Reader:
    """A recursive-descent reader of one argument list (``key:value,…``)."""

    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def _skip(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in " \n\t":
            self.at += 1

    def _expect(self, char: str) -> None:
        self._skip()
        if not self.text.startswith(char, self.at):
            raise ValueError(f"expected {char!r} at {self.at}")
        self.at += len(char)

    def key(self) -> str:
        self._skip()
        if self.text.startswith(QUOTE, self.at):
            return self.string()
        match = _BARE.match(self.text, self.at)
        if match is None or not match.group().strip():
            raise ValueError(f"expected a key at {self.at}")
        self.at = match.end()
        return match.group().strip()

    def string(self) -> str:
        self._expect(QUOTE)
        end = self.text.find(QUOTE, self.at)
        if end < 0:
            raise ValueError("unterminated string")
        value, self.at = self.text[self.at:end], end + len(QUOTE)
        return value

    def members(self, close: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self._skip()
        while self.at < len(self.text) and not self.text.startswith(close, self.at):
            name = self.key()
            self._expect(":")
            out[name] = self.value()
            self._skip()
            if self.text.startswith(",", self.at):
                self.at += 1
                self._skip()
        return out

    def value(self) -> Any:
        self._skip()
        if self.text.startswith(QUOTE, self.at):
            return self.string()
        if self.text.startswith("{", self.at):
            self.at += 1
            out = self.members("}")
            self._expect("}")
            return out
        if self.text.startswith("[", self.at):
            self.at += 1
            items: list[Any] = []
            self._skip()
            while not self.text.startswith("]", self.at):
                items.append(self.value())
                self._skip()
                if self.text.startswith(",", self.at):
                    self.at += 1
                elif not self.text.startswith("]", self.at):
                    raise ValueError(f"expected ',' or ']' at {self.at}")
            self.at += 1
            return items
        match = _BARE.match(self.text, self.at)
        if match is None:
            raise ValueError(f"expected a value at {self.at}")
        self.at = match.end()
        word = match.group().strip()
        if word in _PYTHON:  # the template writes None as Jinja prints it
            return _PYTHON[word]
        return json.loads(word)  # a number, true, false or null (else not JSON: an error)


def gemma_arguments(text: str) -> dict[str, Any]:
    """The arguments of one call (the text between its braces); ``ValueError`` when it does not parse."""
    reader = _Reader(text)
    out = reader.members("\0")
    if reader.at != len(text):
        raise ValueError(f"unexpected text at {reader.at}")
    return out


def gemma_tool_calls(text: str, names: set[str], make: Callable[[str, Any], dict]) -> tuple[str | None, list[dict]]:
    """(content, calls) of a Gemma 4 reply; a call that does not parse, or names another tool, stays content."""
    calls, kept, last = [], [], 0
    for match in CALL.finditer(text):
        if match.group(1) not in names:
            continue
        try:
            arguments = gemma_arguments(match.group(2))
        except (ValueError, json.JSONDecodeError):
            continue
        calls.append(make(match.group(1), arguments))
        kept.append(text[last:match.start()])
        last = match.end()
    content = ("".join(kept) + text[last:]).strip() if calls else text
    return content or None, calls

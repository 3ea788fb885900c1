"""Reasoning in a reply: carried through the data pipeline as a ``<think>…</think>`` block at the start of an
assistant message's content — the form Qwen3's and DeepSeek-R1's templates parse, and what ``reasoning_content`` in
chat JSON becomes. The tokens layer (``tokens/template_inputs.py``) hands it to templates that read
``reasoning_content``; other templates get the content verbatim."""

from __future__ import annotations

import re

THINK = re.compile(r"\s*<think>(.*?)</think>(.*)", re.S)


def split_think(content: str) -> tuple[str, str] | None:
    """``(reasoning, reply)``, both stripped, of content that opens with a think block; None otherwise."""
    if "</think>" not in content:
        return None
    match = THINK.match(content)
    return (match.group(1).strip(), match.group(2).strip()) if match else None


def join_think(reasoning: str, reply: str) -> str:
    """The content carrying ``reasoning`` before ``reply`` (just ``reply`` when there is no reasoning)."""
    return f"<think>\n{reasoning}\n</think>\n\n{reply}" if reasoning else reply

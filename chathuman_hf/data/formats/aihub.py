"""AIHub corpora: 한국어 대화 요약 (``body.dialogue``), 한국어 SNS (``body`` list),
주제별 텍스트 일상 대화 (``info``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DataFormatError
from . import RawRecord, issue, record


def load_document(text: str, source: str) -> Any:
    """Parse a whole JSON document, naming the line/column when it is truncated or malformed."""
    if not text.strip():
        raise DataFormatError("empty file (expected an AIHub JSON document)", file=source, reason="empty_file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(
            f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg} (expected an AIHub JSON document)",
            file=source,
            reason="malformed_json",
        ) from err


def _utterances(items: Any, where: str, source: str) -> tuple[list[str], list[str]] | RawRecord:
    """Speakers and texts of a ``[{"participantID", "utterance"}]`` list, or an issue row."""
    if not isinstance(items, list):
        return issue(source, "malformed_record", where, f"expected a list of utterances, got {type(items).__name__}")
    if not items:
        return issue(source, "empty_dialogue", where, "no utterances")
    speakers, texts = [], []
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("utterance"), str):
            return issue(source, "malformed_record", f"{where}, utterance {position}",
                         'expected {"participantID": ..., "utterance": str}')  # fmt: skip
        speakers.append(str(item.get("participantID", "")))
        texts.append(item["utterance"])
    return speakers, texts


def _data_items(text: str, source: str) -> Iterator[tuple[str, str, Any] | RawRecord]:
    document = load_document(text, source)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataFormatError('expected an object with "data": a list of dialogues', file=source,
                              reason="malformed_file")  # fmt: skip
    for index, item in enumerate(document["data"]):
        where = f"data[{index}]"
        if not isinstance(item, dict) or "body" not in item:
            yield issue(source, "malformed_record", where, 'expected an object with "header" and "body"')
            continue
        header = item.get("header") or {}
        info = header.get("dialogueInfo") or {} if isinstance(header, dict) else None
        if not isinstance(header, dict):
            yield issue(source, "malformed_record", f"{where}.header",
                        f'expected an object with "dialogueInfo", got {type(header).__name__}')  # fmt: skip
            continue
        if not isinstance(info, dict):
            yield issue(source, "malformed_record", f"{where}.header.dialogueInfo",
                        f'expected an object with "dialogueID", got {type(info).__name__}')  # fmt: skip
            continue
        dialogue_id = str(info.get("dialogueID") or f"{Path(source).stem}:{index}")
        yield where, dialogue_id, item["body"]


def parse_summary(text: str, source: str, options: dict[str, Any]) -> Iterator[RawRecord]:
    """한국어 대화 요약: ``data[].body.dialogue[]`` utterances."""
    for item in _data_items(text, source):
        if isinstance(item, dict):
            yield item
            continue
        where, dialogue_id, body = item
        dialogue = body.get("dialogue") if isinstance(body, dict) else None
        if dialogue is None:
            yield issue(source, "malformed_record", f"{where}.body", 'expected an object with "dialogue": a list')
            continue
        parsed = _utterances(dialogue, f"{where}.body.dialogue", source)
        yield parsed if isinstance(parsed, dict) else record(source, dialogue_id, *parsed)


def parse_sns(text: str, source: str, options: dict[str, Any]) -> Iterator[RawRecord]:
    """한국어 SNS: ``data[].body`` is the utterance list itself."""
    for item in _data_items(text, source):
        if isinstance(item, dict):
            yield item
            continue
        where, dialogue_id, body = item
        parsed = _utterances(body, f"{where}.body", source)
        yield parsed if isinstance(parsed, dict) else record(source, dialogue_id, *parsed)


def parse_topic(text: str, source: str, options: dict[str, Any]) -> Iterator[RawRecord]:
    """주제별 텍스트 일상 대화: ``info[].annotations.lines[]`` with ``norm_text`` preferred over ``text``."""
    document = load_document(text, source)
    if not isinstance(document, dict) or not isinstance(document.get("info"), list):
        raise DataFormatError('expected an object with "info": a list of dialogues', file=source,
                              reason="malformed_file")  # fmt: skip
    for index, info in enumerate(document["info"]):
        where = f"info[{index}]"
        lines = ((info or {}).get("annotations") or {}).get("lines") if isinstance(info, dict) else None
        if not isinstance(lines, list):
            yield issue(source, "malformed_record", where, 'expected "annotations": {"lines": [...]}')
            continue
        speakers, texts, problem = [], [], None
        for position, line in enumerate(lines):
            content = line.get("norm_text") or line.get("text") if isinstance(line, dict) else None
            if not isinstance(content, str):
                problem = f"{where}.annotations.lines[{position}]"
                break
            speaker = line.get("speaker")
            speakers.append(str(speaker.get("id", "")) if isinstance(speaker, dict) else str(speaker or ""))
            texts.append(content)
        if problem:
            yield issue(
                source, "malformed_record", problem, 'expected {"norm_text" or "text": str, "speaker": {"id"}}'
            )
            continue
        dialogue_id = str(info.get("id") or f"{Path(source).stem}:{index}")
        yield record(source, dialogue_id, speakers, texts)

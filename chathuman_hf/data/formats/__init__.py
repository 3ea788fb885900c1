"""Per-format parsers: each turns one decoded file into raw records (utterances with speaker/role + text)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import describe

RawRecord = dict[str, Any]
Parser = Callable[[str, str, dict[str, Any]], Iterator[RawRecord]]


def record(
    source: str,
    dialogue_id: str,
    speakers: list[str],
    texts: list[str],
    roles: list[str] | None = None,
    drops: list[str] | None = None,
) -> RawRecord:
    """A raw dialogue: parallel ``speakers``/``roles``/``texts`` lists (role "" = decided by the turn rules)."""
    return {
        "source": source,
        "dialogue_id": dialogue_id,
        "speakers": [str(s) for s in speakers],
        "roles": list(roles) if roles is not None else [""] * len(texts),
        "texts": list(texts),
        "_drops": list(drops or []),
        "_notes": [],
        "_file": "",
    }


def issue(source: str, reason: str, where: str | None, message: str, count: int = 1) -> RawRecord:
    """A carrier row for a counted drop of bad input; ``_notes`` holds the one-line explanation."""
    row = record(source, "", [], [], drops=[reason] * count)
    row["_notes"] = [describe(source, where, message)]
    return row


def note(source: str, reason: str, count: int = 1) -> RawRecord:
    """A carrier row for a counted drop that is not bad input (e.g. Kakao system lines)."""
    return record(source, "", [], [], drops=[reason] * count)


def get_parser(name: str) -> Parser:
    """The parser for a format name (see ``FORMATS``)."""
    from . import aihub, chat_json, kakao, tables

    parsers: dict[str, Parser] = {
        "aihub_summary": aihub.parse_summary,
        "aihub_sns": aihub.parse_sns,
        "aihub_topic": aihub.parse_topic,
        "kakao": kakao.parse,
        "qa_table": tables.parse_qa,
        "conversation_csv": tables.parse_conversation,
        "chat_json": chat_json.parse_messages,
        "sharegpt": chat_json.parse_sharegpt,
    }
    return parsers[name]


FORMATS = (
    "aihub_summary",
    "aihub_sns",
    "aihub_topic",
    "kakao",
    "qa_table",
    "conversation_csv",
    "chat_json",
    "sharegpt",
    "trl_preference",  # preference data: read by data/preferences.py, skipped by the dialogue pipeline
    "trl_unpaired",
    "llamafactory",
    "ultrafeedback",
    "feedback_log",  # our feedback log (data/feedback_log.py)
    "openwebui_feedback",  # Open WebUI's admin feedback export
)
ALIASES = {
    "csv": "qa_table",
    "tsv": "qa_table",
    "qa": "qa_table",
    "conversation": "conversation_csv",
    "messages": "chat_json",
    "jsonl": "chat_json",
    "json": "chat_json",
    "kakaotalk": "kakao",
    "dpo": "trl_preference",
    "kto": "trl_unpaired",
    "ranking": "llamafactory",
    "llamafactory_ranking": "llamafactory",
    "feedback": "feedback_log",
    "openwebui": "openwebui_feedback",
}

"""Format auto-detection from a file's content (extension only as a tie-breaker for tables)."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import DataFormatError, invalid_json
from .formats import ALIASES, FORMATS
from .formats.chat_json import first_json_object
from .formats.kakao import HEADER, KAKAO_LINE_PATTERNS, PC_DATE, PC_MESSAGE, is_csv_export
from .formats.preference import preference_kind
from .formats.tables import CONVERSATION_COLUMNS, QA_COLUMN_PAIRS, delimiter_for

KAKAO_SCAN_LINES = 50
LARGE_JSON_CHARS = 1_000_000
PREFIX_CHARS = 65_536
JSON_KEY_HINTS = (
    (re.compile(r'"body"\s*:\s*\{'), "aihub_summary"),
    (re.compile(r'"body"\s*:\s*\['), "aihub_sns"),
    (re.compile(r'"info"\s*:\s*\['), "aihub_topic"),
    (re.compile(r'"messages"\s*:\s*\['), "chat_json"),
    (re.compile(r'"conversations"\s*:\s*\['), "sharegpt"),
)
OPENWEBUI_HINT = re.compile(r'"type"\s*:\s*"rating"\s*,\s*"data"\s*:\s*\{')  # FeedbackModel's field order
PREFERENCE_HINT = re.compile(r'"(chosen|rejected|completions|label|kto_tag|generations)"\s*:')
PREFERENCE_KEYS = ("chosen", "rejected", "conversations", "instruction", "completion", "label", "kto_tag",
                   "completions", "generations", "ratings", "prompt")


def normalize_format(name: str) -> str:
    """Canonical format name (aliases such as ``csv``/``jsonl`` accepted); raises on unknown names."""
    key = (name or "auto").strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key != "auto" and key not in FORMATS:
        raise DataFormatError(
            f"unknown format {name!r}; use 'auto' or one of: {', '.join(FORMATS)} (aliases: {', '.join(ALIASES)})",
            reason="unknown_format",
        )
    return key


def _json_kind(obj: Any) -> str | None:
    if isinstance(obj, list):
        return _json_kind(obj[0]) if obj else None
    if not isinstance(obj, dict):
        return None
    if kind := preference_kind(obj):
        return kind
    if isinstance(obj.get("info"), list):
        return "aihub_topic"
    if isinstance(obj.get("data"), list):
        first = obj["data"][0] if obj["data"] else None
        if isinstance(first, dict) and "body" in first:
            return "aihub_sns" if isinstance(first["body"], list) else "aihub_summary"
        return _json_kind(first)
    if "messages" in obj:
        return "chat_json"
    if "conversations" in obj:
        return "sharegpt"
    return None


def _detect_json_prefix(text: str) -> str | None:
    """The loader whose key appears first in the opening of a large JSON document (None when no hint is found)."""
    head = text[:PREFIX_CHARS]
    first = first_json_object(head) if head.startswith("{") else None  # JSON Lines: the first record decides
    if first is not None and (kind := _json_kind(first)):
        return kind
    if head.startswith("[") and OPENWEBUI_HINT.search(head):  # an Open WebUI export: its chats hold "messages"
        return "openwebui_feedback"
    if PREFERENCE_HINT.search(head):  # a large array of preference records: their keys decide
        keys = {key: [] if key == "completions" else None for key in PREFERENCE_KEYS if f'"{key}"' in head}
        if kind := preference_kind(keys):
            return kind
    hits = [(m.start(), kind) for pattern, kind in JSON_KEY_HINTS if (m := pattern.search(head))]
    return min(hits)[1] if hits else None


def _detect_json(text: str, source: str) -> str:
    if len(text) > LARGE_JSON_CHARS and (kind := _detect_json_prefix(text)):
        return kind  # a large document is parsed once, by its loader, not twice
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        obj = first_json_object(text.strip())  # JSON Lines, perhaps with a bad first record
        if obj is None:
            if isinstance(err, RecursionError):
                raise DataFormatError("nested too deeply to read", file=source, reason="malformed_json") from err
            raise invalid_json(err, source) from err
    kind = _json_kind(obj)
    if kind is None:
        keys = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise DataFormatError(
            f"JSON of unknown shape (top level: {keys}); expected 'messages', 'conversations', AIHub 'data' "
            "or 'info', or preference data ('chosen'/'rejected', 'completion'/'label', 'completions'); "
            "pass --format to choose a loader",
            file=source,
            reason="unknown_format",
        )
    return kind


def _table_kind(text: str, source: str) -> str | None:
    header = text.split("\n", 1)[0].strip("\r")
    cells = [c.strip().strip('"').lower() for c in header.split(delimiter_for(text, source))]
    if any(name in cells for name in CONVERSATION_COLUMNS):
        return "conversation_csv"
    if any(q in cells and a in cells for q, a in QA_COLUMN_PAIRS):
        return "qa_table"
    return None


def detect_format(text: str, source: str = "") -> str:
    """Guess a file's format from its text; raises :class:`DataFormatError` naming the file when it cannot."""
    stripped = text.lstrip()
    if not stripped:
        raise DataFormatError("empty file", file=source, reason="empty_file")
    lines = [line for line in stripped.splitlines()[:KAKAO_SCAN_LINES] if line.strip()]
    if stripped[0] == "{" or (stripped[0] == "[" and not PC_MESSAGE.match(lines[0])):
        return _detect_json(stripped, source)
    if is_csv_export(stripped):
        return "kakao"
    for line in lines:
        if HEADER.search(line) or PC_DATE.match(line) or any(p.match(line) for p in KAKAO_LINE_PATTERNS):
            return "kakao"
    table = _table_kind(stripped, source)
    if table:
        return table
    if source.lower().endswith((".csv", ".tsv")):
        header = lines[0] if lines else ""
        raise DataFormatError(
            f"no recognisable columns in header {header!r}: expected a question/answer pair (Q/A, question/answer, "
            "prompt/response, input/output, 질문/답변) or a 'conversation' column; name them with "
            "--question_column/--answer_column",
            file=source,
            record="line 1",
            reason="unrecognised_columns",
        )
    raise DataFormatError(
        f"could not detect the format (expected one of: {', '.join(FORMATS)}); pass --format",
        file=source,
        reason="unknown_format",
    )

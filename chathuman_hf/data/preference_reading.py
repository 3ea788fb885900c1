"""Reading preference files (JSON, JSONL, Parquet) into parsed records or counted issues, one per record read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .detect import detect_format, normalize_format
from .errors import DataFormatError
from .formats.chat_json import iter_json
from .formats.preference import (
    PREFERENCE_FORMATS,
    WHOLE_FILE_FORMATS,
    BadRecord,
    PrefRecord,
    get_preference_parser,
    preference_kind,
)
from .formats.rated import Counted, Entry
from .io import read_text

PARQUET = ".parquet"


@dataclass
class Item:
    """One record read from a file (or ``records`` records joined into one pair): its parsed form, or the reason it
    was dropped and a one-line message (``bad``: bad input, which stops a ``--strict`` run)."""

    where: str
    record: PrefRecord | None = None
    reason: str = ""
    message: str = ""
    records: int = 1
    bad: bool = True


@dataclass
class PreferenceFile:
    """A preference file read: its format, encoding and items (empty ``format``: not preference data)."""

    source: str
    format: str
    encoding: str
    items: list[Item]


def _parquet_rows(path: str, source: str) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise DataFormatError(f"cannot read as Parquet ({type(err).__name__}: {err})", file=source,
                              reason="malformed_file") from err  # fmt: skip
    for index, row in enumerate(rows):
        yield f"row {index}", row


def _parse(fmt: str, where: str, obj: Any) -> Item:
    if not isinstance(obj, dict):
        return Item(where, reason="malformed_record", message=f"expected an object, got {type(obj).__name__}")
    try:
        return Item(where, record=get_preference_parser(fmt)(obj))
    except BadRecord as err:
        return Item(where, reason=err.reason, message=str(err))


def _whole_file(fmt: str, entries: list[Entry], options: dict[str, Any], source: str) -> list[tuple[int, Item]]:
    """A feedback log or Open WebUI export: the file-level reader decides, since its rules span records."""
    from .formats.feedback import read_feedback_log
    from .formats.openwebui import read_openwebui_export

    readers = {"feedback_log": read_feedback_log, "openwebui_feedback": read_openwebui_export}
    items = []
    for read in readers[fmt](entries, options, source):
        if isinstance(read.result, BadRecord):
            item = Item(read.where, reason=read.result.reason, message=str(read.result), records=read.records,
                        bad=not isinstance(read.result, Counted))  # fmt: skip
        else:
            item = Item(read.where, record=read.result, records=read.records)
        items.append((read.index, item))
    return items


def read_preference_file(path: str, source: str, options: dict[str, Any]) -> PreferenceFile:
    """Parse every record of a preference file; a dialogue file gives ``format=""`` and no items.

    Raises :class:`DataFormatError` for a file that cannot be read at all (the caller counts it as one drop).
    """
    forced = normalize_format(options.get("format") or "auto")
    if path.lower().endswith(PARQUET):
        rows = list(_parquet_rows(path, source))
        found = next((preference_kind(obj) for _, obj in rows if preference_kind(obj)), None)
        fmt = forced if forced != "auto" else found
        if fmt not in PREFERENCE_FORMATS:
            keys = sorted(rows[0][1])[:8] if rows and isinstance(rows[0][1], dict) else []
            raise DataFormatError(
                f"Parquet columns {keys} are no preference format (expected prompt/chosen/rejected, "
                "prompt/completion/label, conversations+chosen+rejected or completions)",
                file=source,
                reason="unknown_format",
            )
        if fmt in WHOLE_FILE_FORMATS:
            whole = _whole_file(fmt, [(index, *row) for index, row in enumerate(rows)], options, source)
            return PreferenceFile(source, fmt, "parquet", [item for _, item in whole])
        return PreferenceFile(source, fmt, "parquet", [_parse(fmt, where, obj) for where, obj in rows])
    text, encoding = read_text(path, options.get("encoding"))
    if not text.strip():
        raise DataFormatError("empty file", file=source, reason="empty_file")
    fmt = detect_format(text, source) if forced == "auto" else forced
    if fmt not in PREFERENCE_FORMATS:
        return PreferenceFile(source, "", encoding, [])
    items: list[tuple[int, Item]] = []
    whole: list[Entry] = []
    for index, entry in enumerate(iter_json(text, source)):
        if isinstance(entry, dict):  # a line that is not JSON: iter_json's counted issue row
            note = entry["_notes"][0] if entry["_notes"] else ""
            where, _, message = note.removeprefix(f"{source}: ").partition(": ")
            items.append((index, Item(where, reason=entry["_drops"][0], message=message)))
        elif fmt in WHOLE_FILE_FORMATS:
            whole.append((index, *entry))
        else:
            items.append((index, _parse(fmt, *entry)))
    if whole:
        items = sorted(items + _whole_file(fmt, whole, options, source), key=lambda pair: pair[0])
    return PreferenceFile(source, fmt, encoding, [item for _, item in items])

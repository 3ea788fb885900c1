"""Reading input files into raw records: runs inside ``Dataset.from_generator`` (sharded over files for
``num_proc``); every file yields its records, its problems as counted issues, and one info row."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

from .detect import detect_format, normalize_format
from .errors import DataFormatError
from .formats import RawRecord, get_parser, issue, note
from .formats.preference import PREFERENCE_FORMATS
from .io import read_text
from .options import DataArguments
from .records import fix_unicode, is_record

PAYLOAD_KEYS = ("speakers", "roles", "texts", "_drops", "_notes")
PARQUET = ".parquet"  # only preference data comes as Parquet (data/preference_reading.py reads it)


def _skipped(source: str, why: str) -> RawRecord:
    row = note(source, "")
    row["_drops"] = []
    row["_file"] = json.dumps({"skipped": why})
    return row


def _read_file(entry: dict[str, Any], base: dict[str, Any]) -> Iterator[RawRecord]:
    source = entry["source"]
    if entry["skip"]:
        yield _skipped(source, entry["skip"])
        return
    options = merge_file_options(base, json.loads(entry["options"]))
    file_info: dict[str, Any] = {"format": "", "encoding": "", "records": 0}  # records: what kept + dropped add to
    try:
        if entry["path"].lower().endswith(PARQUET):
            yield _skipped(source, "Parquet: read as preference data only (see preferences.jsonl)")
            return
        text, file_info["encoding"] = read_text(entry["path"], options.get("encoding"))
        if not text.strip():
            raise DataFormatError("empty file", file=source, reason="empty_file")
        fmt = normalize_format(options.get("format") or "auto")
        file_info["format"] = detect_format(text, source) if fmt == "auto" else fmt
        if file_info["format"] in PREFERENCE_FORMATS:
            yield _skipped(source, f"preference data ({file_info['format']}): read into preferences.jsonl")
            return
        for raw in get_parser(file_info["format"])(text, source, options):
            file_info["records"] += is_record(raw)
            yield raw
    except DataFormatError as err:
        file_info["records"] += 1
        yield issue(source, err.reason, err.record, err.detail)
    except Exception as err:  # noqa: BLE001 - a parser surprise must become a counted drop, not a traceback
        file_info["records"] += 1
        yield issue(source, "malformed_file", None, f"unexpected structure ({type(err).__name__}: {err})")
    info = note(source, "")
    info["_drops"] = []
    info["_file"] = json.dumps(file_info)
    yield info


@functools.cache
def _default_parse_options() -> dict[str, Any]:
    return DataArguments().parse_options()


def merge_file_options(base: dict[str, Any], per_file: dict[str, Any]) -> dict[str, Any]:
    """Manifest options for one file fill in what the caller left at its default; explicit caller options win."""
    defaults = _default_parse_options()
    explicit = {key: value for key, value in base.items() if value != defaults.get(key)}
    return {**base, **per_file, **explicit}


def generate_raw(files: list[dict[str, Any]], base: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Raw records of every file (shardable over ``files`` for ``num_proc``), utterances packed as one JSON string."""
    for entry in files:
        for raw in _read_file(entry, base):
            payload = json.dumps([raw[key] for key in PAYLOAD_KEYS], ensure_ascii=False)
            fixed = fix_unicode(raw, payload)
            if fixed is not None:
                raw, payload = fixed, json.dumps([fixed[key] for key in PAYLOAD_KEYS], ensure_ascii=False)
            yield {
                "source": raw["source"],
                "dialogue_id": raw["dialogue_id"],
                "payload": payload,
                "_file": raw["_file"],
            }

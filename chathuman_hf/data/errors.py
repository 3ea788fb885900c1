"""Errors raised by the data pipeline."""

from __future__ import annotations

import json

from chathuman_hf.core.cli import DATA_EXIT


class DataFormatError(ValueError):
    """Bad or unsupported input; the message names the file, the record and what was expected (exit 1 in a recipe)."""

    exit_status = DATA_EXIT

    def __init__(
        self, message: str, *, file: str | None = None, record: str | None = None, reason: str = "malformed_file"
    ) -> None:
        self.file = file
        self.record = record
        self.reason = reason
        self.detail = message
        super().__init__(describe(file, record, message))


def describe(file: str | None, record: str | None, message: str) -> str:
    """One line ``file: record: message`` (parts that are unknown are left out)."""
    return ": ".join(part for part in (file, record, message) if part)


def invalid_json(err: json.JSONDecodeError, source: str) -> DataFormatError:
    """The error for a file that is neither one JSON document nor JSON Lines."""
    return DataFormatError(
        f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg} (expected a JSON document or one JSON "
        "object per line)",
        file=source,
        reason="malformed_json",
    )

"""CSV/TSV tables: one Q/A pair per row, or the seed's ``conversation`` column holding a whole dialogue."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DataFormatError
from . import RawRecord, issue, record

QA_COLUMN_PAIRS = (
    ("q", "a"),
    ("question", "answer"),
    ("prompt", "response"),
    ("input", "output"),
    ("질문", "답변"),
    ("query", "response"),
    ("instruction", "output"),
)
CONVERSATION_COLUMNS = ("conversation", "dialogue", "대화")
ROLE_MARKER = re.compile(r"(<usr>|<sys>)")


def delimiter_for(text: str, source: str) -> str:
    """Tab for ``.tsv`` files or a header with more tabs than commas, else comma."""
    if source.lower().endswith(".tsv"):
        return "\t"
    header = text.split("\n", 1)[0]
    return "\t" if header.count("\t") > header.count(",") else ","


def csv_reader(text: str, delimiter: str = ",") -> Any:
    """``csv.reader`` over ``text`` that accepts a field as long as the text itself.

    The module's default ``field_size_limit`` (131,072 characters) made one long answer lose every row after it;
    no field can be longer than its file, so the (process-wide) limit is raised to the text's length.
    """
    if len(text) > csv.field_size_limit():
        csv.field_size_limit(len(text))
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def read_header(text: str, source: str) -> tuple[list[str], Any]:
    """Parse the header row; returns ``(header, reader)`` (``reader.line_num`` gives line numbers)."""
    if not text.strip():
        raise DataFormatError("empty file (expected a header row and data rows)", file=source, reason="empty_file")
    reader = csv_reader(text, delimiter_for(text, source))
    header = [h.strip() for h in next(reader)]
    return header, reader


def find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    """Index of the first header cell equal (case-insensitively) to one of ``names``."""
    lowered = [h.lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def qa_columns(header: list[str], question: str | None, answer: str | None, source: str) -> tuple[int, int] | None:
    """Indices of the question/answer columns: the overrides when given, else the first known pair found."""
    if question or answer:
        missing = [name for name in (question, answer) if name and name not in header]
        if missing or not (question and answer):
            raise DataFormatError(
                f"question/answer columns {question!r}/{answer!r} not found (columns are {header}); pass both "
                "--question_column and --answer_column with names from the header",
                file=source,
                record="line 1",
                reason="unrecognised_columns",
            )
        return header.index(question), header.index(answer)  # type: ignore[arg-type]
    lowered = [h.lower() for h in header]
    for q, a in QA_COLUMN_PAIRS:
        if q in lowered and a in lowered:
            return lowered.index(q), lowered.index(a)
    return None


def _unrecognised(header: list[str], source: str) -> DataFormatError:
    pairs = ", ".join(f"{q}/{a}" for q, a in QA_COLUMN_PAIRS)
    return DataFormatError(
        f"no recognisable columns in header {header}: expected a question/answer pair ({pairs}) or a "
        "'conversation' column; name them with --question_column/--answer_column",
        file=source,
        record="line 1",
        reason="unrecognised_columns",
    )


def _rows(reader: Any, width: int, source: str) -> Iterator[tuple[str, list[str]] | RawRecord]:
    previous_line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield issue(source, "malformed_record", f"line {reader.line_num}", f"unreadable CSV row ({err})")
            previous_line = reader.line_num
            continue  # the reader resumes at the next line: the rows after a bad one are kept
        where = f"line {previous_line + 1}"
        previous_line = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < width:
            yield issue(source, "malformed_record", where, f"expected {width} fields, got {len(row)}")
            continue
        yield where, row


def parse_qa(text: str, source: str, options: dict[str, Any]) -> Iterator[RawRecord]:
    """One single-exchange dialogue per row (question → user, answer → assistant)."""
    header, reader = read_header(text, source)
    columns = qa_columns(header, options.get("question_column"), options.get("answer_column"), source)
    if columns is None:
        raise _unrecognised(header, source)
    qi, ai = columns
    stem = Path(source).stem
    for item in _rows(reader, max(qi, ai) + 1, source):
        if isinstance(item, dict):
            yield item
            continue
        where, row = item
        question, answer = row[qi].strip(), row[ai].strip()
        if not question or not answer:
            empty = header[qi] if not question else header[ai]
            yield issue(source, "empty_field", where, f"column {empty!r} is empty, expected text")
            continue
        yield record(source, f"{stem}:{where.split()[-1]}", ["user", "assistant"], [question, answer],
                     roles=["user", "assistant"])  # fmt: skip


def split_conversation(value: str) -> tuple[list[str], list[str], list[str]]:
    """``<usr>a<sys>b`` → roles from the markers; plain text → one turn per line, speakers alternating."""
    if ROLE_MARKER.search(value):
        parts = ROLE_MARKER.split(value)
        roles, texts = [], []
        for marker, content in zip(parts[1::2], parts[2::2], strict=True):
            if content.strip():
                roles.append("user" if marker == "<usr>" else "assistant")
                texts.append(content.strip())
        return roles, roles, texts
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    speakers = ["A" if i % 2 == 0 else "B" for i in range(len(lines))]
    return speakers, [""] * len(lines), lines


def parse_conversation(text: str, source: str, options: dict[str, Any]) -> Iterator[RawRecord]:
    """The seed's CSV: a ``conversation`` column with ``<usr>…<sys>…`` markers or newline-separated turns."""
    header, reader = read_header(text, source)
    column = find_column(header, CONVERSATION_COLUMNS)
    if column is None:
        raise _unrecognised(header, source)
    id_column = find_column(header, ("dialogue_id", "id"))
    stem = Path(source).stem
    for item in _rows(reader, column + 1, source):
        if isinstance(item, dict):
            yield item
            continue
        where, row = item
        speakers, roles, texts = split_conversation(row[column])
        if not texts:
            yield issue(source, "empty_field", where, f"column {header[column]!r} is empty, expected a dialogue")
            continue
        has_id = id_column is not None and id_column < len(row) and row[id_column].strip()
        dialogue_id = row[id_column].strip() if has_id else f"{stem}:{where.split()[-1]}"
        yield record(source, dialogue_id, speakers, texts, roles=roles)

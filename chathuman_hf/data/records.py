"""Record accounting: which raw rows stand for an input record, and records whose text is not valid Unicode."""

from __future__ import annotations

import re
from typing import Any

from .formats import RawRecord, issue

WARNING_PREFIX = "warning: "
KEPT = "kept"
SURROGATE = re.compile("[\ud800-\udfff]")


def is_record(raw: RawRecord) -> bool:
    """A dialogue read from a file, or an issue row standing for one unreadable record (or file); not a note."""
    return bool(raw["dialogue_id"]) or any(not note.startswith(WARNING_PREFIX) for note in raw["_notes"])


def record_outcome(raw_is_record: bool, dialogue_id: str, drops: list[str], kept: bool) -> str:
    """``"kept"``, the reason a record was lost (an issue row's reason; a dialogue left without a pair), or ""."""
    if not raw_is_record:
        return ""
    if kept:
        return KEPT
    return drops[-1] if dialogue_id else drops[0]


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encodes(*texts: str) -> bool:
    try:
        for text in texts:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fix_unicode(raw: RawRecord, payload: str) -> RawRecord | None:
    """None when every string of ``raw`` encodes as UTF-8; else its replacement (an ``invalid_text`` issue row).

    JSON's ``\\ud800`` escapes decode to lone surrogates, which Arrow cannot store: such a record must cost one
    counted drop, not the run. A file name that is not UTF-8 is only made printable.
    """
    if _encodes(payload, raw["source"], raw["dialogue_id"]):
        return None
    fixed: dict[str, Any] = {**raw, "source": _printable(raw["source"])}
    if not raw["dialogue_id"]:  # a carrier row (e.g. an issue quoting the bad text): kept, made printable
        fixed.update({key: [_printable(item) for item in raw[key]] for key in ("_notes", "_drops")})
        return fixed
    if _encodes(payload, raw["dialogue_id"]):
        return fixed
    found = SURROGATE.search(payload + raw["dialogue_id"])
    code = f"{ord(found.group()):04X}" if found else "D800"
    message = f"a lone surrogate (U+{code}) in the text, not valid Unicode; fix or remove the \\u{code.lower()} escape"
    return issue(fixed["source"], "invalid_text", _printable(raw["dialogue_id"]), message)

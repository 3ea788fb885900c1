"""Ratings read whole files at a time (feedback logs, Open WebUI exports): rules that span records.

A file-level reader gets every decoded record of a file as ``(index, where, object)`` and returns one
:class:`Read` per record or group of records, so that kept + dropped = read still holds: two opposite ratings of
replies to the same context become one pair that stands for both records (``records=2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .preference import BadRecord, Messages, PrefRecord, pair, rating

Entry = tuple[int, str, Any]  # (position in the file, where, decoded object)


class Counted(BadRecord):
    """A record left out by a rule (rated again, a duplicate, another model's reply), not bad input: ``--strict``
    does not stop on it."""


class Read(NamedTuple):
    """What became of one record (or of the records a pair joins): the row, or why it was left out."""

    index: int
    where: str
    records: int
    result: PrefRecord | BadRecord


@dataclass
class Rated:
    """One 👍/👎 on a reply: ``group`` is the context it answers (replies to the same context are siblings)."""

    index: int
    where: str
    group: str
    prompt: Messages
    reply: str
    label: bool


def pair_opposites(rated: list[Rated]) -> list[Read]:
    """Pair each 👍 with the first unused 👎 of a different reply to the same context (file order); the two
    records become one DPO pair, and every rating left over stays a KTO rating. Each record is used once, so a
    KTO stage (ratings plus pairs unpaired) sees every rated reply exactly once."""
    groups: dict[str, list[Rated]] = {}
    for item in rated:
        groups.setdefault(item.group, []).append(item)
    out: list[Read] = []
    for members in groups.values():
        negatives = [m for m in members if not m.label]
        for good in (m for m in members if m.label):
            bad = next((n for n in negatives if n.reply != good.reply), None)
            if bad is None:
                out.append(Read(good.index, good.where, 1, rating(good.prompt, good.reply, True)))
                continue
            negatives.remove(bad)
            first, second = sorted((good, bad), key=lambda m: m.index)
            out.append(Read(first.index, f"{first.where} + {second.where}", 2, pair(good.prompt, good.reply,
                                                                                     bad.reply)))  # fmt: skip
        out += [Read(n.index, n.where, 1, rating(n.prompt, n.reply, False)) for n in negatives]
    return out


def rating_value(value: Any, what: str) -> bool:
    """👍 (1) or 👎 (-1), as an int or a string ("1", "-1"); anything else is bad input."""
    if isinstance(value, str) and value.strip() in ("1", "-1", "+1"):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in (1, -1):
        return value == 1
    raise BadRecord("malformed_record", f"{what} is {value!r}, expected 1 or -1")


def wanted_model(model: Any, options: dict[str, Any]) -> bool:
    """True unless ``--feedback_model`` names models and ``model`` is not one of them."""
    models = options.get("feedback_model")
    return not models or model in models

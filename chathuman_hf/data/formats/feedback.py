"""Our feedback log (``chathuman_hf.feedback/1`` lines, ``data/feedback_log.py``) → pairs and ratings.

- ``pair`` events (a regenerated reply kept, an edit) are DPO pairs.
- ``rating`` events are KTO ratings; a reply rated again (same ``conversation`` and ``reply_id``) counts with its
  last rating, the earlier ones are dropped as ``re_rated``; a 👍 and a 👎 on different replies to the same
  context (the same ``messages``) become one DPO pair (see ``rated.pair_opposites``); a rating of a reply that a
  ``pair`` event already holds on the same side is dropped as ``rating_in_pair`` (the pair carries it).
- ``--feedback_model`` keeps the events of those models only (others: ``other_model``).
- A line with another schema (a log from a newer version) stops the run with one line.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import DataFormatError
from ..feedback_log import FEEDBACK_SCHEMA
from .preference import BadRecord, messages, pair, text_of
from .rated import Counted, Entry, Rated, Read, pair_opposites, rating_value, wanted_model

SCHEMA_PREFIX = FEEDBACK_SCHEMA.rsplit("/", 1)[0] + "/"


def is_feedback_line(obj: Any) -> bool:
    """A line of a feedback log of any version (its ``schema`` names ours)."""
    return isinstance(obj, dict) and isinstance(obj.get("schema"), str) and obj["schema"].startswith(SCHEMA_PREFIX)


def _context(obj: dict[str, Any]) -> list[dict[str, str]]:
    context = messages(obj.get("messages"), "messages")
    if not context or context[-1]["role"] != "user":
        raise BadRecord("prompt_not_ending_with_user", "messages must end with the user's turn the reply answers")
    return context


def _key(context: list[dict[str, str]], reply: str) -> str:
    return json.dumps([context, reply], ensure_ascii=False)


def read_feedback_log(entries: list[Entry], options: dict[str, Any], source: str) -> list[Read]:
    """Every line of a feedback log as a :class:`Read`; raises :class:`DataFormatError` on an unknown schema."""
    out: list[Read] = []
    ratings: list[tuple[Rated, tuple[Any, Any] | None]] = []
    paired: set[tuple[str, bool]] = set()
    for index, where, obj in entries:
        try:
            if not isinstance(obj, dict) or "schema" not in obj:
                raise BadRecord("malformed_record", f'not a feedback event (no "schema": {FEEDBACK_SCHEMA!r})')
            if obj["schema"] != FEEDBACK_SCHEMA:
                raise DataFormatError(f"schema {obj['schema']!r} is not one this version reads ({FEEDBACK_SCHEMA});"
                                      " upgrade chathuman_hf to read this log", file=source, record=where,
                                      reason="unknown_schema")  # fmt: skip
            event = obj.get("event")
            if event not in ("rating", "pair"):
                raise BadRecord("malformed_record", f"event is {event!r}, expected 'rating' or 'pair'")
            if not wanted_model(obj.get("model"), options):
                raise Counted("other_model", f"model {obj.get('model')!r} is not one of --feedback_model")
            if event == "pair":
                context = _context(obj)
                chosen, rejected = text_of(obj.get("chosen"), "chosen"), text_of(obj.get("rejected"), "rejected")
                paired.update({(_key(context, chosen), True), (_key(context, rejected), False)})
                out.append(Read(index, where, 1, pair(context, chosen, rejected)))
            else:
                context = _context(obj)
                label = rating_value(obj.get("rating"), "rating")
                reply = text_of(obj.get("reply"), "reply")
                group = json.dumps(context, ensure_ascii=False)
                who = (obj.get("conversation"), obj["reply_id"]) if obj.get("reply_id") is not None else None
                ratings.append((Rated(index, where, group, context, reply, label), who))
        except BadRecord as err:
            out.append(Read(index, where, 1, err))
    last: dict[tuple[Any, Any], Rated] = {}
    for item, who in ratings:
        if who is not None:
            last[who] = item
    current: list[Rated] = []
    for item, who in ratings:
        if who is not None and last[who] is not item:
            why = Counted("re_rated", f"rated again at {last[who].where}; the last rating counts")
        elif (_key(item.prompt, item.reply), item.label) in paired:
            why = Counted("rating_in_pair", "a pair event holds this reply on the same side")
        else:
            current.append(item)
            continue
        out.append(Read(item.index, item.where, 1, why))
    return out + pair_opposites(current)

"""Values that only exist once consecutive messages are joined, as merging them into one turn does
(``번호 010`` / ``4321`` / ``8765 야``; a card number over four messages; ``010-4321`` / ``😀`` / ``8765`` once
cleaning has emptied the emoji message).

Each message was scanned alone first (:func:`pii.scrub_text`); this scans every run of messages whose neighbouring
edges hold value characters as one text, and replaces what crosses a message boundary.
"""

from __future__ import annotations

from collections import Counter

from .pii import MAYBE, SPACE_CHAR, VALUE_CHAR, Replacer, find_values, placeholder


def _edges(text: str) -> str:
    """The first and last characters of ``text`` that cleaning keeps ("" when cleaning empties it)."""
    start, end = 0, len(text)
    while start < end and SPACE_CHAR.match(text, start):
        start += 1
    while end > start and SPACE_CHAR.match(text, end - 1):
        end -= 1
    return text[start] + text[end - 1] if start < end else ""


def scrub_runs(texts: list[str], replace: Replacer = placeholder, counts: Counter[str] | None = None,
               reach: int = 64) -> list[str]:
    """``texts`` (consecutive messages, already scrubbed one by one) with every value that appears only when
    messages are joined replaced: ``replace(kind, value)`` goes where the value starts, the rest of it leaves the
    following messages (a message that was all value is left blank, and cleaning drops it).

    Messages that cleaning empties (an emoji alone) are skipped over, as merging does once they are dropped; a run
    ends at a message longer than ``reach`` (its last ``reach`` characters start the next run).
    """
    out = list(texts)
    if len(out) < 2 or not MAYBE.search("".join(out)):
        return out  # no digit, "@" or URL start even joined: nothing to find
    run: list[int] = []
    for index, text in enumerate(out):
        edges = _edges(text)
        if not edges:
            continue  # cleaning drops it: its neighbours become adjacent
        if run and not (VALUE_CHAR.match(_edges(out[run[-1]])[-1]) and VALUE_CHAR.match(edges[0])):
            _scrub_run(out, run, replace, counts, reach)
            run = []
        run.append(index)
        if len(run) > 1 and len(text.strip()) > reach:
            _scrub_run(out, run, replace, counts, reach)
            run = [index]
    _scrub_run(out, run, replace, counts, reach)
    return out


def _scrub_run(out: list[str], run: list[int], replace: Replacer, counts: Counter[str] | None, reach: int) -> None:
    """Scan the messages ``run`` (indexes into ``out``) joined, and cut what crosses a boundary out of ``out``."""
    if len(run) < 2:
        return
    spans: list[tuple[int, int, int]] = []  # (message, start, end) of each piece of the joined text
    for position, index in enumerate(run):
        text = out[index]
        start = len(text) - len(text.lstrip()) if position else 0
        end = len(text.rstrip()) if position < len(run) - 1 else len(text)
        if position == 0:
            start = max(start, end - reach)
        if position == len(run) - 1:
            end = min(end, start + reach)
        spans.append((index, start, end))
    joined, offsets = "", []
    for index, start, end in spans:
        offsets.append(len(joined))
        joined += out[index][start:end]
    cuts: dict[int, list[tuple[int, int, str]]] = {}
    for begin, stop, kind, value in find_values(joined):
        first = max(p for p, offset in enumerate(offsets) if offset <= begin)
        last = max(p for p, offset in enumerate(offsets) if offset < stop)
        if first == last:
            continue  # inside one message: scanned already
        if counts is not None:
            counts[kind] += 1
        for position in range(first, last + 1):
            index, start, end = spans[position]
            cut_start = start + begin - offsets[position] if position == first else start
            cut_end = start + stop - offsets[position] if position == last else end
            cuts.setdefault(index, []).append((cut_start, cut_end, replace(kind, value) if position == first else ""))
    for index, pieces in cuts.items():
        text = out[index]
        for start, end, new in sorted(pieces, reverse=True):
            text = text[:start] + new + text[end:]
        out[index] = text

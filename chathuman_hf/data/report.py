"""DataReport: what was kept per source and what was dropped, by named reason."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

MAX_EXAMPLES = 3
MAX_TABLE_SOURCES = 30  # above this the printed table groups sources by folder (report.json keeps every file)


class DataReport:
    """Counts of kept dialogues per source and dropped items per reason (shared by every pipeline stage)."""

    def __init__(self) -> None:
        self.dropped: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.files: dict[str, dict[str, str]] = {}
        self.stats: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.skipped: dict[str, str] = {}
        self.records: Counter[str] = Counter()
        self.pii: dict[str, Any] = {}  # set by the scrubbing step: setting, counts per type and per file

    def drop(self, reason: str, count: int = 1, where: str | None = None) -> None:
        """Count ``count`` items dropped for ``reason``; ``where`` (file/record) is kept as an example."""
        if count <= 0:
            return
        self.dropped[reason] += count
        if where:
            examples = self.examples.setdefault(reason, [])
            if len(examples) < MAX_EXAMPLES and where not in examples:
                examples.append(where)

    def add_drops(self, drops: dict[str, int]) -> None:
        """Add a ``{reason: count}`` mapping (e.g. from a later tokenization stage)."""
        for reason, count in drops.items():
            self.drop(reason, int(count))

    def kept(self, source: str, n: int) -> None:
        """Record ``n`` dialogues kept from ``source``."""
        self.sources[source] += n

    def file_info(self, source: str, *, format: str, encoding: str, records: int = 0) -> None:
        """Remember which format and encoding a file was read with, and how many records it held."""
        self.files[source] = {"format": format, "encoding": encoding, "records": records}

    def record_outcomes(self, outcomes: dict[str, int]) -> None:
        """Add ``{"kept" or drop reason: records}``: every record read is kept or lost for one reason."""
        self.records.update({outcome: count for outcome, count in outcomes.items() if outcome})

    def records_summary(self) -> dict[str, Any]:
        """``{"read", "kept", "dropped": {reason: records}}`` with kept + sum(dropped) == read."""
        dropped = {reason: count for reason, count in sorted(self.records.items()) if reason != "kept"}
        return {"read": sum(self.records.values()), "kept": self.records["kept"], "dropped": dropped}

    def skip(self, source: str, why: str) -> None:
        """Remember a file in a walked folder that was not read (e.g. a README), and why."""
        self.skipped[source] = why

    def warn(self, message: str) -> None:
        """Keep a warning that was also emitted with ``warnings.warn``."""
        if message not in self.warnings:
            self.warnings.append(message)

    @property
    def total_kept(self) -> int:
        return sum(self.sources.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: dialogues, dropped, sources, files, examples, stats and warnings."""
        return {
            "dialogues": self.total_kept,
            "dropped": dict(sorted(self.dropped.items())),
            "sources": dict(sorted(self.sources.items())),
            "files": dict(sorted(self.files.items())),
            "skipped_files": dict(sorted(self.skipped.items())),
            "records": self.records_summary(),
            "drop_examples": dict(sorted(self.examples.items())),
            **({"pii": self.pii} if self.pii else {}),
            **self.stats,
            "warnings": list(self.warnings),
        }

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as UTF-8 JSON (Korean kept readable)."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    def format_table(self) -> str:
        """A readable plain-text table of kept sources, drops and stats."""
        lines: list[str] = []

        def section(title: str, rows: list[tuple[str, str]]) -> None:
            if not rows:
                return
            width = max(len(k) for k, _ in rows)
            lines.append(title)
            lines.extend(f"  {k.ljust(width)}  {v.rjust(8)}" for k, v in rows)

        rows = [(k, str(v)) for k, v in sorted(self.sources.items())]
        if len(rows) > MAX_TABLE_SOURCES:
            rows = [(k, f"{v} in {n} files") for k, (v, n) in sorted(_by_folder(self.sources).items())]
        prefs = self.stats.get("preferences")
        if rows or not prefs:
            section("kept dialogues per source", [*rows, ("total", str(self.total_kept))])
        if prefs:
            section("kept preference pairs / ratings per source",
                    [*((k, f"{v['pairs']} / {v['ratings']}") for k, v in prefs["sources"].items()),
                     ("total", f"{prefs['pairs']} / {prefs['ratings']}")])  # fmt: skip
        section("dropped (reason: count)", [(k, str(v)) for k, v in sorted(self.dropped.items())])
        if self.records:
            summary = self.records_summary()
            lost = sum(summary["dropped"].values())
            within = sum(self.dropped.values()) - lost  # utterances, turns, examples dropped inside kept records
            lines.append(f"records read {summary['read']} = kept {summary['kept']} + lost {lost}"
                         + (f" (the other {within} drops above are parts of kept records: utterances, turns, examples)"
                            if within > 0 else ""))
        examples = [(k, v[0]) for k, v in sorted(self.examples.items()) if v]
        if examples:
            lines.append("first example per reason")
            lines.extend(f"  {k}: {_shorten(v)}" for k, v in examples)
        if self.pii.get("scrubbed_files"):
            total = self.pii.get("total", {})
            section(f"personal data replaced ({self.pii['scrubbed_files']} file(s) scrubbed)",
                    [(k, str(v)) for k, v in total.items()] or [("none found", "0")])  # fmt: skip
        for name, counts in self.stats.get("speech_levels", {}).items():
            section(f"speech levels, {name} (replies / user turns / dialogues)",
                    [(lv, f"{counts['assistant'][lv]} / {counts['user'][lv]} / {counts['dialogues'][lv]}")
                     for lv in counts["assistant"]])
        for name in ("turns", "chars"):
            if name in self.stats:
                section(f"{name} per dialogue", [(k, f"{v:g}") for k, v in self.stats[name].items()])
        return "\n".join(lines)

    def add_stats(self, turns: list[int], chars: list[int]) -> None:
        """Store min/mean/median/max of messages and characters per dialogue."""
        self.stats["turns"] = describe_numbers(turns)
        self.stats["chars"] = describe_numbers(chars)


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _by_folder(sources: Counter[str]) -> dict[str, tuple[int, int]]:
    """``{folder/: (kept, files)}`` for a compact table."""
    grouped: dict[str, tuple[int, int]] = {}
    for source, n in sources.items():
        folder = source.rsplit("/", 1)[0] + "/" if "/" in source else "./"
        kept, files = grouped.get(folder, (0, 0))
        grouped[folder] = (kept + n, files + 1)
    return grouped


def describe_numbers(values: list[int]) -> dict[str, float]:
    """min/mean/median/max (zeros when empty)."""
    if not values:
        return {"min": 0, "mean": 0.0, "median": 0.0, "max": 0}
    return {
        "min": min(values),
        "mean": round(statistics.fmean(values), 2),
        "median": float(statistics.median(values)),
        "max": max(values),
    }

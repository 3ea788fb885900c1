"""Preference data: pairs (``prompt``/``chosen``/``rejected``) and ratings (``prompt``/``completion``/``label``).

The same pipeline as dialogues: files → parsed records (``preference_reading.py``) → PII scrub → cleaning → checks
(an empty reply, chosen == rejected, a prompt not ending with a user turn) → dedupe, with every record read kept or
counted as dropped with a reason in the :class:`DataReport` (``kept + dropped = read``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from datasets import Dataset, Features, List, Value

from .errors import DataFormatError, describe
from .files import expand_paths
from .names import FakeNamer
from .options import DataArguments
from .pairs import Sampler, rejected_from_dialogues, reply_slots
from .preference_reading import read_preference_file
from .preference_rows import Deduper, Dropped, clean_record
from .reading import merge_file_options
from .report import DataReport

PAIRS_FILE = "preferences.jsonl"
RATINGS_FILE = "ratings.jsonl"
MESSAGES = List({"role": Value("string"), "content": Value("string")})
PAIR_FEATURES = Features({"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES})
RATING_FEATURES = Features({"prompt": MESSAGES, "completion": MESSAGES, "label": Value("bool")})
FATAL_REASONS = ("unknown_schema",)  # a feedback log of a newer version: stop, never skip it silently
DIALOGUES_SKIP = "dialogues, not preference data (--rejected other|self builds pairs from them)"


@dataclass
class PreferenceData:
    """What :func:`load_preferences` returns: TRL's conversational preference and unpaired preference rows."""

    pairs: datasets.Dataset
    ratings: datasets.Dataset


@dataclass
class Tally:
    """Counts of one run: kept pairs/ratings per source, PII found per source."""

    pairs: Counter[str] = field(default_factory=Counter)
    ratings: Counter[str] = field(default_factory=Counter)
    paired_ratings: Counter[str] = field(default_factory=Counter)  # ratings joined into pairs (feedback)
    pii: dict[str, Counter[str]] = field(default_factory=dict)


def _files(args: DataArguments, report: DataReport) -> list[dict[str, Any]]:
    """Files to read: every data file except those the dialogue pass already read as dialogues."""
    scratch = DataReport()
    entries = expand_paths(args.data, scratch)
    for message in scratch.warnings:
        report.warn(message)
    return [entry for entry in entries if not entry["skip"] and entry["source"] not in report.files]


def scrub_choice(args: DataArguments) -> str | None:
    """Preference data is scrubbed unless ``--no_scrub_pii`` (ratings come from people talking): the replacement."""
    return None if args.scrub_setting() == "off" else args.pii_replacement


def _accept(source: str, row: dict[str, Any], tally: Tally, out: dict[str, list[dict[str, Any]]]) -> None:
    if "chosen" in row:
        out["pairs"].append(row)
        tally.pairs[source] += 1
    else:
        out["ratings"].append(row)
        tally.ratings[source] += 1


def read_preferences(args: DataArguments, report: DataReport, dedupe: Deduper, tally: Tally,
                     out: dict[str, list[dict[str, Any]]]) -> None:  # fmt: skip
    """Add the rows of every preference file of ``args.data`` to ``out`` (plain lists); the report is filled in."""
    cleaning, scrub = args.cleaning_options(), scrub_choice(args)
    base = args.parse_options()
    for entry in _files(args, report):
        source = entry["source"]
        options = merge_file_options(base, json.loads(entry["options"]))
        try:
            file = read_preference_file(entry["path"], source, options)
        except DataFormatError as err:
            if err.reason in FATAL_REASONS:
                raise
            if args.strict:
                raise DataFormatError(f"{err} (strict mode)", reason=err.reason) from None
            report.file_info(source, format="", encoding="", records=1)
            report.drop(err.reason, where=str(err))
            report.record_outcomes({err.reason: 1})
            continue
        if not file.format:
            if source not in report.skipped:
                report.skip(source, DIALOGUES_SKIP)
            continue
        report.skipped.pop(source, None)  # the dialogue pass skipped it as preference data: read here
        report.file_info(source, format=file.format, encoding=file.encoding,
                         records=sum(item.records for item in file.items))  # fmt: skip
        pii: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        for item in file.items:
            parts: list[str] = []
            try:
                if item.record is None:
                    if args.strict and item.bad:
                        raise DataFormatError(f"{describe(source, item.where, item.message)} (strict mode)",
                                              reason=item.reason)  # fmt: skip
                    raise Dropped(item.reason, item.message)
                namer = FakeNamer(args.name_seed, f"{Path(source).name}#{item.where}")
                row = clean_record(item.record, namer, cleaning, scrub, pii, parts)
                dedupe.check(row)
            except Dropped as drop:
                outcomes[drop.reason] += item.records
                report.drop(drop.reason, item.records, where=describe(source, item.where, str(drop)))
            else:
                outcomes["kept"] += item.records
                if item.records > 1:
                    tally.paired_ratings[source] += item.records
                _accept(source, row, tally, out)
            for reason in parts:
                report.drop(reason, where=describe(source, item.where, ""))
        report.record_outcomes(dict(outcomes))
        if scrub:
            tally.pii[source] = pii


def pairs_from_dialogues(args: DataArguments, dialogues: Dataset, report: DataReport, sampler: Sampler | None,
                         dedupe: Deduper, tally: Tally, out: dict[str, list[Any]]) -> dict[str, Any]:  # fmt: skip
    """``--rejected``: a pair per assistant reply of the dialogues, through the same rules; returns its counts."""
    slots = reply_slots(dialogues)
    rejected = rejected_from_dialogues(slots, args.rejected, args.rejected_seed, sampler)
    cleaning, scrub = args.cleaning_options(), scrub_choice(args)
    outcomes: Counter[str] = Counter()
    pii: Counter[str] = Counter()
    for slot, other in zip(slots, rejected, strict=True):
        parts: list[str] = []
        try:
            if other is None:
                raise Dropped("no_other_reply", "no reply different from this one was found")
            record = {"prompt": slot.prompt, "chosen": slot.reply, "rejected": other}
            row = clean_record(record, FakeNamer(args.name_seed, slot.where), cleaning, scrub, pii, parts)
            dedupe.check(row)
        except Dropped as drop:
            outcomes[drop.reason] += 1
            report.drop(drop.reason, where=f"{slot.where}: {drop}")
        else:
            outcomes["kept"] += 1
            _accept(f"--rejected {args.rejected}", row, tally, out)
    kept = outcomes.pop("kept", 0)
    return {"rejected": args.rejected, "seed": args.rejected_seed, "replies": len(slots), "pairs": kept,
            "dropped": dict(sorted(outcomes.items())), **({"pii": dict(sorted(pii.items()))} if pii else {})}


def _note_pii(report: DataReport, args: DataArguments, tally: Tally) -> None:
    if not tally.pii:
        return
    if not report.pii:
        report.pii = {"setting": args.scrub_setting(), "replacement": args.pii_replacement, "scrubbed_files": 0,
                      "total": {}}  # fmt: skip
    total = Counter(report.pii.get("total", {}))
    files = dict(report.pii.get("files", {}))
    for source, counts in tally.pii.items():
        total.update(counts)
        if counts:
            files[source] = dict(sorted(counts.items()))
    report.pii.update(scrubbed_files=report.pii.get("scrubbed_files", 0) + len(tally.pii),
                      total=dict(sorted(total.items())), files=files)  # fmt: skip


def to_datasets(rows: dict[str, list[dict[str, Any]]]) -> PreferenceData:
    """The row lists as :class:`PreferenceData` (typed, also when empty)."""
    def columns(items: list[dict[str, Any]], features: Features) -> Dataset:
        return Dataset.from_dict({name: [row[name] for row in items] for name in features}, features=features)

    return PreferenceData(columns(rows["pairs"], PAIR_FEATURES), columns(rows["ratings"], RATING_FEATURES))


def load_preferences(args: DataArguments, report: DataReport | None = None, *, dialogues: Dataset | None = None,
                     sample_replies: Sampler | None = None) -> PreferenceData:  # fmt: skip
    """Preference pairs and ratings from the files of ``args.data``; dialogue files give none unless ``--rejected``
    builds pairs from them (``dialogues``: those already loaded into ``report``; ``sample_replies``: the SFT model's
    sampler for ``--rejected self``, see ``chathuman_hf.training.preference_data``).

    Raises :class:`DataFormatError` (one line) when no pair or rating at all survives.
    """
    report = report if report is not None else DataReport()
    dedupe, tally = Deduper(), Tally()
    rows: dict[str, list[dict[str, Any]]] = {"pairs": [], "ratings": []}
    if args.rejected and dialogues is None:
        from .pipeline import load_dialogues_from_args

        dialogues = load_dialogues_from_args(args, report)
    read_preferences(args, report, dedupe, tally, rows)
    built = None
    if args.rejected and dialogues is not None:
        built = pairs_from_dialogues(args, dialogues, report, sample_replies, dedupe, tally, rows)
    _note_pii(report, args, tally)
    report.stats["preferences"] = {
        "pairs": sum(tally.pairs.values()),
        "ratings": sum(tally.ratings.values()),
        "sources": {s: {"pairs": tally.pairs[s], "ratings": tally.ratings[s],
                        **({"paired_ratings": tally.paired_ratings[s]} if tally.paired_ratings[s] else {})}
                    for s in sorted(set(tally.pairs) | set(tally.ratings))},  # fmt: skip
        **({"from_dialogues": built} if built else {}),
    }
    if not rows["pairs"] and not rows["ratings"]:
        dropped = report.records_summary()["dropped"]
        hint = ("the data holds dialogues only: --rejected other (or other-similar, self) builds pairs from them"
                if DIALOGUES_SKIP in report.skipped.values() and not args.rejected else
                "give files with prompt/chosen/rejected, prompt/completion/label, LLaMA-Factory ranking or "
                "UltraFeedback records (docs/preference.md)")  # fmt: skip
        raise DataFormatError(f"no preference pairs or ratings loaded (dropped records: {dropped}); {hint}",
                              reason="nothing_loaded")  # fmt: skip
    return to_datasets(rows)


def write_preferences(data: PreferenceData, output: str | Path) -> list[Path]:
    """Write ``preferences.jsonl`` and/or ``ratings.jsonl`` (only the rows) into ``output``; returns the paths."""
    written = []
    for name, dataset in ((PAIRS_FILE, data.pairs), (RATINGS_FILE, data.ratings)):
        if len(dataset) == 0:
            continue
        path = Path(output) / name
        with path.open("w", encoding="utf-8") as handle:
            for row in dataset:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        written.append(path)
    return written

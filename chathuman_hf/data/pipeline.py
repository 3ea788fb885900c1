"""The loading pipeline: files → raw records (``Dataset.from_generator``) → clean → turns → filter, with a report."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pyarrow.compute as pc
from datasets import Dataset, Features, List, Value

from .clean import CleaningOptions, clean_utterance
from .detect import detect_format, normalize_format
from .errors import DataFormatError, describe
from .files import expand_paths
from .formats import RawRecord, get_parser, issue, note
from .io import read_text
from .names import FakeNamer
from .options import DataArguments
from .records import WARNING_PREFIX, fix_unicode, is_record, record_outcome
from .report import DataReport
from .scrub import scrub_raw
from .turns import TurnOptions, build_messages, role_swapped, split_max_turns

PIPELINE_VERSION = "1"
PROGRESS_MIN_FILES = 200  # progress bars only for inputs at least this large (files, or rows below)
PROGRESS_MIN_ROWS = 20_000

STRINGS = List(Value("string"))
MESSAGES = List({"role": Value("string"), "content": Value("string")})
TURN_FEATURES = Features(
    {
        "source": Value("string"),
        "dialogue_id": Value("string"),
        "messages": MESSAGES,
        "_kept": Value("bool"),
        "_drops": STRINGS,
        "_notes": STRINGS,
        "_file": Value("string"),
        "_record": Value("string"),
    }
)
PAYLOAD_KEYS = ("speakers", "roles", "texts", "_drops", "_notes")


# ---------------------------------------------------------------- reading (runs inside Dataset.from_generator)


def _read_file(entry: dict[str, Any], base: dict[str, Any]) -> Iterator[RawRecord]:
    source = entry["source"]
    if entry["skip"]:
        row = note(source, "")
        row["_drops"] = []
        row["_file"] = json.dumps({"skipped": entry["skip"]})
        yield row
        return
    options = merge_file_options(base, json.loads(entry["options"]))
    file_info: dict[str, Any] = {"format": "", "encoding": "", "records": 0}  # records: what kept + dropped add to
    try:
        text, file_info["encoding"] = read_text(entry["path"], options.get("encoding"))
        if not text.strip():
            raise DataFormatError("empty file", file=source, reason="empty_file")
        fmt = normalize_format(options.get("format") or "auto")
        file_info["format"] = detect_format(text, source) if fmt == "auto" else fmt
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


# ---------------------------------------------------------------- map steps

CLEAN_MEMO_SIZE = 200_000  # cleaned utterances remembered per process (repeated short replies are common)
_CLEAN_MEMO: dict[str, dict[str, tuple[str, str | None]]] = {}


def clean_batch(batch: dict[str, list[Any]], options: dict[str, Any], name_seed: int) -> dict[str, list[Any]]:
    """Unpack and clean every utterance of a batch of raw records; dropped utterances are counted in ``_drops``."""
    cleaning = CleaningOptions(**options)
    # an utterance without "@" never reaches the namer, so its result depends on the text and options only
    memo = _CLEAN_MEMO.setdefault(json.dumps(options, sort_keys=True), {})
    if len(memo) > CLEAN_MEMO_SIZE:
        memo.clear()
    names: dict[str, str] = {}
    out: dict[str, list[Any]] = {key: [] for key in PAYLOAD_KEYS}
    for source, dialogue_id, payload in zip(batch["source"], batch["dialogue_id"], batch["payload"], strict=True):
        speakers, roles, texts, drops, notes = json.loads(payload)
        name = names.get(source)
        if name is None:
            name = names[source] = Path(source).name
        namer = FakeNamer(name_seed, f"{name}#{dialogue_id}")
        kept: tuple[list[str], list[str], list[str]] = ([], [], [])
        for speaker, role, text in zip(speakers, roles, texts, strict=True):
            if "@" in text:
                cleaned, reason = clean_utterance(text, cleaning, namer)
            else:
                hit = memo.get(text)
                if hit is None:
                    hit = memo[text] = clean_utterance(text, cleaning)
                cleaned, reason = hit
            if reason:
                drops.append(reason)
                continue
            kept[0].append(speaker)
            kept[1].append(role)
            kept[2].append(cleaned)
        for key, value in zip(PAYLOAD_KEYS, (*kept, drops, notes), strict=True):
            out[key].append(value)
    return out


def turns_batch(batch: dict[str, list[Any]], options: dict[str, Any]) -> dict[str, list[Any]]:
    """Build messages for a batch; role swap and max-turn splitting may add rows."""
    turn_options = TurnOptions(**options)
    out: dict[str, list[Any]] = {name: [] for name in TURN_FEATURES}
    # read each column once: indexing a datasets LazyBatch per row is a dict lookup + format call each time
    sources, dialogue_ids, all_drops = batch["source"], batch["dialogue_id"], batch["_drops"]
    all_speakers, all_roles, all_texts = batch["speakers"], batch["roles"], batch["texts"]
    all_notes, all_files = batch["_notes"], batch["_file"]
    for i in range(len(sources)):
        source, dialogue_id = sources[i], dialogue_ids[i]
        drops = list(all_drops[i])
        messages: list[dict[str, str]] = []
        if all_texts[i] or dialogue_id:  # a record whose every utterance was dropped still counts as lost
            messages, turn_drops = build_messages(all_speakers[i], all_roles[i], all_texts[i], turn_options)
            drops.extend(turn_drops)
        counted = is_record({"dialogue_id": dialogue_id, "_notes": all_notes[i]})
        variants = [(dialogue_id, messages)] if messages else [(dialogue_id, [])]
        if messages and turn_options.role_swap and (
            len({s for s, r in zip(all_speakers[i], all_roles[i], strict=True) if r != "system"}) <= 2
        ):
            swapped = role_swapped(messages)
            if swapped:
                variants.append((f"{dialogue_id}#swap", swapped))
        first, start = True, len(out["source"])
        for variant_id, variant in variants:
            parts = split_max_turns(variant, turn_options.max_dialogue_turns) if variant else [[]]
            for k, part in enumerate(parts):
                out["source"].append(source)
                out["dialogue_id"].append(variant_id if len(parts) == 1 else f"{variant_id}#{k}")
                out["messages"].append(part)
                out["_kept"].append(bool(part))
                out["_drops"].append(drops if first else [])
                out["_notes"].append(all_notes[i] if first else [])
                out["_file"].append(all_files[i] if first else "")
                out["_record"].append("")
                first = False
        out["_record"][start] = record_outcome(counted, dialogue_id, drops, any(out["_kept"][start:]))
    return out


def clean_turns_batch(
    batch: dict[str, list[Any]], cleaning: dict[str, Any], name_seed: int, turn_options: dict[str, Any]
) -> dict[str, list[Any]]:
    """``clean_batch`` then ``turns_batch`` on one batch of raw records (what ``load_dialogues`` maps)."""
    cleaned = clean_batch(batch, cleaning, name_seed)
    cleaned.update(source=batch["source"], dialogue_id=batch["dialogue_id"], _file=batch["_file"])
    return turns_batch(cleaned, turn_options)


def kept_mask(kept: list[bool]) -> list[bool]:
    """Batched filter predicate over the ``_kept`` column: a normalized dialogue survived."""
    return kept


# ---------------------------------------------------------------- the public entry points


@contextlib.contextmanager
def _progress(show: bool) -> Iterator[None]:
    """Hide the datasets progress bars for small inputs (restoring the caller's setting)."""
    if show or datasets.are_progress_bars_disabled():
        yield
        return
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.enable_progress_bars()


@functools.cache
def _code_version() -> str:
    """Hash of this package's parser code, so a changed parser never reuses a stale cached read."""
    digest = hashlib.sha256(PIPELINE_VERSION.encode())
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _fingerprint(files: list[dict[str, Any]], base: dict[str, Any]) -> str:
    payload = json.dumps([_code_version(), files, base], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _collect(dataset: Dataset, report: DataReport) -> list[str]:
    """Add every ``_drops``/``_notes``/``_file`` entry and the kept counts to the report; returns bad-input messages.

    Works on the Arrow columns and only visits rows that carry something, so large clean inputs stay fast.
    """
    table = dataset.select_columns(
        ["source", "dialogue_id", "_kept", "_drops", "_notes", "_file", "_record"]
    ).with_format("arrow")[:]
    busy = pc.or_(
        pc.or_(
            pc.greater(pc.list_value_length(table["_drops"]), 0), pc.greater(pc.list_value_length(table["_notes"]), 0)
        ),
        pc.not_equal(table["_file"], ""),
    )
    errors: list[str] = []
    rows = table.filter(busy).to_pylist()
    for row in rows:
        source, notes = row["source"], row["_notes"]
        if row["_file"]:
            info = json.loads(row["_file"])
            if "skipped" in info:
                report.skip(source, info["skipped"])
            else:
                report.file_info(source, **info)
        problems = [n for n in notes if not n.startswith(WARNING_PREFIX)]
        for message in notes:
            if message.startswith(WARNING_PREFIX):
                text = message[len(WARNING_PREFIX) :]
                if text not in report.warnings:
                    warnings.warn(text, stacklevel=3)
                report.warn(text)
        errors.extend(problems)
        where = problems[0] if problems else describe(source, row["dialogue_id"] or None, "")
        for reason, count in Counter(row["_drops"]).items():
            report.drop(reason, count, where=where.rstrip(": "))
    report.record_outcomes({item["values"]: item["counts"] for item in pc.value_counts(table["_record"]).to_pylist()})
    kept = pc.value_counts(table["source"].filter(table["_kept"])).to_pylist()
    counts = {item["values"]: item["counts"] for item in kept}
    for source in sorted(set(counts) | set(report.files)):
        report.kept(source, counts.get(source, 0))
    return errors


def load_dialogues_from_args(args: DataArguments, report: DataReport | None = None) -> Dataset:
    """Load, clean and cut dialogues as configured by ``args``; counts go to ``report``.

    Raises :class:`DataFormatError` on unknown formats or missing paths, on the first bad input with
    ``args.strict``, and whenever no dialogue at all survives.
    """
    report = report if report is not None else DataReport()
    normalize_format(args.format)
    files = expand_paths(args.data, report)
    base = args.parse_options()
    num_proc = args.preprocessing_num_proc if args.preprocessing_num_proc and args.preprocessing_num_proc > 1 else None
    with _progress(len(files) >= PROGRESS_MIN_FILES):
        raw = Dataset.from_generator(
            generate_raw,
            # source/dialogue_id/payload/_file: non-null strings, inferred without a slow per-row encode
            features=None,
            gen_kwargs={"files": files, "base": base},
            cache_dir=args.data_cache_dir,
            num_proc=min(num_proc, len(files)) if num_proc else None,
            fingerprint=_fingerprint(files, base),
        )
    with _progress(len(raw) >= PROGRESS_MIN_ROWS):
        raw = scrub_raw(raw, args, report, num_proc)  # personal data out before cleaning (see scrub.py)
        turned = raw.map(  # clean + turns in one pass: no intermediate Arrow write/read of the cleaned utterances
            clean_turns_batch,
            batched=True,
            fn_kwargs={
                "cleaning": vars(args.cleaning_options()),
                "name_seed": args.name_seed,
                "turn_options": vars(args.turn_options()),
            },
            remove_columns=raw.column_names,
            features=TURN_FEATURES,
            num_proc=num_proc,
            desc="clean utterances, build turns",
        )
        errors = _collect(turned, report)
        if args.strict and errors:
            raise DataFormatError(f"{errors[0]} (strict mode; {len(errors)} problem(s) in all)")
        # a vectorized predicate: worker processes would only add their start-up cost
        dialogues = turned.filter(kept_mask, input_columns="_kept", batched=True, desc="drop empty dialogues")
        dialogues = dialogues.select_columns(["messages", "source", "dialogue_id"])
    if len(dialogues) == 0:
        first = f"; first problem: {errors[0]}" if errors else ""
        raise DataFormatError(f"no dialogues loaded (dropped: {dict(report.dropped)}){first}", reason="nothing_loaded")
    return dialogues


def load_dialogues(
    paths: str | Path | list[str | Path] | None = None,
    format: str = "auto",
    *,
    report: DataReport | None = None,
    **options: Any,
) -> Dataset:
    """Normalized dialogues (``messages``, ``source``, ``dialogue_id``) from files, folders or globs.

    ``paths=None`` loads the embedded sample; ``options`` are :class:`DataArguments` fields.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    args = DataArguments(data=[str(p) for p in paths] if paths is not None else None, format=format, **options)
    return load_dialogues_from_args(args, report)

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
from datasets import Dataset

from .detect import normalize_format
from .errors import DataFormatError, describe
from .files import expand_paths
from .map_steps import TURN_FEATURES, clean_turns_batch, kept_mask
from .options import DataArguments
from .reading import generate_raw
from .records import WARNING_PREFIX
from .report import DataReport
from .scrub import scrub_raw

PIPELINE_VERSION = "1"
PROGRESS_MIN_FILES = 200  # progress bars only for inputs at least this large (files, or rows below)
PROGRESS_MIN_ROWS = 20_000



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

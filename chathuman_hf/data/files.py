"""Which files a run reads: folders walked, globs expanded, manifests applied, each real file once."""

from __future__ import annotations

import glob
import json
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DataFormatError
from .options import check_silence_minutes
from .report import DataReport

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"
DATA_EXTENSIONS = (".json", ".jsonl", ".csv", ".tsv", ".txt", ".parquet")
MANIFEST = "manifest.json"
FILE_OPTION_KEYS = ("format", "assistant", "question_column", "answer_column", "encoding", "silence_minutes")
SPECIAL_FILES = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                 (stat.S_ISBLK, "a block device"))  # fmt: skip


def read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """``{file name: options}`` from ``folder/manifest.json`` ({} when there is none); bad manifests are errors."""
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    expected = 'expected {"files": {name: {option: value}}}'
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise DataFormatError(f"not UTF-8 (invalid byte at position {err.start}); save it as UTF-8",
                              file=str(path)) from err  # fmt: skip
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{expected} ({err})", file=str(path)) from err
    files = document.get("files", {}) if isinstance(document, dict) else None
    if not isinstance(files, dict) or not all(isinstance(options, dict) for options in files.values()):
        raise DataFormatError(f"{expected}; got {json.dumps(document, ensure_ascii=False)[:80]}", file=str(path))
    unknown = {key for options in files.values() for key in options} - set(FILE_OPTION_KEYS)
    if unknown:
        raise DataFormatError(
            f"unknown per-file options {sorted(unknown)}; allowed: {FILE_OPTION_KEYS}", file=str(path)
        )
    for options in files.values():
        if "silence_minutes" in options:
            check_silence_minutes(options["silence_minutes"], file=str(path))
    return files


def _entry(path: Path, source: str, options: dict[str, Any], skip: str = "") -> dict[str, Any]:
    info = path.stat()
    return {
        "path": str(path),
        "source": source,
        "options": json.dumps(options, ensure_ascii=False, sort_keys=True),
        "skip": skip,
        "stamp": f"{info.st_size}:{info.st_mtime_ns}",
    }


def _walk(folder: Path, prefix: str) -> Iterator[dict[str, Any]]:
    manifest = read_manifest(folder)
    for path in sorted(p for p in folder.rglob("*") if not p.is_dir()):  # rglob does not enter symlinked dirs
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or rel == MANIFEST:
            continue
        source = f"{prefix}/{rel}" if prefix else str(path)
        if not path.is_file():  # a FIFO, socket, device or broken link: listed in report.json, never opened
            yield {"path": str(path), "source": source, "options": "{}", "skip": _not_a_file(path, source).detail,
                   "stamp": ""}  # fmt: skip
            continue
        skip = (
            ""
            if path.suffix.lower() in DATA_EXTENSIONS
            else f"not a data file (expected {', '.join(DATA_EXTENSIONS)})"
        )
        yield _entry(path, source, manifest.get(rel, {}), skip)


def _not_a_file(path: Path, given: str) -> DataFormatError:
    """Why ``path`` (neither a file nor a folder) cannot be read: missing, a broken link or a special file."""
    if os.path.lexists(path) and not path.exists():
        return DataFormatError(
            "a broken symbolic link; point it at a file or folder", file=given, reason="missing_path"
        )
    if path.exists():
        mode = path.stat().st_mode
        kind = next((name for test, name in SPECIAL_FILES if test(mode)), "a special file")
        return DataFormatError(f"not a regular file ({kind}); pass a file, a folder or a glob", file=given,
                               reason="missing_path")  # fmt: skip
    return DataFormatError("no such file or folder (expected a file, a folder or a glob)", file=given,
                           reason="missing_path")  # fmt: skip


def _read_once(entries: list[dict[str, Any]], report: DataReport | None) -> list[dict[str, Any]]:
    """One entry per real file (symlinks, loops and repeats resolved), the shortest name first; others become skips."""
    groups: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        groups.setdefault(os.path.realpath(entry["path"]), []).append(index)
    chosen: dict[int, list[int]] = {}
    for indices in groups.values():
        best = min(indices, key=lambda i: (len(Path(entries[i]["source"]).parts), i))
        chosen[best] = [i for i in indices if i != best]
    kept: list[dict[str, Any]] = []
    repeats: list[str] = []
    for index in sorted(chosen):
        kept.append(entries[index])
        source = entries[index]["source"]
        for other in chosen[index]:
            repeats.append(f"{entries[other]['source']} is {source}")
            if entries[other]["source"] != source and not entries[other]["skip"]:
                kept.append({**entries[other], "skip": f"the same file as {source} (read once)"})
    if repeats:
        message = f"{len(repeats)} path(s) name a file already given (e.g. {repeats[0]}); each file is read once"
        warnings.warn(message, stacklevel=4)
        if report is not None:
            report.warn(message)
    return kept


def expand_paths(
    paths: str | Path | list[str | Path] | None, report: DataReport | None = None
) -> list[dict[str, Any]]:
    """Files to read (folders walked, globs expanded, ``None`` = the embedded sample), with per-file options.

    A file reached under several names (a symlink, a glob through a symlink loop, a repeated path) is read once.
    """
    if paths is None:
        if not SAMPLE_DIR.is_dir():
            raise DataFormatError("the embedded sample folder is missing; pass --data PATH", file=str(SAMPLE_DIR))
        return list(_walk(SAMPLE_DIR, "sample_data"))
    if isinstance(paths, (str, Path)):
        paths = [paths]
    entries: list[dict[str, Any]] = []
    for given in paths:
        text = str(given)
        matches = sorted(glob.glob(text, recursive=True)) if glob.has_magic(text) else [text]
        if not matches:
            raise DataFormatError("no file matches this pattern", file=text, reason="missing_path")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                entries.extend(_walk(path, ""))
            elif path.is_file():
                entries.append(_entry(path, str(path), read_manifest(path.parent).get(path.name, {})))
            else:
                raise _not_a_file(path, text)
    if not entries:
        raise DataFormatError("no data files found (expected .json, .jsonl, .csv, .tsv or .txt)", file=", ".join(
            map(str, paths)), reason="missing_path")  # fmt: skip
    return _read_once(entries, report)

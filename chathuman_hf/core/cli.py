"""How every recipe ends on a mistake: one ``error: …`` line on stderr and a fixed exit status, never a traceback.

``run_cli(main)`` is the single place that turns exceptions escaping a recipe's ``main`` into that line:

* bad input data (an error whose ``exit_status`` is ``DATA_EXIT``, such as ``DataFormatError``) → exit 1, the line
  names the file, the record and the fix;
* configuration mistakes (unknown YAML key, an out-of-range option, a missing ``--config`` file or model directory,
  a bad ``--resume_from_checkpoint``, a Hub id that cannot be reached) → exit 2.

``CHATHUMAN_TRACEBACK=1`` re-raises instead, for debugging.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

USAGE_EXIT = 2
DATA_EXIT = 1
TRACEBACK_ENV = "CHATHUMAN_TRACEBACK"
# argparse prints the usage before an option error, and TrainingArguments' options alone fill ~150 lines: the
# recipes' parsers print this line instead (``--help`` still lists every option)
SHORT_USAGE = "%(prog)s [options]   (every option: --help)"


class UsageError(ValueError):
    """A mistake in the command line, the config file or a path given to a recipe (one line, exit 2)."""


def error_line(err: BaseException) -> str:
    """``error: `` and the exception's message (only its first line for ``OSError``s, whose rest is Hub advice)."""
    text = str(err).strip() or type(err).__name__
    if isinstance(err, OSError):
        text = text.splitlines()[0]
    return f"error: {text}"


def run_cli(main: Callable[..., Any], argv: list[str] | None = None) -> int:
    """Run ``main(argv)`` and return its exit status; known mistakes become one line on stderr (see module doc)."""
    try:
        result = main(argv)
    except (ValueError, OSError) as err:  # config mistakes; OSError covers missing files and unreachable Hub ids
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(error_line(err), file=sys.stderr, flush=True)
        return getattr(err, "exit_status", USAGE_EXIT)  # bad input data (DataFormatError) sets DATA_EXIT
    return result if isinstance(result, int) else 0


def require_model(name_or_path: str, option: str) -> str:
    """``name_or_path``, unless it is a local path that is missing: written as one (``/``, ``.``, ``~``, several
    ``/``), or ``owner/name``-shaped with ``owner`` an existing local folder (``outputs/quickstrat``).

    A mistyped directory otherwise reaches the Hub client, which retries for a minute and then says it cannot connect
    or that the repo id is malformed, not that the directory is missing.
    """
    first = name_or_path.split("/", 1)[0]
    as_path = (name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1 or "\\" in name_or_path
               or ("/" in name_or_path and Path(first).expanduser().is_dir()))
    if as_path and not Path(name_or_path).expanduser().exists():
        raise UsageError(f"{option} {name_or_path}: no such directory; pass a local model directory or a Hub id "
                         "(owner/name)")
    return name_or_path


def require_model_dir(path: str | Path, option: str = "--model") -> str:
    """``path`` when it is a directory; otherwise a ``UsageError`` saying what to pass (no Hub lookup)."""
    if not Path(path).is_dir():
        raise UsageError(f"{option} {path}: no such directory; pass a saved chat model directory "
                         "(e.g. outputs/quickstart, written by recipes/train.py)")
    return str(path)

"""Dialogue data pipeline: every input format → normalized ``{"messages", "source", "dialogue_id"}`` rows.

``load_dialogues``/``load_dialogues_from_args`` are imported lazily so that option parsing stays light.
May import: core, korean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import DataFormatError
from .options import DataArguments
from .report import DataReport

if TYPE_CHECKING:
    from .pipeline import load_dialogues, load_dialogues_from_args

__all__ = ["DataArguments", "DataFormatError", "DataReport", "load_dialogues", "load_dialogues_from_args"]


def __getattr__(name: str) -> Any:
    if name in ("load_dialogues", "load_dialogues_from_args"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

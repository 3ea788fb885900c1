"""Dialogue data pipeline: every input format → normalized ``{"messages", "source", "dialogue_id"}`` rows."""

from .errors import DataFormatError
from .options import DataArguments
from .pipeline import load_dialogues, load_dialogues_from_args
from .report import DataReport

__all__ = ["DataArguments", "DataFormatError", "DataReport", "load_dialogues", "load_dialogues_from_args"]

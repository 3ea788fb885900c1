"""Dialogues and preference data of one ``--data`` (what ``prepare.py`` writes and the preference stage reads).

Lives above ``data/`` because ``--rejected self`` samples the SFT model's own replies (``self_replies.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chathuman_hf.data.errors import DataFormatError
from chathuman_hf.data.formats.preference import PREFERENCE_FORMATS
from chathuman_hf.data.options import DataArguments
from chathuman_hf.data.report import DataReport

if TYPE_CHECKING:
    from datasets import Dataset

    from chathuman_hf.data.preferences import PreferenceData


def _nothing(err: DataFormatError) -> bool:
    return err.reason == "nothing_loaded"


def load_dialogues_and_preferences(
    args: DataArguments, report: DataReport
) -> tuple[Dataset | None, PreferenceData | None]:
    """Dialogues (None when the data holds none) and preference data (None when none), one report for both.

    Raises the dialogue pipeline's :class:`DataFormatError` when neither loads (the preference loader's when the data
    held preference files).
    """
    from chathuman_hf.data.pipeline import load_dialogues_from_args
    from chathuman_hf.data.preferences import load_preferences

    try:
        dialogues, no_dialogues = load_dialogues_from_args(args, report), None
    except DataFormatError as err:
        if not _nothing(err):
            raise
        dialogues, no_dialogues = None, err
    try:
        preferences = load_preferences(args, report, dialogues=dialogues, sample_replies=replies_sampler(args))
    except DataFormatError as err:
        if not _nothing(err) or dialogues is None and any(
            info["format"] in PREFERENCE_FORMATS for info in report.files.values()
        ):
            raise
        if dialogues is None and no_dialogues is not None:
            raise no_dialogues from None
        preferences = None
    return dialogues, preferences


def load_preference_data(args: DataArguments, report: DataReport | None = None) -> PreferenceData:
    """:func:`chathuman_hf.data.preferences.load_preferences` with ``--rejected self`` wired to the SFT model."""
    from chathuman_hf.data.preferences import load_preferences

    return load_preferences(args, report, sample_replies=replies_sampler(args))


def replies_sampler(args: DataArguments):  # noqa: ANN201 - None or a callable, see self_replies.sample_replies
    """The SFT model's sampler for ``--rejected self`` (None for other settings)."""
    if getattr(args, "rejected", None) != "self":
        return None
    from chathuman_hf.training.self_replies import ReplySampler

    return ReplySampler(args.rejected_model, seed=args.rejected_seed)

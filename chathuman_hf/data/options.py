"""DataArguments: every data-pipeline option, as a dataclass for ``HfArgumentParser``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from chathuman_hf.core.cli import UsageError

from .clean import CleaningOptions
from .errors import DataFormatError
from .pairs import REJECTED_MODES
from .pii import REPLACEMENTS
from .turns import TurnOptions


def check_silence_minutes(value: Any, file: str | None = None) -> None:
    """Refuse a negative, infinite or non-numeric KakaoTalk silence (0 = never split)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise DataFormatError(f"silence_minutes must be a number >= 0 (0 = never split), got {value!r}", file=file)


@dataclass
class DataArguments:
    """Where the dialogues come from and how they are parsed, cleaned and cut into turns."""

    data: list[str] | None = field(
        default=None,
        metadata={"help": "Files, folders (walked) or globs; none = the embedded sample in chathuman_hf/sample_data."},
    )
    format: str = field(
        default="auto",
        metadata={
            "help": "auto (per file, from content), aihub_summary, aihub_sns, aihub_topic, kakao, qa_table, "
            "conversation_csv, chat_json or sharegpt; preference data: trl_preference, trl_unpaired, "
            "llamafactory or ultrafeedback."
        },
    )
    assistant: str | None = field(
        default=None, metadata={"help": "KakaoTalk: the participant who plays the assistant (others are the user)."}
    )
    question_column: str | None = field(default=None, metadata={"help": "Q/A tables: the question column."})
    answer_column: str | None = field(default=None, metadata={"help": "Q/A tables: the answer column."})
    encoding: str = field(default="auto", metadata={"help": "auto (UTF-8, UTF-8 with BOM, then CP949) or a codec."})
    silence_minutes: float = field(
        default=60.0, metadata={"help": "KakaoTalk: a silence longer than this starts a new dialogue (0 = never)."}
    )
    strict: bool = field(
        default=False, metadata={"help": "Fail on the first malformed file or record instead of skipping it."}
    )
    drop_system_utterances: bool = field(
        default=True, metadata={"help": "Drop utterances carrying #@시스템#사진# or other #@시스템#…# markers."}
    )
    replace_names: bool = field(
        default=True, metadata={"help": "Replace #@이름#, #@전번#, #@주소# masks with seeded plausible fakes."}
    )
    remove_masks: bool = field(
        default=True, metadata={"help": "Remove #@이모티콘#, #@URL#, @URL and the other #@…# masks."}
    )
    remove_parentheses: bool = field(default=True, metadata={"help": "Remove text in parentheses."})
    collapse_repeats: bool = field(
        default=True, metadata={"help": "Collapse runs of ㅋ ㅎ ㅠ ㅜ . to two; runs of 키키 to ㅋㅋ."}
    )
    strip_symbols: bool = field(
        default=True, metadata={"help": "Remove characters outside Hangul, Latin, digits and basic punctuation."}
    )
    lowercase: bool = field(default=True, metadata={"help": "Lower-case English letters."})
    collapse_whitespace: bool = field(default=True, metadata={"help": "Collapse runs of whitespace to one space."})
    # a string on the command line and in YAML (true/false/auto), normalized to True/False/None (auto) after init
    scrub_pii: str | None = field(
        default=None,
        metadata={
            "help": "Replace personal data (resident/foreigner ids, phones, e-mails, accounts, cards, passports, IPs, "
            "URLs with credentials or queries; participants' names in Kakao texts). Default (auto): on for "
            "KakaoTalk exports only; --scrub_pii: every source; --no_scrub_pii: none.",
            "nargs": "?",
            "const": "true",
        },
    )
    no_scrub_pii: bool = field(default=False, metadata={"help": "Turn PII scrubbing off for every source."})
    pii_replacement: str = field(
        default="placeholder",
        metadata={"help": "placeholder ([전화번호], [계좌번호], ...) or fake (a plausible value of the same shape)."},
    )
    name_seed: int = field(default=42, metadata={"help": "Seed for the fake names (reproducible per dialogue)."})
    first_speaker_role: str = field(
        default="user", metadata={"help": "Role of the first speaker when the source has no roles (user|assistant)."}
    )
    drop_trailing_user: bool = field(default=True, metadata={"help": "Drop a dialogue's trailing user turn."})
    role_swap: bool = field(
        default=False, metadata={"help": "Augment: also add every two-party dialogue seen from the other side."}
    )
    max_dialogue_turns: int | None = field(
        default=None, metadata={"help": "Split dialogues into parts of at most this many messages (pairs)."}
    )
    speech_levels: bool = field(
        default=False,
        metadata={"help": "Classify every utterance's speech level (반말/존댓말, Kiwi) into a speech_levels column; "
                  "report.json counts them per level. On whenever one of the two options below is."},
    )
    speech_level_control: bool = field(
        default=False,
        metadata={"help": "Condition each dialogue's replies on their level: a system message 반말로 대답해. or "
                  "존댓말로 대답해. rendered by the chat template (chat.py/serve.py --speech_level asks for one)."},
    )
    speech_level_balance: float = field(
        default=0.0,
        metadata={"help": "Add counterparts of up to this share (0-1) of the majority level's training dialogues, "
                  "their replies converted to the other level (chathuman_hf.korean.conversion); 0 = off."},
    )
    rejected: str | None = field(
        default=None,
        metadata={"help": "Preference pairs from the dialogues (docs/preference.md): every reply is chosen, rejected "
                  "is 'other' (a seeded reply of another dialogue), 'other-similar' (the reply to the most similar "
                  "other question) or 'self' (the SFT model's own sampled reply, as in SPIN; needs "
                  "--rejected_model). Default: none (only preference files give pairs)."},
    )
    rejected_model: str | None = field(
        default=None, metadata={"help": "--rejected self: the SFT model (or adapter) folder whose replies lose."}
    )
    rejected_seed: int = field(default=42, metadata={"help": "Seed of --rejected (which other reply; sampling)."})
    feedback_model: list[str] | None = field(
        default=None,
        metadata={"help": "Feedback logs and Open WebUI exports: keep the ratings of these models' replies only "
                  "(model names / ids as the log or export names them); default: every model."},
    )
    preprocessing_num_proc: int | None = field(
        default=None, metadata={"help": "Processes for reading files and the datasets.map steps."}
    )
    data_cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder (default HF cache)."})

    def __post_init__(self) -> None:
        from .detect import normalize_format

        # the options themselves are configuration (exit 2), not bad data
        try:
            normalize_format(self.format)
            check_silence_minutes(self.silence_minutes)
        except DataFormatError as err:
            raise UsageError(str(err)) from None
        if self.first_speaker_role not in ("user", "assistant"):
            raise UsageError(f"first_speaker_role must be 'user' or 'assistant', got {self.first_speaker_role!r}")
        if isinstance(self.data, str):
            self.data = [self.data]
        if isinstance(self.feedback_model, str):
            self.feedback_model = [self.feedback_model]
        if isinstance(self.scrub_pii, str):  # YAML "auto", or a value given after --scrub_pii
            words = {"auto": None, "true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}
            if self.scrub_pii.strip().lower() not in words:
                raise UsageError(f"scrub_pii must be true, false or auto, got {self.scrub_pii!r}")
            self.scrub_pii = words[self.scrub_pii.strip().lower()]
        if self.no_scrub_pii:
            if self.scrub_pii:
                raise UsageError("--scrub_pii and --no_scrub_pii contradict each other; keep one")
            self.scrub_pii = False
        if not 0 <= self.speech_level_balance <= 1:
            raise UsageError(f"speech_level_balance must be between 0 and 1, got {self.speech_level_balance}")
        if self.wants_speech_levels():
            import importlib.util

            if importlib.util.find_spec("kiwipiepy") is None:
                raise UsageError('speech levels need kiwipiepy: pip install -e ".[korean]"')
        if self.rejected is not None:
            self.rejected = self.rejected.strip().lower().replace("_", "-")
            if self.rejected not in REJECTED_MODES:
                raise UsageError(f"rejected must be one of {', '.join(REJECTED_MODES)}, got {self.rejected!r}")
        if (self.rejected == "self") != bool(self.rejected_model):
            raise UsageError("--rejected self needs --rejected_model DIR (the SFT model), and --rejected_model only "
                             "goes with --rejected self")  # fmt: skip
        if self.pii_replacement not in REPLACEMENTS:
            raise UsageError(f"pii_replacement must be 'placeholder' or 'fake', got {self.pii_replacement!r}")

    def to_dict(self) -> dict[str, object]:
        """The options as saved with a model (``run_args.json``): with scrubbing not off, the assistant's name is
        withheld, since in a KakaoTalk export it is a participant's real name."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if self.assistant and self.scrub_setting() != "off":
            values["assistant"] = "(withheld: a participant's name; PII scrubbing is on)"
        return values

    def wants_speech_levels(self) -> bool:
        """True when the speech level of every utterance is computed (asked for, or needed by control/balance)."""
        return bool(self.speech_levels or self.speech_level_control or self.speech_level_balance > 0)

    def scrub_setting(self) -> str:
        """``on`` (every source), ``off`` or ``auto`` (KakaoTalk exports only)."""
        return "auto" if self.scrub_pii is None else "on" if self.scrub_pii else "off"

    def cleaning_options(self) -> CleaningOptions:
        """The cleaning switches as :class:`CleaningOptions`."""
        return CleaningOptions(**{name: getattr(self, name) for name in CleaningOptions.__dataclass_fields__})

    def turn_options(self) -> TurnOptions:
        """The turn-rule switches as :class:`TurnOptions`."""
        return TurnOptions(
            **{name: getattr(self, name) for name in TurnOptions.__dataclass_fields__ if name != "merge_separator"}
        )

    def parse_options(self) -> dict[str, object]:
        """Options the per-format parsers read."""
        return {
            "assistant": self.assistant,
            "question_column": self.question_column,
            "answer_column": self.answer_column,
            "silence_minutes": self.silence_minutes,
            "encoding": self.encoding,
            "format": self.format,
            "feedback_model": self.feedback_model,
        }

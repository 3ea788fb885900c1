"""Argument dataclasses for the training recipe (parsed by ``chathuman_hf.training.parsing.parse_args``).

Four dataclasses are parsed together by ``HfArgumentParser``: :class:`ModelArguments`, ``DataArguments`` (from
``chathuman_hf.data.options``, the same options as ``recipes/prepare.py``), :class:`ChatArguments` and
``ChatTrainingArguments`` (``chathuman_hf.training.training_arguments``: all of ``TrainingArguments`` with chat
fine-tuning defaults).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from chathuman_hf.core.cli import require_model
from chathuman_hf.models.lora import LoraArguments
from chathuman_hf.tokens.labels import LABEL_MODE_NAMES
from chathuman_hf.tokens.template_choice import chat_template_field, parse_template_choice, parse_template_date
from chathuman_hf.tokens.tokenizer import CHAT_SAMPLING
from chathuman_hf.tokens.tokenizer_training import LIBRARIES, MODEL_TYPES

DEFAULT_MODEL = "skt/kogpt2-base-v2"


@dataclass
class ModelArguments(LoraArguments):
    """Which model and tokenizer to start from: a Hub id / local dir, or a config built from scratch.

    The LoRA/QLoRA options (``--use_peft`` …) are inherited from ``chathuman_hf.models.lora.LoraArguments``.
    """

    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "help": "Hub id or local directory of a causal LM. Ignored (left at its default) with --model_type."
        },
    )
    model_type: str | None = field(
        default=None,
        metadata={
            "help": "Build the model from scratch with this architecture (e.g. gpt2) instead of loading weights."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Config overrides, e.g. 'n_layer=4,n_embd=128,n_head=4,n_positions=256' (run_clm.py style)."
        },
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer (Hub id or dir); default: the model's own tokenizer."}
    )
    train_tokenizer: bool = field(
        default=False, metadata={"help": "Train a SentencePiece tokenizer on the training dialogues first."}
    )
    vocab_size: int = field(default=8000, metadata={"help": "Vocabulary size for --train-tokenizer."})
    tokenizer_model_type: str = field(
        default="bpe", metadata={"help": "SentencePiece model for --train-tokenizer.", "choices": list(MODEL_TYPES)}
    )
    tokenizer_library: str = field(
        default="tokenizers",
        metadata={"help": "Trainer for --train-tokenizer: Hugging Face 'tokenizers' or Google 'sentencepiece'.",
                  "choices": list(LIBRARIES)},
    )
    chat_template: str = chat_template_field()
    template_date: str = field(
        default="",
        metadata={"help": "Date (YYYY-MM-DD) a template calling strftime_now (Llama 3.2, Granite 3.3) renders with "
                          "for the whole run; default: the day the run starts (kept in run_args.json)."},
    )
    use_reserved_tokens: bool = field(
        default=False,
        metadata={"help": "Map missing role tokens onto reserved <unusedN> tokens instead of growing the vocabulary."},
    )
    dtype: str | None = field(
        default=None,
        metadata={
            "help": "dtype to load the weights in.",
            "choices": [None, "auto", "float32", "bfloat16", "float16"],
        },
    )

    def __post_init__(self) -> None:
        self.chat_template = parse_template_choice(self.chat_template)
        self.template_date = parse_template_date(self.template_date)
        super().__post_init__()
        if self.model_type and self.model_name_or_path not in (DEFAULT_MODEL, None, ""):
            raise ValueError(
                f"Give either --model_name_or_path ({self.model_name_or_path}) or --model_type ({self.model_type}) "
                "to build from scratch, not both."
            )
        if self.use_peft and self.model_type:  # the adapter would name no base: export, chat and serve refuse it
            raise ValueError(
                f"--use_peft trains an adapter for a pretrained base; --model_type {self.model_type} builds the model "
                "from scratch, so there is no base to load it on: drop --use_peft (train all weights) or pass "
                "--model_name_or_path BASE."
            )
        if not self.model_type:
            require_model(self.model_name_or_path, "--model_name_or_path")
        if self.tokenizer_name:
            require_model(self.tokenizer_name, "--tokenizer_name")
        if self.config_overrides and not self.model_type and self.model_name_or_path == DEFAULT_MODEL:
            warnings.warn(
                "--config_overrides changes the pretrained config of the default model; "
                "add --model_type gpt2 to build a model from scratch.",
                stacklevel=2,
            )

    @property
    def from_scratch(self) -> bool:
        """True when the model is built from a config instead of loaded."""
        return bool(self.model_type)


@dataclass
class ChatArguments:
    """How dialogues become training examples, how they are held out and how runs are evaluated."""

    label_mode: str = field(
        default="input",
        metadata={
            "help": "Which tokens carry loss: input (all), -100 / last_sys (last assistant turn), "
            "-100+sys / all_sys (every assistant turn), shift (pre-shifted labels, same objective as input). "
            "Write values starting with '-' as --label-mode=-100.",
            "choices": list(LABEL_MODE_NAMES),
        },
    )
    max_length: int = field(default=256, metadata={"help": "Maximum tokens per example (oldest exchanges dropped)."})
    max_turns: int | None = field(
        default=None, metadata={"help": "Keep at most this many user→assistant exchanges per example (newest)."}
    )
    expand_turns: bool = field(
        default=False,
        metadata={"help": "Make every dialogue prefix that ends on an assistant turn its own training example."},
    )
    packing: bool = field(
        default=False,
        metadata={"help": "Pack several dialogues into one row (exact: own positions, no cross attention)."},
    )
    packing_batch: str = field(
        default="dialogues",
        metadata={"help": "With --packing, what --per_device_train_batch_size counts: dialogues (rows per step are "
                  "set to hold about that many, so packing keeps the unpacked run's optimizer steps) or rows "
                  "(max_length-token rows: far fewer steps per epoch on short dialogues).",
                  "choices": ["dialogues", "rows"]},
    )
    eval_data: list[str] | None = field(
        default=None, metadata={"help": "Held-out dialogue files; default: --eval-split of the training data."}
    )
    eval_split: float = field(
        default=0.1, metadata={"help": "Share of dialogues held out for evaluation when no --eval-data is given."}
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the held-out split (fixed across runs)."})
    early_stopping_patience: int | None = field(
        default=None,
        metadata={"help": "Stop after this many evaluations without improving metric_for_best_model (0: off)."},
    )
    generation_prompts: int = field(
        default=8, metadata={"help": "Held-out prompts answered at every eval for the generation-health metrics."}
    )
    generation_max_new_tokens: int = field(
        default=CHAT_SAMPLING["max_new_tokens"],
        metadata={"help": "Token limit of generation-health replies (and the model's max_new_tokens)."},
    )
    conversation_metrics: bool = field(
        default=False,
        metadata={"help": "Add speech-level agreement, distinct/repeat, context sensitivity and response-selection "
                  "hits@1/MRR to every evaluation (chathuman_hf.evaluation.conversation; on in the shipped configs, "
                  "--conversation_metrics false turns them off)."},
    )
    selection_contexts: int = field(
        default=200, metadata={"help": "Held-out contexts ranked for response selection (true reply vs 19 others)."}
    )
    selection_every_eval: bool = field(
        default=True,
        metadata={"help": "Rank replies at every evaluation; false: only in the evaluation after training (cheaper)."},
    )
    speech_control_prompts: int = field(
        default=100,
        metadata={"help": "Held-out prompts answered once per level (반말, 존댓말) for eval_speech_control_* in the "
                  "evaluation after training, when the data carries --speech_level_control instructions; 0 = off."},
    )

    def __post_init__(self) -> None:
        if self.label_mode not in LABEL_MODE_NAMES:
            raise ValueError(f"label_mode {self.label_mode!r}: expected one of {', '.join(LABEL_MODE_NAMES)}")
        if not 0.0 <= self.eval_split < 1.0:
            raise ValueError(f"--eval-split must be in [0, 1), got {self.eval_split}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 0:
            raise ValueError(f"--early_stopping_patience must be at least 1 (evaluations without improvement before "
                             f"stopping) or 0 (off), got {self.early_stopping_patience}")
        if self.packing_batch not in ("dialogues", "rows"):
            raise ValueError(f"--packing-batch {self.packing_batch!r}: expected dialogues or rows")
        if self.max_length < 8:
            raise ValueError(f"--max-length must be at least 8 tokens, got {self.max_length}")

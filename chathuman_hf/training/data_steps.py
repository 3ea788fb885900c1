"""The training recipe's data steps: dialogues loaded and held out, the tokenizer built or trained, examples
tokenized (and packed), the data report written (used by ``recipes/train.py`` and ``chathuman_hf.training.build``)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from chathuman_hf.core.run_files import REPORT_FILE
from chathuman_hf.data import DataArguments, DataReport, load_dialogues_from_args
from chathuman_hf.data.held_out import held_out_split
from chathuman_hf.tokens.features import tokenize_dialogues
from chathuman_hf.tokens.labels import LabelMode
from chathuman_hf.tokens.packing import pack_dataset
from chathuman_hf.tokens.template_choice import apply_template_choice as _apply_template_choice
from chathuman_hf.tokens.tokenizer import load_tokenizer
from chathuman_hf.tokens.tokenizer_training import train_tokenizer
from chathuman_hf.training.arguments import ChatArguments, ModelArguments
from chathuman_hf.training.preflight import check_examples_left, example_drops, log_vocab_fill
from chathuman_hf.training.training_arguments import ChatTrainingArguments


@dataclass
class ChatData:
    """Dialogues (messages) and tokenized examples of the train and held-out sets, and the data report."""

    train_dialogues: Dataset
    eval_dialogues: Dataset | None
    report: DataReport
    train: Dataset | None = None
    eval: Dataset | None = None
    stats: dict[str, Any] = field(default_factory=dict)


class _PrefixedReport:
    """Adds drops to a DataReport under ``prefix`` (held-out tokenization drops stay apart from training ones)."""

    def __init__(self, report: DataReport, prefix: str) -> None:
        self.report, self.prefix = report, prefix

    def drop(self, reason: str, count: int = 1, where: str | None = None) -> None:
        self.report.drop(f"{self.prefix}{reason}", count, where)


def load_data(data_args: DataArguments, chat_args: ChatArguments) -> ChatData:
    """Load and clean dialogues; hold out ``eval_data`` or a fixed-seed ``eval_split`` share of them."""
    report = DataReport()
    dialogues = load_dialogues_from_args(data_args, report)  # raises DataFormatError when none is left
    eval_dialogues = None
    if chat_args.eval_data:
        eval_report = DataReport()
        eval_dialogues = load_dialogues_from_args(
            dataclasses.replace(data_args, data=chat_args.eval_data), eval_report
        )
        report.stats["eval_data"] = eval_report.to_dict()
        train_dialogues = dialogues
    elif chat_args.eval_split > 0:  # each dialogue with its variants (swaps, parts, converted twins) on one side
        train_dialogues, eval_dialogues = held_out_split(dialogues, chat_args.eval_split, chat_args.split_seed)
    else:
        train_dialogues = dialogues
    if data_args.wants_speech_levels():  # after the split: no converted copy of a held-out reply is trained on
        from chathuman_hf.data.speech import apply_speech_options

        train_dialogues = apply_speech_options(train_dialogues, data_args, report, seed=chat_args.split_seed)
        if eval_dialogues is not None:
            eval_dialogues = apply_speech_options(eval_dialogues, data_args, report, name="eval", balance=False)
    report.stats["split"] = {
        "train_dialogues": len(train_dialogues),
        "eval_dialogues": len(eval_dialogues) if eval_dialogues is not None else 0,
        "eval_split": None if chat_args.eval_data else chat_args.eval_split,
        "split_seed": chat_args.split_seed,
    }
    return ChatData(train_dialogues=train_dialogues, eval_dialogues=eval_dialogues, report=report)


TRAINED_TOKENIZER_DIR = "_trained_tokenizer"


def build_tokenizer(
    model_args: ModelArguments,
    chat_args: ChatArguments,
    train_dialogues: Dataset,
    *,
    resume_from: str | None = None,
    training_args: ChatTrainingArguments | None = None,
) -> PreTrainedTokenizerBase:
    """The chat-ready tokenizer: from a checkpoint being resumed, trained on the data, named, or the model's own.

    A trained tokenizer is trained once per machine (local main process) and saved under
    ``output_dir/_trained_tokenizer``; the other processes load that copy, so every rank has the same ids.
    """
    choice = model_args.chat_template
    apply_template_choice = partial(_apply_template_choice, template_date=model_args.template_date)
    if resume_from and (Path(resume_from) / "tokenizer_config.json").is_file():
        tokenizer = apply_template_choice(AutoTokenizer.from_pretrained(resume_from), choice)
    elif model_args.train_tokenizer:
        shared = Path(training_args.output_dir) / TRAINED_TOKENIZER_DIR if training_args is not None else None
        local_main = training_args is None or training_args.local_process_index == 0
        if shared is not None and not local_main:
            with training_args.main_process_first(desc="training the tokenizer"):
                tokenizer = apply_template_choice(AutoTokenizer.from_pretrained(str(shared)), choice)
        else:
            ctx = training_args.main_process_first(desc="training the tokenizer") if training_args else nullcontext()
            with ctx:
                tokenizer = train_tokenizer(
                    train_dialogues, vocab_size=model_args.vocab_size, model_type=model_args.tokenizer_model_type,
                    library=model_args.tokenizer_library,
                )
                log_vocab_fill(tokenizer, model_args.vocab_size)
                tokenizer = apply_template_choice(tokenizer, choice)
                if shared is not None:
                    tokenizer.save_pretrained(str(shared))
    elif model_args.tokenizer_name:
        tokenizer = apply_template_choice(load_tokenizer(model_args.tokenizer_name), choice,
                                          use_reserved_tokens=model_args.use_reserved_tokens)
    elif not model_args.from_scratch:
        tokenizer = apply_template_choice(load_tokenizer(model_args.model_name_or_path), choice,
                                          use_reserved_tokens=model_args.use_reserved_tokens)
    else:
        raise ValueError(
            f"--model_type {model_args.model_type} builds a model from scratch and needs a tokenizer: "
            "add --tokenizer_name DIR or --train-tokenizer --vocab-size N."
        )
    tokenizer.model_max_length = chat_args.max_length
    return tokenizer


def tokenize_data(
    data: ChatData, tokenizer: PreTrainedTokenizerBase, chat_args: ChatArguments, *, num_proc: int | None = None,
    seed: int = 42,
) -> ChatData:
    """Tokenize (drops counted in the report) and optionally pack; the held-out set is the same for every mode."""
    mode = LabelMode.parse(chat_args.label_mode)
    common = {"max_length": chat_args.max_length, "max_turns": chat_args.max_turns, "num_proc": num_proc}
    before = Counter(data.report.dropped)
    data.train = tokenize_dialogues(
        data.train_dialogues, tokenizer, expand_turns=chat_args.expand_turns, label_mode=mode.value,
        report=data.report, **common,
    )
    check_examples_left("training", len(data.train), example_drops(before, data.report.dropped),
                        max_length=chat_args.max_length)
    if data.eval_dialogues is not None:
        # label_mode=None: held-out examples never depend on the training mode, so runs stay comparable.
        data.eval = tokenize_dialogues(
            data.eval_dialogues, tokenizer, expand_turns=False, label_mode=None,
            report=_PrefixedReport(data.report, "eval:"), **common,
        )
        check_examples_left("held-out", len(data.eval), example_drops(before, data.report.dropped, "eval:"),
                            max_length=chat_args.max_length)
    data.stats = {
        "train_examples": len(data.train),
        "train_tokens": int(sum(data.train["length"])),
        "eval_examples": len(data.eval) if data.eval is not None else 0,
        "eval_tokens": int(sum(data.eval["length"])) if data.eval is not None else 0,
    }
    if chat_args.packing:
        data.train = pack_dataset(data.train, max_length=chat_args.max_length, seed=seed)
        if data.eval is not None:
            data.eval = pack_dataset(data.eval, max_length=chat_args.max_length, seed=chat_args.split_seed)
        data.stats.update({"train_packed_rows": len(data.train), "eval_packed_rows": len(data.eval or [])})
    data.report.stats["examples"] = dict(data.stats)
    return data


def write_report(data: ChatData, output_dir: str | Path) -> Path:
    """Write the data report (``report.json``: kept per source, drops by reason incl. tokenization) and log it."""
    path = Path(output_dir) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data.report.write_json(path)
    print(f"Data report ({path}):\n{data.report.format_table()}\nexamples: {json.dumps(data.stats)}", flush=True)
    return path

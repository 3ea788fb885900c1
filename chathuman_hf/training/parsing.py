"""``parse_args``: the training recipe's YAML ``--config`` plus command-line overrides into its four dataclasses, and
the one YAML loader every recipe uses (unknown keys and floats YAML reads as strings are errors)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser, TrainingArguments

from chathuman_hf.core.cli import SHORT_USAGE, UsageError
from chathuman_hf.data.options import DataArguments
from chathuman_hf.tokens.labels import LABEL_MODE_NAMES
from chathuman_hf.training.arguments import ChatArguments, ModelArguments
from chathuman_hf.training.preference_args import PreferenceArguments
from chathuman_hf.training.training_arguments import ChatTrainingArguments

# Values that start with "-" would be read by argparse as an option; parse_args rewrites them to --label-mode=VALUE.
_LABEL_MODE_FLAGS = ("--label-mode", "--label_mode")

ARGUMENT_CLASSES = (ModelArguments, DataArguments, ChatArguments, ChatTrainingArguments, PreferenceArguments)


def field_names(classes: tuple[type, ...] = ARGUMENT_CLASSES) -> dict[str, str]:
    """Map every field name to the dataclass that owns it (raises on a name used twice)."""
    owners: dict[str, str] = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.name in owners and owners[f.name] != cls.__name__:
                raise TypeError(f"Argument {f.name!r} is defined by both {owners[f.name]} and {cls.__name__}.")
            owners.setdefault(f.name, cls.__name__)
    return owners


def load_yaml_config(path: str | Path, known: set[str]) -> dict[str, Any]:
    """Read a YAML recipe; keys may use '-' or '_'; an unknown key is an error naming it and the file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of option names to values, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in known:
            close = [k for k in known if k.startswith(name[:4])][:5]
            hint = f" (similar: {', '.join(sorted(close))})" if close else ""
            raise ValueError(f"{path}: unknown key {key!r}{hint}; see the recipe's --help for options")
        if isinstance(value, str) and _looks_like_float(value):
            raise ValueError(f"{path}: {key}: {value!r} is read as a string by YAML; write it as e.g. 2.0e-05")
        out[name] = value
    return out


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return "e" in text.lower() and not text.strip().lower().startswith(("inf", "nan"))


def fix_dash_values(argv: list[str]) -> list[str]:
    """Join ``--label-mode -100`` into ``--label-mode=-100`` so argparse does not read the value as an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if (
            arg in _LABEL_MODE_FLAGS
            and i + 1 < len(argv)
            and argv[i + 1].startswith("-")
            and argv[i + 1] in LABEL_MODE_NAMES
        ):
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def build_parser() -> HfArgumentParser:
    """The parser for ``recipes/train.py`` (the argument dataclasses plus ``--config``)."""
    field_names()  # fail early on a name clash between the dataclasses
    parser = HfArgumentParser(ARGUMENT_CLASSES, usage=SHORT_USAGE)
    parser.add_argument("--config", default=None, help="YAML recipe; command-line options override its values.")
    return parser


def parse_args(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, ChatArguments, ChatTrainingArguments]:
    """Parse ``--config FILE.yaml`` (optional) and command-line options; the command line wins over the file."""
    return parse_stage_args(argv)[:4]


def parse_stage_args(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, ChatArguments, ChatTrainingArguments, PreferenceArguments]:
    """``parse_args`` plus the ``--stage`` group (``PreferenceArguments``)."""
    argv = fix_dash_values(list(sys.argv[1:] if argv is None else argv))
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    parser = build_parser()
    if known.config:
        values = load_yaml_config(known.config, set(field_names()))
        parser.set_defaults(**values)
    namespace = parser.parse_args(argv)
    outputs = []
    for cls in ARGUMENT_CLASSES:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        outputs.append(cls(**{k: v for k, v in vars(namespace).items() if k in names}))
    model_args, data_args, chat_args, training_args, preference_args = outputs
    check_early_stopping(chat_args.early_stopping_patience, training_args)
    check_best_model_metric(training_args, chat_args)
    keep_hub_token_out_of_files(training_args)
    return model_args, data_args, chat_args, training_args, preference_args


def check_early_stopping(patience: int | None, training_args: TrainingArguments) -> None:
    """Early stopping compares evaluations of the best-model metric: refuse a setting without them (one line, before
    any work; transformers' ``EarlyStoppingCallback`` only asserts at the start of training)."""
    if not patience:
        return
    strategy = getattr(training_args.eval_strategy, "value", training_args.eval_strategy)
    if strategy == "no" or not training_args.load_best_model_at_end or not training_args.metric_for_best_model:
        raise UsageError(
            f"--early_stopping_patience {patience} compares evaluations: it needs --eval_strategy steps or epoch "
            f"(got {strategy}), --load_best_model_at_end true (got {training_args.load_best_model_at_end}) and a "
            f"--metric_for_best_model (got {training_args.metric_for_best_model}); "
            "or pass --early_stopping_patience 0."
        )


def check_best_model_metric(training_args: TrainingArguments, chat_args: ChatArguments) -> None:
    """Refuse a ``--metric_for_best_model`` the evaluations will not report (one line, before any work; Trainer
    would raise a KeyError at the end of the first evaluation)."""
    import difflib
    import importlib.util

    from chathuman_hf.evaluation.metric_names import eval_metrics

    name = training_args.metric_for_best_model
    strategy = getattr(training_args.eval_strategy, "value", training_args.eval_strategy)
    if not name or strategy == "no":
        return
    key = name if name.startswith("eval_") else f"eval_{name}"  # as transformers reads it
    reported, missing = eval_metrics(
        generation=chat_args.generation_prompts > 0, conversation=chat_args.conversation_metrics,
        selection_every_eval=chat_args.selection_every_eval, kiwi=importlib.util.find_spec("kiwipiepy") is not None)
    if key in reported:
        return
    if key in missing:
        raise UsageError(f"--metric_for_best_model {name} {missing[key]}; or pick another metric")
    close = difflib.get_close_matches(key, reported, n=1, cutoff=0.8)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UsageError(f"--metric_for_best_model {name}: no evaluation reports it; {hint}"
                     f"the evaluations report {', '.join(reported)}")


def keep_hub_token_out_of_files(training_args: TrainingArguments) -> None:
    """Move a ``--hub_token`` into this process's ``HF_TOKEN`` so it is never pickled into ``training_args.bin``."""
    token = training_args.hub_token
    if token:
        os.environ["HF_TOKEN"] = token
        training_args.hub_token = None
        warnings.warn(
            "--hub_token was moved to the HF_TOKEN environment variable of this process so it is not saved with the "
            "checkpoints; prefer `hf auth login` or exporting HF_TOKEN.",
            stacklevel=2,
        )

"""The preference stage's data and model steps (``recipes/train.py --stage dpo|kto|orpo``): pairs or ratings loaded
through the data pipeline (``chathuman_hf.data.preferences``; ``--rejected other|self`` builds pairs from dialogues),
held out, tokenized in inference form; the starting model loaded with its SFT adapter still training, or wrapped in
a new one."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset, concatenate_datasets
from transformers import EarlyStoppingCallback, PreTrainedTokenizerBase, Trainer

from chathuman_hf.core.cli import UsageError
from chathuman_hf.core.run_files import REPORT_FILE
from chathuman_hf.data import DataArguments, DataReport
from chathuman_hf.models.loading import is_adapter_dir, load_chat_model
from chathuman_hf.tokens.preference_rows import tokenize_pairs, tokenize_ratings, unpair
from chathuman_hf.training.arguments import ChatArguments, ModelArguments
from chathuman_hf.training.build import build_chat_model
from chathuman_hf.training.data_steps import build_tokenizer
from chathuman_hf.training.preference import build_preference_trainer, stage_config
from chathuman_hf.training.preference_args import STAGE_DATA, PreferenceArguments, kto_weights

logger = logging.getLogger(__name__)


@dataclass
class PreferenceStageData:
    """Tokenized training and held-out rows of a preference stage, the data report and counts for the model card."""

    train: Dataset
    eval: Dataset | None
    report: DataReport
    stats: dict[str, Any] = field(default_factory=dict)


def stage_rows(data: Any, stage: str) -> Dataset:
    """The rows a stage trains on: pairs (DPO, ORPO); ratings for KTO, pairs unpaired into 👍/👎 added."""
    if STAGE_DATA[stage] == "pairs":
        if len(data.pairs) == 0:
            raise UsageError(f"--stage {stage} trains on preference pairs (prompt, chosen, rejected) and --data has "
                             f"none ({len(data.ratings)} rated replies): use --stage kto, or give pair files.")
        return data.pairs
    parts = [d for d in (data.ratings, unpair(data.pairs) if len(data.pairs) else None) if d is not None and len(d)]
    if not parts:
        raise UsageError("--stage kto trains on rated replies or pairs and --data has neither.")
    return concatenate_datasets([p.select_columns(["prompt", "completion", "label"]) for p in parts])


def load_stage_rows(
    data_args: DataArguments, chat_args: ChatArguments, stage: str, report: DataReport
) -> tuple[Dataset, Dataset | None]:
    """Training and held-out rows (messages): ``--eval-data`` files, or a fixed-seed ``--eval-split`` share."""
    from chathuman_hf.training.preference_data import load_preference_data  # load_preferences, --rejected self wired

    rows = stage_rows(load_preference_data(data_args, report), stage)
    if chat_args.eval_data:
        eval_report = DataReport()
        held = stage_rows(load_preference_data(dataclasses.replace(data_args, data=chat_args.eval_data),
                                               eval_report), stage)
        report.stats["eval_data"] = eval_report.to_dict()
        return rows, held
    if chat_args.eval_split > 0:
        if len(rows) < 2:
            raise ValueError("Need at least 2 preference rows to hold some out; pass --eval-data or --eval-split 0.")
        split = rows.train_test_split(test_size=chat_args.eval_split, seed=chat_args.split_seed)
        return split["train"], split["test"]
    return rows, None


def tokenize_stage_rows(
    rows: Dataset, held: Dataset | None, tokenizer: PreTrainedTokenizerBase, stage: str, chat_args: ChatArguments,
    report: DataReport, num_proc: int | None = None,
) -> PreferenceStageData:
    """Tokenize both parts (drops counted, held-out ones under ``eval:``); refuse a stage left without rows."""
    tokenize = tokenize_pairs if STAGE_DATA[stage] == "pairs" else tokenize_ratings
    common = {"max_length": chat_args.max_length, "report": report, "num_proc": num_proc}
    train = tokenize(rows, tokenizer, **common)
    if len(train) == 0:
        raise ValueError(f"No training row is left: every prompt of the {len(rows)} rows is at least --max-length "
                         f"{chat_args.max_length} tokens long (see report.json); raise --max-length.")
    eval_rows = tokenize(held, tokenizer, prefix="eval:", **common) if held is not None else None
    stats: dict[str, Any] = {"stage": stage, "train_rows": len(train), "eval_rows": len(eval_rows or [])}
    if STAGE_DATA[stage] == "pairs":
        stats["train_pairs"], stats["eval_pairs"] = stats.pop("train_rows"), stats.pop("eval_rows")
    else:
        stats["train_desirable"] = int(sum(train["label"]))
        stats["train_undesirable"] = len(train) - stats["train_desirable"]
    report.stats["preference"] = dict(stats)
    return PreferenceStageData(train=train, eval=eval_rows, report=report, stats=stats)


def stage_kto_weights(data: PreferenceStageData, pref: PreferenceArguments) -> tuple[float, float] | None:
    """KTO's (desirable, undesirable) weights for this data (logged and kept in the stats); None for other stages."""
    if pref.stage != "kto":
        return None
    weights = kto_weights(data.stats["train_desirable"], data.stats["train_undesirable"], pref)
    data.stats["desirable_weight"], data.stats["undesirable_weight"] = weights
    logger.info("KTO: %d 👍 and %d 👎 training replies → desirable_weight %.4g, undesirable_weight %.4g",
                data.stats["train_desirable"], data.stats["train_undesirable"], *weights)
    return weights


def load_stage_model(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, chat_args: ChatArguments, *,
    gradient_checkpointing: bool = False,
) -> Any:
    """The starting policy. An SFT adapter with ``--use_peft`` keeps training (TRL then copies it as the frozen
    reference 'ref' on the same base); without ``--use_peft`` it is merged and every weight trains. A full model
    with ``--use_peft`` gets a new adapter (reference: the adapter disabled, i.e. the SFT model itself)."""
    if model_args.from_scratch:
        raise UsageError("A preference stage starts from a trained model: pass --model_name_or_path (e.g. "
                         "outputs/sft, the output of --stage sft), not --model_type.")
    if chat_args.packing:
        raise UsageError("--packing belongs to --stage sft: drop it (--stage dpo runs padding-free already, see "
                         "--padding_free; KTO and ORPO pad each row).")
    if model_args.train_tokenizer:
        raise UsageError("--train-tokenizer belongs to --stage sft: a preference stage uses its model's tokenizer.")
    path = model_args.model_name_or_path
    if is_adapter_dir(path):
        model, _ = load_chat_model(path, trainable=model_args.use_peft, merge=not model_args.use_peft)
        logger.info("Starting from the adapter %s (%s).", path,
                    "it keeps training" if model_args.use_peft else "merged into its base: all weights train")
        return model
    return build_chat_model(model_args, tokenizer, chat_args, None, gradient_checkpointing=gradient_checkpointing)


def prepare_preference_run(
    model_args: ModelArguments, data_args: DataArguments, chat_args: ChatArguments, training_args: Any,
    pref: PreferenceArguments, resume: str | None = None,
) -> tuple[Trainer, PreferenceStageData]:
    """Rows → tokens in inference form (report written) → starting model → the stage's TRL trainer."""
    report = DataReport()
    with training_args.main_process_first(desc="loading preference rows"):
        rows, held = load_stage_rows(data_args, chat_args, pref.stage, report)
    tokenizer = build_tokenizer(model_args, chat_args, rows, resume_from=resume, training_args=training_args)
    with training_args.main_process_first(desc="tokenizing preference rows"):
        data = tokenize_stage_rows(rows, held, tokenizer, pref.stage, chat_args, report,
                                   num_proc=data_args.preprocessing_num_proc)
    if training_args.process_index == 0:
        path = Path(training_args.output_dir) / REPORT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        report.write_json(path)
        print(f"Data report ({path}):\n{report.format_table()}\nrows: {json.dumps(data.stats)}", flush=True)
    from accelerate.utils import set_seed

    set_seed(training_args.seed)
    model = load_stage_model(model_args, tokenizer, chat_args,
                             gradient_checkpointing=training_args.activation_checkpointing)
    config = stage_config(training_args, pref, max_length=chat_args.max_length,
                          kto_weights=stage_kto_weights(data, pref))
    patience = chat_args.early_stopping_patience
    callbacks = [EarlyStoppingCallback(early_stopping_patience=patience)] if patience else []
    trainer = build_preference_trainer(model, tokenizer, data.train, data.eval, config, pref.stage, callbacks,
                                       padding_free=pref.padding_free)
    return trainer, data

"""The training recipe's steps: data → tokenizer/model → trainer → final output (used by ``recipes/train.py``)."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import transformers
from datasets import Dataset
from transformers import AutoTokenizer, EarlyStoppingCallback, PreTrainedModel, PreTrainedTokenizerBase

from chathuman_hf.callbacks import ChatWindowCallback
from chathuman_hf.chat_templates import apply_template_choice
from chathuman_hf.collators import ChatCollator
from chathuman_hf.config import ChatArguments, ChatTrainingArguments, ModelArguments
from chathuman_hf.conversation_metrics import ConversationEval, collapse_warning
from chathuman_hf.data import DataArguments, DataReport, load_dialogues_from_args
from chathuman_hf.evaluation import health_prompts
from chathuman_hf.features import tokenize_dialogues
from chathuman_hf.labels import LabelMode
from chathuman_hf.lora import PeftSetupError, adapter_summary, apply_lora, base_vocabulary_size, quantization_kwargs
from chathuman_hf.model_card import HYPERPARAMETERS, ModelCardInfo, epoch_table, write_model_card
from chathuman_hf.modeling import build_model, ensure_vocab_fits
from chathuman_hf.packed_attention import check_packing_supported
from chathuman_hf.packing import pack_dataset
from chathuman_hf.plots import plot_loss_curves
from chathuman_hf.preflight import check_examples_left, example_drops, log_vocab_fill
from chathuman_hf.tokenization import chat_generation_config, load_tokenizer
from chathuman_hf.tokenizer_training import train_tokenizer
from chathuman_hf.trainer import ChatTrainer
from chathuman_hf.window import ChatWindow

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"
LOSS_CURVE_FILE = "loss_curve.png"


def setup_logging(training_args: ChatTrainingArguments) -> None:
    """Log like the transformers examples: INFO on the main process, WARNING on replicas."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S", handlers=[
            logging.StreamHandler(sys.stdout)]
    )
    level = training_args.get_process_log_level()
    own = logging.INFO if training_args.should_log and training_args.log_level == "passive" else level
    logging.getLogger("chathuman_hf").setLevel(own)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


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
    dialogues = load_dialogues_from_args(data_args, report)
    if len(dialogues) == 0:
        raise ValueError(f"No dialogue left from {data_args.data or 'the embedded sample'}:\n{report.format_table()}")
    eval_dialogues = None
    if chat_args.eval_data:
        eval_report = DataReport()
        eval_dialogues = load_dialogues_from_args(
            dataclasses.replace(data_args, data=chat_args.eval_data), eval_report
        )
        report.stats["eval_data"] = eval_report.to_dict()
        train_dialogues = dialogues
    elif chat_args.eval_split > 0:
        if len(dialogues) < 2:
            raise ValueError("Need at least 2 dialogues to hold some out; pass --eval-data or --eval-split 0.")
        split = dialogues.train_test_split(test_size=chat_args.eval_split, seed=chat_args.split_seed)
        train_dialogues, eval_dialogues = split["train"], split["test"]
    else:
        train_dialogues = dialogues
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


def build_chat_model(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, chat_args: ChatArguments,
    data: ChatData | None = None, *, gradient_checkpointing: bool = False,
) -> PreTrainedModel:
    """Load or build the model, resize it to the tokenizer, check every token id and set chat generation defaults.

    With ``--use_peft`` the model is returned wrapped in a LoRA adapter (``chathuman_hf.lora.apply_lora``).
    """
    if model_args.load_in_4bit and model_args.from_scratch:
        raise PeftSetupError(
            "--load_in_4bit quantizes pretrained weights: give --model_name_or_path, not --model_type."
        )
    model = build_model(
        None if model_args.from_scratch else model_args.model_name_or_path,
        model_type=model_args.model_type,
        config_overrides=model_args.config_overrides,
        tokenizer=tokenizer,
        dtype=model_args.dtype,
        load_kwargs=quantization_kwargs(model_args),
    )
    positions = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    if positions is not None and chat_args.max_length > positions:
        raise ValueError(
            f"--max-length {chat_args.max_length} exceeds the model's {positions} positions; lower --max-length."
        )
    if data is not None:
        for part in (data.train, data.eval):
            if part is not None:
                ensure_vocab_fits(model, tokenizer, part)
    model.generation_config = chat_generation_config(tokenizer, max_new_tokens=chat_args.generation_max_new_tokens)
    if model_args.use_peft:
        if model_args.from_scratch:
            logger.warning("--use_peft on a model built from scratch: the frozen base weights are random.")
        base_vocab = base_vocabulary_size(
            None if model_args.from_scratch else model_args.model_name_or_path,
            int(model.get_input_embeddings().weight.shape[0]),
        )
        model = apply_lora(model, model_args, tokenizer, base_vocab_size=base_vocab,
                           gradient_checkpointing=gradient_checkpointing)
    return model


def conversation_eval(dialogues: Dataset | None, prompts: list, chat_args: ChatArguments) -> ConversationEval | None:
    """The conversation-quality metrics' held-out material, or None when they are switched off."""
    if dialogues is None or not chat_args.conversation_metrics:
        return None
    return ConversationEval.from_dialogues(dialogues, prompts, contexts=chat_args.selection_contexts,
                                           seed=chat_args.split_seed, max_length=chat_args.max_length,
                                           max_turns=chat_args.max_turns,
                                           selection_every_eval=chat_args.selection_every_eval)


def chat_window(chat_args: ChatArguments) -> ChatWindow:
    """The history window used in training, saved as ``chat_window.json`` for every chat front end."""
    return ChatWindow(max_turns=chat_args.max_turns, max_length=chat_args.max_length)


def build_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    data: ChatData,
    chat_args: ChatArguments,
    training_args: ChatTrainingArguments,
    *,
    model_card: Any = None,
) -> ChatTrainer:
    """``ChatTrainer`` with the label mode's collator and loss, early stopping and generation-health prompts."""
    if data.eval is None and (training_args.eval_strategy != "no" or training_args.load_best_model_at_end):
        raise ValueError(
            "There is no held-out data (--eval-split 0 and no --eval-data): pass --eval_strategy no "
            "--load_best_model_at_end false, or keep an --eval-split."
        )
    if chat_args.packing:
        check_packing_supported(model, use_cache=training_args.use_cache)
    window = chat_window(chat_args)
    callbacks: list[Any] = [ChatWindowCallback(window)]
    if chat_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=chat_args.early_stopping_patience))
    prompts = health_prompts(data.eval_dialogues, chat_args.generation_prompts) if data.eval_dialogues else []
    return ChatTrainer(
        conversation_eval=conversation_eval(data.eval_dialogues, prompts, chat_args),
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        data_collator=ChatCollator(tokenizer.pad_token_id, chat_args.label_mode, with_assistant_labels=True),
        processing_class=tokenizer,
        callbacks=callbacks,
        label_mode=chat_args.label_mode,
        health_prompts=prompts,
        health_max_new_tokens=chat_args.generation_max_new_tokens,
        chat_window=window,
        model_card=model_card,
    )


def model_card_writer(
    trainer: ChatTrainer,
    model_args: ModelArguments,
    data_args: DataArguments,
    chat_args: ChatArguments,
    data: ChatData,
) -> Any:
    """A callable(output_dir) that writes the model card from the trainer's current state and metrics."""

    def write(output_dir: str | Path) -> Path:
        args = trainer.args
        out = Path(output_dir)
        eval_metrics = (
            json.loads((out / "eval_results.json").read_text()) if (out / "eval_results.json").is_file() else {}
        )
        hyper = {k: getattr(args, k) for k in HYPERPARAMETERS if hasattr(args, k)}
        hyper["world_size"] = args.world_size
        prompts = trainer.health_prompts
        samples = [(p[-1]["content"], r) for p, r in zip(prompts, trainer.last_health_replies, strict=False)][:5]
        info = ModelCardInfo(
            model_name=Path(args.hub_model_id or out.resolve().name).name,
            base_model=None if model_args.from_scratch else model_args.model_name_or_path,
            model_config={"model_type": model_args.model_type, "config_overrides": model_args.config_overrides},
            label_mode=LabelMode.parse(chat_args.label_mode).value,
            chat_options={
                "max_length": chat_args.max_length, "max_turns": chat_args.max_turns,
                "expand_turns": chat_args.expand_turns, "packing": chat_args.packing,
                "eval_split": chat_args.eval_split if not chat_args.eval_data else None,
                "split_seed": chat_args.split_seed,
            },
            cleaning=dataclasses.asdict(data_args.cleaning_options()),
            report=data.report.to_dict(),
            hyperparameters=hyper,
            eval_metrics=eval_metrics,
            epoch_table=epoch_table(trainer.state.log_history),
            sample_replies=samples,
            tokenizer_note=(
                f"{model_args.tokenizer_model_type} tokenizer ({model_args.tokenizer_library}) trained on the "
                f"training dialogues (vocab {model_args.vocab_size})" if model_args.train_tokenizer else
                (model_args.tokenizer_name or model_args.model_name_or_path or "")
            ),
            hub_model_id=args.hub_model_id,
            adapter=adapter_summary(trainer.accelerator.unwrap_model(trainer.model)),
        )
        return write_model_card(info, out)

    return write


def write_report(data: ChatData, output_dir: str | Path) -> Path:
    """Write the data report (``report.json``: kept per source, drops by reason incl. tokenization) and log it."""
    path = Path(output_dir) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data.report.write_json(path)
    print(f"Data report ({path}):\n{data.report.format_table()}\nexamples: {json.dumps(data.stats)}", flush=True)
    return path


RUN_ARGS_FILE = "run_args.json"


def write_run_args(output_dir: str | Path, *arg_objects: Any) -> Path:
    """Save the run's own arguments (model/data/chat dataclasses, training args without tokens) as JSON."""
    out: dict[str, Any] = {}
    for obj in arg_objects:
        values = obj.to_dict() if hasattr(obj, "to_dict") else dataclasses.asdict(obj)
        out[type(obj).__name__] = {k: v for k, v in values.items() if not k.endswith("_token")}
    path = Path(output_dir) / RUN_ARGS_FILE
    path.write_text(json.dumps(out, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def read_run_args(model_dir: str | Path) -> dict[str, Any]:
    """The ``run_args.json`` of a model trained by this recipe (empty when absent)."""
    path = Path(model_dir) / RUN_ARGS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def save_final_output(
    trainer: ChatTrainer, train_result: Any, data: ChatData, run_args: tuple[Any, ...] = ()
) -> dict[str, Any]:
    """Save the (best) model, tokenizer, generation config, chat window, results, loss curve, report and card."""
    args = trainer.args
    trainer.write_shard_log()
    metrics = dict(train_result.metrics)
    metrics.update(data.stats)
    trainer.save_model()
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    eval_metrics: dict[str, Any] = {}
    if trainer.eval_dataset is not None:
        if trainer.conversation_eval is not None:
            trainer.conversation_eval.final = True  # response selection at least once, after training
        eval_metrics = trainer.evaluate()
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        if (warning := collapse_warning(eval_metrics)) and trainer.is_world_process_zero():
            logger.warning(warning)
    if trainer.is_world_process_zero():
        out = Path(args.output_dir)
        trainer.chat_window.save_pretrained(out)
        data.report.write_json(out / REPORT_FILE)
        if run_args:
            write_run_args(out, *run_args, args)
        plot_loss_curves(
            trainer.state.log_history, out / LOSS_CURVE_FILE, title=f"label mode {trainer.label_mode.value}"
        )
        trainer.create_model_card()
    if args.push_to_hub:
        trainer.push_to_hub(commit_message="End of training")
    return {"train": metrics, "eval": eval_metrics}


def evaluate_saved_model(
    model_dir: str | Path,
    data_args: DataArguments,
    chat_args: ChatArguments,
    *,
    batch_size: int = 8,
    work_dir: str | Path | None = None,
    chat_template: str = "auto",
) -> dict[str, Any]:
    """Score a saved chat model on held-out dialogues with the same token-weighted metrics as training evals."""
    import tempfile

    from chathuman_hf.loading import load_chat_model

    model, tokenizer = load_chat_model(model_dir)  # a full model or a LoRA adapter on its base
    tokenizer = apply_template_choice(tokenizer, chat_template)
    data = load_data(data_args, chat_args)
    if chat_args.eval_data is None and chat_args.eval_split == 0:
        data.eval_dialogues = data.train_dialogues  # --eval-split 0: score every dialogue of --data
    if data.eval_dialogues is None or len(data.eval_dialogues) == 0:
        raise ValueError("Nothing to evaluate: pass --eval-data FILE or keep --eval-split > 0.")
    common = {"max_length": chat_args.max_length, "max_turns": chat_args.max_turns}
    data.eval = tokenize_dialogues(data.eval_dialogues, tokenizer, label_mode=None, report=data.report, **common)
    rows = len(data.eval)
    if chat_args.packing:
        check_packing_supported(model)
        data.eval = pack_dataset(data.eval, max_length=chat_args.max_length, seed=chat_args.split_seed)
    ensure_vocab_fits(model, tokenizer, data.eval)
    prompts = health_prompts(data.eval_dialogues, chat_args.generation_prompts)
    with tempfile.TemporaryDirectory() as tmp:
        args = ChatTrainingArguments(
            output_dir=str(work_dir or tmp), per_device_eval_batch_size=batch_size, report_to="none",
            disable_tqdm=True, load_best_model_at_end=False, eval_strategy="no", save_strategy="no",
        )
        trainer = ChatTrainer(
            conversation_eval=conversation_eval(data.eval_dialogues, prompts, chat_args),
            model=model,
            args=args,
            eval_dataset=data.eval,
            data_collator=ChatCollator(tokenizer.pad_token_id, chat_args.label_mode, with_assistant_labels=True),
            processing_class=tokenizer,
            label_mode=chat_args.label_mode,
            health_prompts=prompts,
            health_max_new_tokens=chat_args.generation_max_new_tokens,
            chat_window=chat_window(chat_args),
        )
        if trainer.conversation_eval is not None:
            trainer.conversation_eval.final = True
        metrics = trainer.evaluate()
    result: dict[str, Any] = {
        "model": str(model_dir),
        "label_mode": LabelMode.parse(chat_args.label_mode).value,
        "packing": chat_args.packing,
        "eval_examples": rows,
        "eval_dialogues": len(data.eval_dialogues),
    }
    result.update({k: v for k, v in metrics.items() if not k.endswith(("_runtime", "_per_second"))})
    result["perplexity"] = metrics["eval_perplexity"]
    result["sample_replies"] = [
        {"prompt": p[-1]["content"], "reply": r} for p, r in zip(trainer.health_prompts, trainer.last_health_replies,
                                                                    strict=False)
    ]
    return result

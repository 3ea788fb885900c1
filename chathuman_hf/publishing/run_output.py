"""What a finished training run writes: the (best) model, results, chat window, data report, run arguments, loss
curve and model card; ``read_run_args`` reads the arguments back (``recipes/evaluate_model.py``)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chathuman_hf.core.run_files import LOSS_CURVE_FILE, REPORT_FILE, RUN_ARGS_FILE
from chathuman_hf.data import DataArguments
from chathuman_hf.evaluation.conversation import collapse_warning
from chathuman_hf.evaluation.plots import plot_loss_curves
from chathuman_hf.models.lora import adapter_summary
from chathuman_hf.publishing.model_card import HYPERPARAMETERS, ModelCardInfo, epoch_table, write_model_card
from chathuman_hf.tokens.labels import LabelMode
from chathuman_hf.tokens.template_choice import is_chathuman_template
from chathuman_hf.training.arguments import ChatArguments, ModelArguments
from chathuman_hf.training.data_steps import ChatData
from chathuman_hf.training.trainer import ChatTrainer

logger = logging.getLogger(__name__)


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
                **({"packing_batch": chat_args.packing_batch} if chat_args.packing else {}),
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
            chathuman_template=is_chathuman_template(trainer.processing_class),
        )
        return write_model_card(info, out)

    return write


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
    if trainer.eval_dataset is not None and trainer.conversation_eval is not None:
        trainer.conversation_eval.final = True  # response selection at least once, after training

    def loss_curve(out: Path) -> None:
        plot_loss_curves(
            trainer.state.log_history, out / LOSS_CURVE_FILE, title=f"label mode {trainer.label_mode.value}"
        )

    results = save_run(trainer, {**train_result.metrics, **data.stats}, data.report, trainer.chat_window, run_args,
                       extra_files=loss_curve)
    if (warning := collapse_warning(results["eval"])) and trainer.is_world_process_zero():
        logger.warning(warning)
    return results


def save_run(trainer: Any, metrics: dict[str, Any], report: Any, chat_window: Any, run_args: tuple[Any, ...] = (),
             extra_files: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """What every stage saves at the end: the (best) model, train and held-out results, trainer state, chat window,
    report, run arguments, ``extra_files`` and the card (main process); then the Hub push when asked."""
    trainer.save_model()
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    eval_metrics: dict[str, Any] = {}
    if trainer.eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
    if trainer.is_world_process_zero():
        out = Path(trainer.args.output_dir)
        chat_window.save_pretrained(out)
        report.write_json(out / REPORT_FILE)
        if run_args:
            write_run_args(out, *run_args, trainer.args)
        if extra_files is not None:
            extra_files(out)
        trainer.create_model_card()
    if trainer.args.push_to_hub:
        trainer.push_to_hub(commit_message="End of training")
    return {"train": metrics, "eval": eval_metrics}

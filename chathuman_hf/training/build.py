"""The training recipe's model and trainer steps, and scoring a saved model (``recipes/train.py``,
``evaluate_model.py``).

The data steps live in ``chathuman_hf.training.data_steps``, what a finished run writes in
``chathuman_hf.publishing.run_output``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import datasets
import transformers
from datasets import Dataset
from transformers import EarlyStoppingCallback, PreTrainedModel, PreTrainedTokenizerBase

from chathuman_hf.core.window import ChatWindow
from chathuman_hf.data import DataArguments
from chathuman_hf.evaluation.conversation import ConversationEval
from chathuman_hf.evaluation.perplexity import health_prompts
from chathuman_hf.models.build import build_model, ensure_vocab_fits, position_limit
from chathuman_hf.models.lora import PeftSetupError, apply_lora, base_vocabulary_size, quantization_kwargs
from chathuman_hf.tokens.collators import ChatCollator
from chathuman_hf.tokens.features import tokenize_dialogues
from chathuman_hf.tokens.labels import LabelMode
from chathuman_hf.tokens.packed_attention import check_packing_supported
from chathuman_hf.tokens.packing import pack_dataset, packed_rows_per_step
from chathuman_hf.tokens.template_choice import apply_template_choice, saved_template_date
from chathuman_hf.tokens.tokenizer import chat_generation_config
from chathuman_hf.training.arguments import ChatArguments, ModelArguments
from chathuman_hf.training.callbacks import ChatWindowCallback
from chathuman_hf.training.data_steps import ChatData, load_data
from chathuman_hf.training.trainer import ChatTrainer
from chathuman_hf.training.training_arguments import ChatTrainingArguments

logger = logging.getLogger(__name__)


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


def build_chat_model(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, chat_args: ChatArguments,
    data: ChatData | None = None, *, gradient_checkpointing: bool = False,
) -> PreTrainedModel:
    """Load or build the model, resize it to the tokenizer, check every token id and set chat generation defaults.

    With ``--use_peft`` the model is returned wrapped in a LoRA adapter (``chathuman_hf.models.lora.apply_lora``).
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
    positions = position_limit(model)
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
                                           selection_every_eval=chat_args.selection_every_eval,
                                           control_prompts=chat_args.speech_control_prompts)


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
        if chat_args.packing_batch == "dialogues" and data.stats.get("train_packed_rows"):
            dialogues = training_args.per_device_train_batch_size
            rows = packed_rows_per_step(dialogues, data.stats["train_examples"], data.stats["train_packed_rows"])
            training_args.per_device_train_batch_size = rows
            data.stats["train_rows_per_step"] = rows
            logger.info("--packing: %d packed rows per device and step hold about %d dialogues "
                        "(--per_device_train_batch_size %d; --packing-batch rows counts rows)", rows, dialogues,
                        dialogues)
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

    from chathuman_hf.models.loading import load_chat_model

    model, tokenizer = load_chat_model(model_dir)  # a full model or a LoRA adapter on its base
    # templates calling strftime_now render with the date it trained with
    tokenizer = apply_template_choice(tokenizer, chat_template, template_date=saved_template_date(model_dir))
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

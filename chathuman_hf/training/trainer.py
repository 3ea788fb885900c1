"""ChatTrainer: ``Trainer`` with token-weighted eval metrics, generation health and the chat model card."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import constants as hub_constants
from transformers import Trainer
from transformers.trainer_utils import EvalLoopOutput

from chathuman_hf.core.window import MIN_PROMPT_TOKENS
from chathuman_hf.evaluation.perplexity import StatsAccumulator, batch_loss_stats, generate_replies, generation_health
from chathuman_hf.models.lora import is_peft_model, save_adapter
from chathuman_hf.tokens.labels import LabelMode
from chathuman_hf.tokens.tokenizer import CHAT_SAMPLING
from chathuman_hf.training.checkpoints import match_umask
from chathuman_hf.training.run_loss import RunLossCallback, record_loss_sum, whole_run_train_loss
from chathuman_hf.training.scale_out import enable_fsdp_on_cpu

logger = logging.getLogger(__name__)

# Batch keys the collator adds for the loss/metrics that the model's forward must not see.
NON_MODEL_KEYS = ("labels", "shift_labels", "assistant_labels")


class ChatTrainer(Trainer):
    """``Trainer`` whose evaluation reports token-weighted metrics that compare across label modes.

    Every eval logs ``eval_loss`` (the label mode's own loss, token-weighted), ``eval_perplexity``,
    ``eval_assistant_loss``/``eval_assistant_perplexity`` (assistant-turn tokens, the same for every mode),
    token counts and, with ``health_prompts``, ``eval_gen_*`` generation-health metrics.
    """

    def __init__(
        self,
        *args: Any,
        label_mode: str | LabelMode = LabelMode.INPUT,
        health_prompts: list[list[dict[str, str]]] | None = None,
        health_max_new_tokens: int = CHAT_SAMPLING["max_new_tokens"],
        chat_window: Any = None,
        model_card: Any = None,
        conversation_eval: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.label_mode = LabelMode.parse(label_mode)
        self.health_prompts = health_prompts or []
        self.health_max_new_tokens = health_max_new_tokens
        self.chat_window = chat_window
        self.model_card = model_card  # callable(output_dir) writing README.md, see chathuman_hf.publishing.model_card
        self.conversation_eval = conversation_eval  # chathuman_hf.evaluation.conversation.ConversationEval or None
        self.last_health_replies: list[str] = []
        self._eval_stats = StatsAccumulator()
        self.add_callback(RunLossCallback())  # a resumed run's train_loss covers the steps before the resume

    def create_accelerator_and_postprocess(self) -> None:  # noqa: D102
        super().create_accelerator_and_postprocess()
        if enable_fsdp_on_cpu(self.accelerator):  # accelerate drops FSDP on CPU-only machines: see scale_out.py
            self.is_fsdp_enabled = True

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:  # noqa: D102
        sharded = self.is_fsdp_enabled and "FULL" not in str(self.accelerator.state.fsdp_plugin.state_dict_type)
        if sharded and _internal_call:
            # Trainer decides the best checkpoint by whether its folder exists right after this call, but with a
            # sharded state dict the shards are written later: the ranks raced, disagreed and hung in
            # _load_best_model (measured, transformers 5.24). Every rank creates the folder first.
            Path(output_dir or self.args.output_dir).mkdir(parents=True, exist_ok=True)
        elif sharded:
            # Trainer writes no weights for a sharded FSDP state dict (checkpoints hold the shards): gather them on
            # every rank and save one ordinary safetensors model, as for FULL_STATE_DICT
            self._save(output_dir, state_dict=self.accelerator.get_state_dict(self.model))
        super().save_model(output_dir, _internal_call)
        folder = Path(output_dir or self.args.output_dir)
        if self.args.should_save and folder.is_dir():
            match_umask(folder)  # weights are written 0600 by safetensors; checkpoints and the final model alike

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        # Loading the best checkpoint warned "missing keys ['lm_head.weight']": GPT-2's lm_head is wte's tensor, so it
        # is not saved, and Trainer 5.24 only recognises that through _keys_to_ignore_on_save (None for GPT-2).
        seen: dict[int, str] = {}
        tied = set()
        for name, param in self.model.named_parameters(remove_duplicate=False):
            if param.data_ptr() in seen:
                tied.add(name)
            seen.setdefault(param.data_ptr(), name)
        missing = [k for k in load_result.missing_keys if k not in tied]
        super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        record_loss_sum(self)
        super()._save_checkpoint(model, trial)

    def train(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return whole_run_train_loss(self, super().train(*args, **kwargs))

    # ------------------------------------------------------------------ loss
    def compute_loss(  # noqa: D102
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        # transformers' own loss: labels (shifted inside) or shift_labels (the shift mode's, used as they are)
        inputs = {k: v for k, v in inputs.items() if k != "assistant_labels"}
        return super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )

    # ------------------------------------------------------------------ evaluation
    def prediction_step(  # noqa: D102
        self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool, ignore_keys: list[str] | None = None
    ) -> tuple[Any, Any, Any]:
        inputs = self._prepare_inputs(inputs)
        labels = inputs["labels"]
        model_inputs = {k: v for k, v in inputs.items() if k not in NON_MODEL_KEYS}
        with torch.no_grad(), self.compute_loss_context_manager():
            outputs = model(**model_inputs, use_cache=False)
        stats = batch_loss_stats(
            outputs.logits, labels, inputs.get("assistant_labels"), pre_shifted=self.label_mode.pre_shifted
        )
        self._eval_stats.add(self.accelerator.gather_for_metrics(stats))
        loss = (stats[:, 0].sum() / stats[:, 1].sum().clamp(min=1)).float()
        return loss.detach(), None, None

    def evaluation_loop(  # noqa: D102
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ) -> EvalLoopOutput:
        self._eval_stats.reset()
        output = super().evaluation_loop(
            dataloader, description, prediction_loss_only=True, ignore_keys=ignore_keys,
            metric_key_prefix=metric_key_prefix,
        )
        metrics = dict(output.metrics)
        for key, value in self._eval_stats.summary().items():
            metrics[f"{metric_key_prefix}_{key}"] = value
        if self.health_prompts:
            metrics.update({f"{metric_key_prefix}_{k}": v for k, v in self.generation_health().items()})
        if self.conversation_eval is not None:  # speech level, distinct/repeat, hits@1 (conversation_metrics.py)
            start = time.perf_counter()
            with self.compute_loss_context_manager():
                extra = self.conversation_eval.compute(
                    self.model, self.processing_class, self.health_prompts, self.last_health_replies
                )
            extra["conversation_seconds"] = time.perf_counter() - start  # their share of the eval time
            metrics.update({f"{metric_key_prefix}_{k}": v for k, v in extra.items()})
        return EvalLoopOutput(
            predictions=output.predictions, label_ids=output.label_ids, metrics=metrics, num_samples=output.num_samples
        )

    def generation_health(self) -> dict[str, float]:
        """Greedy replies to the fixed held-out prompts, scored by the ``generation_health`` metric module."""
        model = self.model
        synced = self.args.world_size > 1 and (self.is_fsdp_enabled or self.is_deepspeed_enabled)
        window = self.chat_window
        max_length = window.max_length if window is not None else None
        max_prompt = None if max_length is None else max(max_length - self.health_max_new_tokens, MIN_PROMPT_TOKENS)
        with self.compute_loss_context_manager():
            replies, stopped, texts = generate_replies(
                model,
                self.processing_class,
                self.health_prompts,
                max_new_tokens=self.health_max_new_tokens,
                max_prompt_tokens=max_prompt,
                max_turns=window.max_turns if window is not None else None,
                synced_gpus=synced,
            )
        self.last_health_replies = texts
        return generation_health(replies, stopped)

    # ------------------------------------------------------------------ output and Hub
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if not is_peft_model(model) or self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._save(output_dir, state_dict)
        # LoRA: the adapter without embedding copies (PEFT's "auto" would copy resized tables; see lora.py)
        output_dir = output_dir or self.args.output_dir
        if self.args.should_save:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            save_adapter(model, output_dir, state_dict=state_dict)
            if self.processing_class is not None:
                self.processing_class.save_pretrained(output_dir)
            torch.save(self.args, Path(output_dir) / "training_args.bin")
        return None

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Write the chathuman_hf model card (README.md) instead of Trainer's generic draft."""
        if not self.is_world_process_zero():
            return
        if self.model_card is None:
            super().create_model_card(*args, **kwargs)
        else:
            self.model_card(self.args.output_dir)

    @property
    def hub_offline(self) -> bool:
        """True when ``HF_HUB_OFFLINE`` is set: pushes stop right before the upload (the folder is still prepared)."""
        return bool(hub_constants.HF_HUB_OFFLINE)

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:  # noqa: D102
        if self.hub_offline:
            self.hub_model_id = self.args.hub_model_id
            self.push_in_progress = None
            logger.warning("HF_HUB_OFFLINE is set: the Hub repo is not created and nothing will be uploaded.")
            return
        super().init_hf_repo(token=token, private=private)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        if self.hub_offline:
            logger.info("HF_HUB_OFFLINE: skipping the upload of %s", checkpoint_folder)
            return
        super()._push_from_checkpoint(checkpoint_folder)

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True, **kwargs: Any):
        """Trainer's push (save, model card, upload); offline it prepares the folder and stops before the upload."""
        if not self.hub_offline:
            return super().push_to_hub(commit_message=commit_message, blocking=blocking, **kwargs)
        self.save_model(_internal_call=True)
        if self.is_world_process_zero():
            self.create_model_card()
            logger.warning("HF_HUB_OFFLINE: %s is ready to push to %s; not uploading.", self.args.output_dir,
                           self.args.hub_model_id)
        return None

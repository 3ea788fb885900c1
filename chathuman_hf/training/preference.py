"""The preference stage's trainers: TRL 1.16's ``DPOTrainer``, ``KTOTrainer`` and (``trl.experimental``)
``ORPOTrainer``, given rows this project tokenized (``chathuman_hf.tokens.preference_rows``: each reply as the model
generates it after its own template's generation prompt) instead of re-tokenizing text.

Only the data preparation is replaced (``_prepare_dataset`` / ``tokenize_row``); the loss, reference handling, metrics
(``rewards/accuracies``, ``rewards/margins``…) and collators are TRL's, so the loss is TRL's on the same token ids.
Saving, the model card and offline Hub pushes behave as in ``ChatTrainer``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import is_peft_model as accelerate_is_peft_model
from datasets import Dataset
from huggingface_hub import constants as hub_constants
from transformers import Trainer, TrainingArguments
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer
from trl.experimental.orpo import ORPOConfig, ORPOTrainer

from chathuman_hf.models.lora import is_peft_model, save_adapter
from chathuman_hf.training.packed_preference import enable_padding_free, padding_free_problem, steady_peft_check
from chathuman_hf.training.preference_args import PreferenceArguments

logger = logging.getLogger(__name__)


class _ChatOutputMixin:
    """What ``ChatTrainer`` does on save and push, for TRL's trainers: adapters without embedding copies, our model
    card (``model_card``: a callable(output_dir)), pushes that stop before the upload when ``HF_HUB_OFFLINE``."""

    model_card: Any = None

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if not is_peft_model(model) or self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return Trainer._save(self, output_dir, state_dict)
        output_dir = output_dir or self.args.output_dir
        if self.args.should_save:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            # TRL's frozen copy of the SFT adapter ("ref") is the reference, not the result
            save_adapter(model, output_dir, state_dict=state_dict, adapters=["default"])
            if self.processing_class is not None:
                self.processing_class.save_pretrained(output_dir)
            torch.save(self.args, Path(output_dir) / "training_args.bin")
        return None

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """The chathuman_hf model card (README.md) instead of TRL's generic one."""
        if self.is_world_process_zero() and self.model_card is not None:
            self.model_card(self.args.output_dir)

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:  # noqa: D102
        if hub_constants.HF_HUB_OFFLINE:
            self.hub_model_id, self.push_in_progress = self.args.hub_model_id, None
            logger.warning("HF_HUB_OFFLINE is set: the Hub repo is not created and nothing will be uploaded.")
            return
        Trainer.init_hf_repo(self, token=token, private=private)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        if not hub_constants.HF_HUB_OFFLINE:
            Trainer._push_from_checkpoint(self, checkpoint_folder)

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True, **kwargs: Any):
        """Trainer's push; offline it prepares the folder and stops before the upload."""
        if not hub_constants.HF_HUB_OFFLINE:
            return Trainer.push_to_hub(self, commit_message=commit_message, blocking=blocking, **kwargs)
        self.save_model(_internal_call=True)
        self.create_model_card()
        logger.warning("HF_HUB_OFFLINE: %s is ready to push to %s; not uploading.", self.args.output_dir,
                       self.args.hub_model_id)
        return None


class ChatDPOTrainer(_ChatOutputMixin, DPOTrainer):
    """``DPOTrainer`` on rows already holding ``prompt_ids``/``chosen_ids``/``rejected_ids``; with ``padding_free``
    (the default) its forwards run on packed rows (``packed_preference``) where that is exact, with TRL's loss."""

    def __init__(self, *args: Any, padding_free: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_peft = accelerate_is_peft_model(self.model)  # asked by TRL on every step: see steady_peft_check
        self.padding_free_off = padding_free_problem(self) if padding_free else "--padding_free false"
        self.shares_prompt = False
        if self.padding_free_off is None:
            models = [self.accelerator.unwrap_model(m) for m in (self.model, self.ref_model) if m is not None]
            self.shares_prompt = all([enable_padding_free(m) for m in models])
            logger.info("DPO forwards run padding-free: pairs packed without padding%s.",
                        ", each prompt computed once" if self.shares_prompt else "")
        elif padding_free:
            logger.warning("DPO forwards are padded, as in TRL: %s.", self.padding_free_off)

    def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:  # noqa: D102
        with steady_peft_check(self):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _prepare_dataset(self, dataset: Dataset, processing_class: Any, args: Any, dataset_name: str) -> Dataset:
        return dataset  # tokenized by chathuman_hf.tokens.preference_rows (prompts too long already dropped)


class ChatKTOTrainer(_ChatOutputMixin, KTOTrainer):
    """``KTOTrainer`` on rows already holding ``prompt_ids``/``completion_ids``/``label``."""

    def _prepare_dataset(self, dataset: Dataset, processing_class: Any, args: Any, dataset_name: str) -> Dataset:
        if not self.calculate_KL:
            return dataset

        def add_kl_completion_ids(examples: dict[str, list]) -> dict[str, list]:  # as TRL's KTOTrainer does
            examples["KL_completion_ids"] = [examples["completion_ids"][-1]] + examples["completion_ids"][:-1]
            return examples

        return dataset.map(add_kl_completion_ids, batched=True, batch_size=args.per_device_train_batch_size,
                           desc=f"Extracting KL {dataset_name} dataset")


class ChatORPOTrainer(_ChatOutputMixin, ORPOTrainer):
    """``ORPOTrainer`` (``trl.experimental``) on rows holding ``prompt_ids``/``chosen_ids``/``rejected_ids``."""

    def tokenize_row(self, feature: dict[str, Any], model: Any = None) -> dict[str, Any]:
        """TRL's ORPO columns from our ids (no bos/eos added: the template's own tokens are already there)."""
        prompt = list(feature["prompt_ids"])
        row: dict[str, Any] = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
        for part in ("chosen", "rejected"):
            ids = (prompt + list(feature[f"{part}_ids"]))[: self.max_length]
            row[f"{part}_input_ids"] = ids
            row[f"{part}_attention_mask"] = [1] * len(ids)
            row[f"{part}_labels"] = [-100] * len(prompt) + ids[len(prompt):]
        return row


TRAINERS = {"dpo": (ChatDPOTrainer, DPOConfig), "kto": (ChatKTOTrainer, KTOConfig),
            "orpo": (ChatORPOTrainer, ORPOConfig)}


def stage_config(
    training_args: TrainingArguments, pref: PreferenceArguments, *, max_length: int,
    kto_weights: tuple[float, float] | None = None,
) -> TrainingArguments:
    """TRL's config for the stage: every ``TrainingArguments`` value of the run, plus the method's own options."""
    _, config_class = TRAINERS[pref.stage]
    base = {f.name: getattr(training_args, f.name) for f in dataclasses.fields(TrainingArguments)
            if f.init and hasattr(training_args, f.name)}
    base.update(max_length=max_length, beta=pref.beta, gradient_checkpointing=training_args.gradient_checkpointing,
                remove_unused_columns=True)
    if base.get("metric_for_best_model") == "eval_assistant_perplexity":  # the SFT default: no such metric here
        base.update(metric_for_best_model="eval_loss", greater_is_better=False)
    if pref.stage == "dpo":
        losses = [pref.loss_type] + (["sft"] if pref.sft_weight else [])
        base.update(loss_type=losses, loss_weights=[1.0, pref.sft_weight] if pref.sft_weight else None,
                    precompute_ref_log_probs=pref.precompute_ref_log_probs)
    elif pref.stage == "kto":
        desirable, undesirable = kto_weights or (1.0, 1.0)
        base.update(desirable_weight=desirable, undesirable_weight=undesirable,
                    precompute_ref_log_probs=pref.precompute_ref_log_probs,
                    train_sampling_strategy="sequential")  # TRL: the KL completions pair neighbours in a batch
    else:
        base.update(remove_unused_columns=False)  # ORPO's collator needs its prompt_/chosen_/rejected_ columns
    return config_class(**base)


def build_preference_trainer(
    model: Any, tokenizer: Any, train: Dataset, eval_dataset: Dataset | None, config: TrainingArguments,
    stage: str, callbacks: list | None = None, padding_free: bool = True,
) -> Trainer:
    """The stage's trainer (DPO padding-free unless ``padding_free=False``); logs what the reference model is and
    checks it against the starting policy."""
    trainer_class, _ = TRAINERS[stage]
    extra = {"padding_free": padding_free} if stage == "dpo" else {}
    trainer = trainer_class(model=model, args=config, train_dataset=train, eval_dataset=eval_dataset,
                            processing_class=tokenizer, callbacks=callbacks, **extra)
    if stage == "dpo":
        log_reference(trainer)
    elif stage == "kto":
        logger.info("KTO reference: %s.", describe_reference(trainer))
    elif stage == "orpo":
        logger.info("ORPO is reference-free: no reference model is loaded or computed.")
    return trainer


def describe_reference(trainer: Any) -> str:
    """What the trainer uses as its reference model, in words."""
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    if getattr(trainer, "ref_model", None) is not None:
        return "a frozen copy of the starting model"
    if is_peft_model(unwrapped):
        if "ref" in unwrapped.peft_config:
            return "the starting LoRA adapter (a frozen copy named 'ref' on the same base)"
        return "the base model with the new LoRA adapter disabled"
    return "the starting model's log-probabilities, computed once before training (--precompute_ref_log_probs)"


def reference_gap(trainer: Any, rows: int = 4) -> float:
    """Largest |policy − reference| sequence log-probability on the first training rows, before any step (0 when the
    reference is the starting policy, as DPO expects: its first loss is then ln 2)."""
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(min(rows, len(trainer.train_dataset)))])
    batch = {k: v.to(trainer.accelerator.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    if "ref_chosen_logps" in batch:
        ref = torch.cat([batch["ref_chosen_logps"], batch["ref_rejected_logps"]])
    else:
        ref = torch.cat(trainer.compute_ref_log_probs(trainer.ref_model or trainer.model, batch))
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    was_training = trainer.model.training
    trainer.model.eval()
    with torch.no_grad():
        out = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels,
                            use_cache=False, fused_lm_head=True)
    trainer.model.train(was_training)
    policy = out.log_probs[:, -(batch["completion_mask"].size(1) - 1):].sum(dim=1)
    return float((policy - ref.to(policy.device)).abs().max())


def log_reference(trainer: Any) -> float:
    """Log the reference model and whether it equals the starting policy (a warning when it does not)."""
    gap = reference_gap(trainer)
    what = describe_reference(trainer)
    if gap <= 0.05:  # TRL's fused head: the policy's log-probs are ~1e-3/token off the reference's on equal weights
        logger.info("DPO reference: %s; it equals the starting policy (max |Δ log p| %.2g), so every reward margin "
                    "starts at 0 (the sigmoid loss at ln 2 = %.4f).", what, gap, math.log(2))
    else:
        logger.warning("DPO reference: %s; it differs from the starting policy (max |Δ log p| %.3g on the first "
                       "rows), so the first loss is not ln 2.", what, gap)
    return gap

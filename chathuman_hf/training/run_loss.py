"""``train_loss`` of a resumed run: the mean over the whole run's steps, not only the steps after the resume.

Trainer averages only the losses it saw in this ``train()`` call. :class:`RunLossCallback` is an
``ExportableState`` callback, so Trainer's own checkpoint machinery stores the loss sum so far in
``trainer_state.json``; on resume it is read back from there and :func:`whole_run_train_loss` adds it at the end.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import TrainOutput


class RunLossCallback(TrainerCallback, ExportableState):
    """Holds the summed per-step training loss up to the last checkpoint (``offset``: up to this call's start)."""

    def __init__(self) -> None:
        self.loss_sum = 0.0
        self.offset = 0.0

    def state(self) -> dict:
        return {"args": {}, "attributes": {"loss_sum": self.loss_sum}}

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        # the checkpoint's trainer_state.json when resuming (read even without restore_callback_states_from_checkpoint)
        stored = (state.stateful_callbacks or {}).get(type(self).__name__) or {}
        stored = stored[0] if isinstance(stored, list) and stored else stored
        self.offset = self.loss_sum = float((stored.get("attributes") or {}).get("loss_sum", 0.0))


def _callback(trainer: Any) -> RunLossCallback | None:
    # a resumed Trainer replaces the instance with a restored copy: look it up every time
    return next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, RunLossCallback)), None)


def record_loss_sum(trainer: Any) -> None:
    """Before a checkpoint is saved: store the loss summed over every step of the run so far."""
    cb = _callback(trainer)
    pending = getattr(trainer, "_tr_loss", None)
    if cb is not None:
        cb.loss_sum = cb.offset + trainer._total_loss_scalar + (float(pending.item()) if pending is not None else 0.0)


def whole_run_train_loss(trainer: Any, output: TrainOutput) -> TrainOutput:
    """``output`` with ``train_loss`` averaged over all ``global_step`` steps (the same as an uninterrupted run)."""
    cb = _callback(trainer)
    if cb is None or not cb.offset or not output.global_step:
        return output
    loss = (cb.offset + trainer._total_loss_scalar) / output.global_step
    output.metrics["train_loss"] = loss
    for entry in reversed(trainer.state.log_history):  # the summary Trainer logged at the end of train()
        if "train_loss" in entry:
            entry["train_loss"] = loss
            break
    return output._replace(training_loss=loss)

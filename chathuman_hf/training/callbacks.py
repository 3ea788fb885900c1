"""Trainer callbacks: every checkpoint carries ``chat_window.json`` so it loads in any chat front end."""

from __future__ import annotations

from pathlib import Path

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from chathuman_hf.core.window import ChatWindow


class ChatWindowCallback(TrainerCallback):
    """Write the training history window into each ``checkpoint-N`` (main process only)."""

    def __init__(self, window: ChatWindow) -> None:
        self.window = window

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if folder.is_dir():
                self.window.save_pretrained(folder)

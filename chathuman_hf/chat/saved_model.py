"""Opening a saved chat model directory for the engine: weights (a LoRA adapter merged), tokenizer with the chosen
chat template, generation config and history window."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from chathuman_hf.core.window import DEFAULT_MAX_TURNS, ChatWindow
from chathuman_hf.models.build import position_limit
from chathuman_hf.models.loading import is_adapter_dir, load_chat_model
from chathuman_hf.tokens.template_choice import apply_template_choice
from chathuman_hf.tokens.turn_end import end_of_turn_ids


def open_saved_model(
    model_dir: str | Path, *, device: str | None = None, dtype: torch.dtype | None = None, chat_template: str = "auto"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, GenerationConfig, ChatWindow]:
    """Model (on ``device``), tokenizer, generation config and window of ``model_dir`` (for
    ``ChatEngine.from_pretrained``).

    ``chat_template`` other than ``auto`` replaces the saved template; generation then stops on its end-of-turn token.
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists() and not is_adapter_dir(model_dir):
        raise FileNotFoundError(f"{model_dir} is not a saved model directory (no config.json): pass the output "
                                "directory of recipes/train.py.")
    model, tokenizer = load_chat_model(model_dir, dtype=dtype, merge=True)  # a LoRA adapter is merged once here
    tokenizer = apply_template_choice(tokenizer, chat_template)
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    try:
        generation_config = GenerationConfig.from_pretrained(model_dir)
    except OSError:
        generation_config = model.generation_config
    if chat_template != "auto":
        generation_config.eos_token_id = end_of_turn_ids(tokenizer)
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        raise ValueError(f"--chat_template {chat_template} adds tokens the model at {model_dir} does not have "
                         f"({len(tokenizer)} > {rows} embedding rows); use the template it was trained with.")
    try:
        window = ChatWindow.from_pretrained(model_dir)
    except FileNotFoundError:
        window = ChatWindow(max_turns=DEFAULT_MAX_TURNS, max_length=position_limit(model) or 1024)
    return model, tokenizer, generation_config, window

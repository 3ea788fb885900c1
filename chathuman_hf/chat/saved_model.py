"""Opening a saved chat model directory for the engine: weights (a LoRA adapter merged), tokenizer with the chosen
chat template, generation config and history window."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from chathuman_hf.core.cli import UsageError
from chathuman_hf.core.window import DEFAULT_MAX_TURNS, ChatWindow
from chathuman_hf.models.build import position_limit
from chathuman_hf.models.loading import is_adapter_dir, load_chat_model
from chathuman_hf.tokens.template_choice import apply_template_choice
from chathuman_hf.tokens.turn_end import end_of_turn_ids

ACCELERATORS = {  # device types chat can run on besides the CPU, and whether this machine has one
    "cuda": lambda: torch.cuda.is_available(),
    "mps": lambda: torch.backends.mps.is_available(),
    "xpu": lambda: hasattr(torch, "xpu") and torch.xpu.is_available(),
}


def resolve_device(device: str | None, option: str = "--device") -> str:
    """``device`` (``auto``/None: CUDA when present, else the CPU) checked: a device type chat runs on, present on
    this machine (``UsageError``, one line, otherwise)."""
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        parsed = None
    if parsed is None or (parsed.type != "cpu" and parsed.type not in ACCELERATORS):
        raise UsageError(f"{option} {device}: not a device to chat on; use auto, cpu, cuda or cuda:N (N a GPU index)")
    if parsed.type != "cpu" and not ACCELERATORS[parsed.type]():
        raise UsageError(f"{option} {device}: this machine has no {parsed.type.upper()} device (torch "
                         f"{torch.__version__}); use --device cpu or auto")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise UsageError(f"{option} {device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return device


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
    device = resolve_device(device)
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

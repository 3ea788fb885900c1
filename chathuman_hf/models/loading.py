"""Load a saved chat model directory: a full model (``config.json``) or a LoRA adapter (``adapter_config.json``).

One loader for every front end (``recipes/chat.py``, ``recipes/serve.py``, ``recipes/evaluate_model.py``, export): an
adapter's base is resolved from ``adapter_config.json`` (local path or Hub id), resized to the saved tokenizer when
tokens were added, and the adapter is applied on top.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from chathuman_hf.tokens.tokenizer import load_tokenizer

ADAPTER_CONFIG = "adapter_config.json"
MODEL_CONFIG = "config.json"


class NotAModelError(ValueError):
    """The directory is neither a saved model nor a LoRA adapter (one line naming it and the fix)."""


def is_adapter_dir(path: str | Path) -> bool:
    """True when ``path`` holds a PEFT adapter (``adapter_config.json``)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def model_kind(path: str | Path) -> str:
    """``"adapter"`` or ``"model"``; ``NotAModelError`` for anything else."""
    path = Path(path)
    if is_adapter_dir(path):
        return "adapter"
    if (path / MODEL_CONFIG).is_file():
        return "model"
    raise NotAModelError(
        f"{path}: neither a saved model (config.json) nor a LoRA adapter (adapter_config.json); pass the output "
        "directory of recipes/train.py."
    )


def adapter_base(path: str | Path) -> str:
    """The base model of an adapter directory, as written in ``adapter_config.json`` (local directory or Hub id)."""
    config = json.loads((Path(path) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise NotAModelError(
            f"{path}/{ADAPTER_CONFIG} names no base_model_name_or_path; add the base's path or Hub id."
        )
    return str(base)


def load_chat_model(
    path: str | Path, *, dtype: torch.dtype | str | None = None, merge: bool = False, trainable: bool = False
) -> tuple[PreTrainedModel | Any, PreTrainedTokenizerBase]:
    """(model, tokenizer) of a saved chat model or adapter; ``merge`` folds an adapter into the base weights;
    ``trainable``: an adapter's weights train on (a preference stage after a LoRA SFT run).

    The model's ``generation_config`` is the one saved in ``path`` (an adapter's base has its own).
    """
    path = Path(path)
    kind = model_kind(path)
    tokenizer = load_tokenizer(str(path))
    kwargs = {"dtype": dtype} if dtype is not None else {}
    if kind == "model":
        return AutoModelForCausalLM.from_pretrained(path, **kwargs), tokenizer
    from peft import PeftModel

    base_id = adapter_base(path)
    try:
        base = AutoModelForCausalLM.from_pretrained(base_id, **kwargs)
    except OSError as exc:
        raise NotAModelError(
            f"{path}: the adapter's base {base_id!r} cannot be loaded ({str(exc).splitlines()[0]}); put it at that "
            "path or log in to the Hub, or edit base_model_name_or_path in adapter_config.json."
        ) from None
    if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:
        # added role tokens: their trained rows come from the adapter (trainable_tokens_delta), not from this init
        base.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model = PeftModel.from_pretrained(base, str(path), is_trainable=trainable)
    if merge:
        model = model.merge_and_unload()
    try:
        generation_config = GenerationConfig.from_pretrained(path)
    except OSError:
        generation_config = None
    if generation_config is not None:
        (model if merge else model.get_base_model()).generation_config = generation_config
    return (model.train() if trainable else model.eval()), tokenizer

"""Build the causal LM (pretrained or from a config) and guard token ids against the embedding table."""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


def name_causal_lm_loss(model: PreTrainedModel) -> PreTrainedModel:
    """Name the loss transformers falls back to anyway, so that GPT-2-style classes stop warning about it.

    transformers derives ``loss_type`` from the class name; ``GPT2LMHeadModel`` (KoGPT2) matches none, so every run
    warned "`loss_type=None` was set in the config but it is unrecognized. Using the default loss: `ForCausalLMLoss`"
    (transformers 5.24, measured here), although that default is the right loss.
    """
    if getattr(model, "loss_type", "") is None:
        model.loss_type = "ForCausalLM"
    return model


def position_limit(model: PreTrainedModel) -> int | None:
    """How many positions the model can attend to (the config's first positive one of the usual names), or None."""
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(model.config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def parse_config_overrides(overrides: str | dict[str, Any] | None) -> dict[str, Any]:
    """Parse ``"n_layer=2,n_embd=64"`` (run_clm.py style) or pass a dict through."""
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in overrides.split(","))):
        if "=" not in part:
            raise ValueError(f"config_overrides item {part!r}: expected key=value, e.g. 'n_layer=2,n_embd=64'")
        key, value = (s.strip() for s in part.split("=", 1))
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = {"true": True, "false": False, "none": None}.get(value.lower(), value)
    return out


def _resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | str | None:
    if isinstance(dtype, str) and dtype not in ("auto",):
        return getattr(torch, dtype)
    return dtype


def build_model(
    model_name_or_path: str | None = None,
    *,
    model_type: str | None = None,
    config_overrides: str | dict[str, Any] | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    dtype: str | torch.dtype | None = None,
    guards: bool = True,
    load_kwargs: dict[str, Any] | None = None,
) -> PreTrainedModel:
    """Load a causal LM (Hub id or local dir) or build one from scratch (``model_type``, default gpt2).

    With a tokenizer: the vocabulary size and special ids follow it, and embeddings are resized to
    ``len(tokenizer)`` with mean-initialized new rows; ``ensure_vocab_fits`` is checked. With ``guards`` the
    model refuses double-shifted labels (``losses.install_label_guard``). ``config.use_cache`` is off, as Trainer
    sets it, so packed rows stay apart (``packed_attention``); generation follows ``generation_config.use_cache``.
    ``load_kwargs`` go to ``from_pretrained`` (e.g. QLoRA's quantization config).
    """
    overrides = parse_config_overrides(config_overrides)
    dtype = _resolve_dtype(dtype)
    if model_name_or_path:
        config = AutoConfig.from_pretrained(model_name_or_path)
        for key, value in overrides.items():
            setattr(config, key, value)
        kwargs = {"config": config, **(load_kwargs or {})}
        if dtype is not None:
            kwargs["dtype"] = dtype
        model = AutoModelForCausalLM.from_pretrained(model_name_or_path, **kwargs)
    else:
        if tokenizer is not None:
            overrides.setdefault("vocab_size", len(tokenizer))
            for name in ("bos_token_id", "eos_token_id", "pad_token_id"):  # GPT-2's 50256 would not fit the vocab
                if getattr(tokenizer, name) is not None:
                    overrides.setdefault(name, getattr(tokenizer, name))
        config = AutoConfig.for_model(model_type or "gpt2", **overrides)
        model = (
            AutoModelForCausalLM.from_config(config, dtype=dtype)
            if dtype
            else AutoModelForCausalLM.from_config(config)
        )
    model.config.use_cache = False
    name_causal_lm_loss(model)
    if tokenizer is not None:
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(tokenizer, name)
            if value is not None:
                setattr(model.config, name, value)
                if getattr(model, "generation_config", None) is not None:
                    setattr(model.generation_config, name, value)
        ensure_vocab_fits(model, tokenizer)
    if guards:
        from chathuman_hf.models.losses import install_label_guard

        install_label_guard(model)
    return model


def embedding_rows(model: PreTrainedModel) -> int:
    return int(model.get_input_embeddings().weight.shape[0])


def ensure_vocab_fits(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase | None = None, dataset: Any = None, *,
    resize: bool = True,
) -> PreTrainedModel:
    """Check every id the tokenizer (and the tokenized ``dataset``) can produce against the embedding rows.

    If the tokenizer grew (added tokens) and ``resize`` is set, embeddings are resized with mean init; any id that
    still does not fit raises ``ValueError`` naming the id, where it was found, and both sizes.
    """
    rows = embedding_rows(model)
    if tokenizer is not None:
        needed = max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)
        if needed > rows:
            if not resize:
                raise ValueError(
                    f"Tokenizer has {needed} ids but the model's embedding table has {rows} rows; "
                    "call model.resize_token_embeddings(len(tokenizer)) or build_model(..., tokenizer=tokenizer)."
                )
            logger.warning("Resizing embeddings from %d to %d rows (new rows mean-initialized).", rows, needed)
            model.resize_token_embeddings(needed, mean_resizing=True)
            rows = embedding_rows(model)
    if dataset is not None:
        _check_dataset_ids(model, tokenizer, dataset, rows)
    return model


def _check_dataset_ids(model: PreTrainedModel, tokenizer: Any, dataset: Any, rows: int) -> None:
    """Vectorized id/length check over the ``input_ids`` column; on failure, name the first offending row."""
    import pyarrow.compute as pc

    column = dataset.data.column("input_ids") if hasattr(dataset, "data") else None
    if column is None:
        raise ValueError("ensure_vocab_fits(dataset=...) expects a datasets.Dataset with an 'input_ids' column")
    flat = pc.list_flatten(column)
    if len(flat) == 0:
        return
    top, low = pc.max(flat).as_py(), pc.min(flat).as_py()
    max_pos = position_limit(model)
    longest = pc.max(pc.list_value_length(column)).as_py()
    if top < rows and low >= 0 and (max_pos is None or longest <= max_pos):
        return
    for index, ids in enumerate(column.to_pylist()):
        bad = next((t for t in ids if t >= rows or t < 0), None)
        if bad is not None:
            raise ValueError(
                f"Dataset row {index} holds token id {bad}, outside the model's embedding table of {rows} rows "
                f"(tokenizer size {len(tokenizer) if tokenizer is not None else 'unknown'}): the data was tokenized "
                "with a different tokenizer than the model's; re-tokenize or resize."
            )
        if max_pos is not None and len(ids) > max_pos:
            raise ValueError(
                f"Dataset row {index} has {len(ids)} tokens but the model has {max_pos} positions; lower max_length."
            )

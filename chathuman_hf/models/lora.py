"""LoRA / QLoRA with PEFT: options, the adapter config (only added token rows train) and adapter saving.

With the base model's own chat template the tokenizer adds no tokens and the adapter holds only the LoRA matrices.
Where tokens had to be added (the ``<usr>``/``<sys>`` template on a base without them), only those embedding rows
(and output rows, when untied) train, through PEFT's ``trainable_token_indices``, instead of full ``modules_to_save``
copies of the embedding and output layers (the copies that break merging and vLLM adapters).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)


class PeftSetupError(ValueError):
    """A LoRA/QLoRA option that cannot work here (one line naming the option and the fix)."""


@dataclass
class LoraArguments:
    """LoRA / QLoRA fine-tuning through PEFT (``--use_peft``)."""

    use_peft: bool = field(default=False, metadata={"help": "Train a LoRA adapter (PEFT) instead of all weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={"help": "Modules that get LoRA matrices: all-linear (every linear layer but the output) or names."},
    )
    load_in_4bit: bool = field(
        default=False,
        metadata={"help": "QLoRA: load the base weights in 4-bit NF4 with bitsandbytes (pip install -e '.[qlora]')."},
    )

    def __post_init__(self) -> None:
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise PeftSetupError(f"--lora_r ({self.lora_r}) and --lora_alpha ({self.lora_alpha}) must be positive.")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise PeftSetupError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}.")
        if self.load_in_4bit and not self.use_peft:
            raise PeftSetupError("--load_in_4bit trains a LoRA adapter on a 4-bit base: add --use_peft.")


def check_4bit_support(device: str | torch.device = "cpu") -> None:
    """Raise ``PeftSetupError`` (one line) unless bitsandbytes is installed and can 4-bit quantize on ``device``."""
    try:
        import bitsandbytes.functional as bnb_functional
    except ImportError as exc:
        raise PeftSetupError(
            f"--load_in_4bit needs bitsandbytes ({exc}): pip install -e '.[qlora]', or drop --load_in_4bit."
        ) from None
    try:
        probe = torch.randn(64, 64, device=device)
        packed, state = bnb_functional.quantize_4bit(probe, quant_type="nf4")
        bnb_functional.dequantize_4bit(packed, state)
    except Exception as exc:  # bitsandbytes raises backend-specific errors; any of them means no 4-bit here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PeftSetupError(
            f"--load_in_4bit: the installed bitsandbytes cannot quantize on {device} ({first}); "
            "drop --load_in_4bit (plain LoRA) or use a supported GPU."
        ) from None


def quantization_kwargs(args: LoraArguments, dtype: torch.dtype | None = None) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for QLoRA (NF4, double quantization); empty without ``load_in_4bit``."""
    if not args.load_in_4bit:
        return {}
    from transformers import BitsAndBytesConfig

    compute = dtype if isinstance(dtype, torch.dtype) else (
        torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    )
    config = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
    )
    # one whole copy per process, on this process's GPU (data parallel: LOCAL_RANK), as TRL's get_kbit_device_map
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
    return {"quantization_config": config, "device_map": {"": device}}


def base_vocabulary_size(model_name_or_path: str | None, embedding_rows: int) -> int:
    """How many token ids the base model was trained on: its own tokenizer's length (capped by its embedding rows).

    Rows past the base tokenizer (padded embedding tables) were never trained either, so tokens placed there count
    as added. Without a loadable base tokenizer (a model built from scratch) every row counts as the base's.
    """
    if not model_name_or_path:
        return embedding_rows
    from transformers import AutoTokenizer

    try:
        base = AutoTokenizer.from_pretrained(model_name_or_path)
    except (OSError, ValueError):
        return embedding_rows
    return min(len(base), embedding_rows)


def added_token_ids(tokenizer: Any, base_vocab_size: int) -> list[int]:
    """Ids of the prepared tokenizer that the base vocabulary does not have (the rows that must train)."""
    return sorted({i for i in tokenizer.get_vocab().values() if i >= base_vocab_size})


def _module_name(model: torch.nn.Module, module: torch.nn.Module | None) -> str | None:
    for name, candidate in model.named_modules():
        if candidate is module:
            return name.rsplit(".", 1)[-1]
    return None


def token_rows_config(model: Any, added: list[int]) -> dict[str, list[int]] | None:
    """``trainable_token_indices`` for the added ids: the input embedding, plus the output layer when untied."""
    if not added:
        return None
    embed = model.get_input_embeddings()
    out = model.get_output_embeddings()
    rows = {_module_name(model, embed): list(added)}
    if out is not None and out.weight is not embed.weight:
        rows[_module_name(model, out)] = list(added)
    return rows


def lora_config(args: LoraArguments, token_rows: dict[str, list[int]] | None = None) -> Any:
    """The PEFT ``LoraConfig`` for a causal LM: no ``modules_to_save``; added rows via ``trainable_token_indices``."""
    from peft import LoraConfig

    targets: Any = args.lora_target_modules
    if list(targets) == ["all-linear"]:
        targets = "all-linear"
    return LoraConfig(
        r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules=targets,
        bias="none", task_type="CAUSAL_LM", trainable_token_indices=token_rows,
    )


def lora_able(module: torch.nn.Module) -> bool:
    """A layer PEFT's LoRA can wrap (linear, embedding, convolution, transformers' ``Conv1D``, multi-head attention;
    bitsandbytes' 4/8-bit linears are ``nn.Linear`` subclasses)."""
    kinds = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
             torch.nn.MultiheadAttention)
    return isinstance(module, kinds) or type(module).__name__ == "Conv1D"


def check_target_modules(model: torch.nn.Module, targets: list[str]) -> None:
    """Raise ``PeftSetupError`` (one line) naming every ``--lora_target_modules`` entry that matches no module (PEFT's
    rule: the full name or its dotted end) or a module LoRA cannot wrap; PEFT itself only fails when none matches, so
    a typo beside a good name trained the good one alone, silently, and a container such as ``attn`` failed with the
    module tree printed."""
    if list(targets) == ["all-linear"]:
        return
    modules = [(name, module) for name, module in model.named_modules() if name]
    layers = ", ".join(sorted({n.rsplit(".", 1)[-1] for n, m in modules if lora_able(m)})) or "none"
    matched = {t: [m for n, m in modules if n == t or n.endswith(f".{t}")] for t in targets}
    unmatched = [t for t, found in matched.items() if not found]
    if unmatched:
        raise PeftSetupError(f"--lora_target_modules {' '.join(unmatched)}: no module of the model is named so; layer "
                             f"names here: {layers} (or all-linear).")
    wrong = {t: sorted({type(m).__name__ for m in found if not lora_able(m)}) for t, found in matched.items()}
    wrong = {t: kinds for t, kinds in wrong.items() if kinds}
    if wrong:
        named = "; ".join(f"{t} is {'/'.join(kinds)}" for t, kinds in wrong.items())
        raise PeftSetupError(f"--lora_target_modules {' '.join(wrong)}: not a layer LoRA can wrap ({named}: LoRA "
                             f"wraps linear, embedding and convolution layers); layer names here: {layers} (or "
                             "all-linear).")


def parameter_counts(model: torch.nn.Module) -> dict[str, Any]:
    """Trainable and total parameters and the trainable share (%), as logged and written to the model card."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": trainable, "total_params": total, "trainable_share": 100.0 * trainable / max(total, 1)}


def apply_lora(
    model: Any, args: LoraArguments, tokenizer: Any, *, base_vocab_size: int, gradient_checkpointing: bool = False
) -> Any:
    """Wrap ``model`` in a PEFT LoRA model; log trainable parameters, their share and what added token rows cost."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    added = added_token_ids(tokenizer, base_vocab_size)
    if getattr(model, "is_loaded_in_4bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    elif gradient_checkpointing:
        model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks need inputs that require grads
    check_target_modules(model, args.lora_target_modules)
    rows = token_rows_config(model, added)
    base_path = getattr(model, "name_or_path", "") or ""
    peft_model = get_peft_model(model, lora_config(args, rows))
    if base_path and Path(base_path).is_dir():  # the adapter names its base by absolute path: loads from any cwd
        peft_model.peft_config["default"].base_model_name_or_path = str(Path(base_path).resolve())
    counts = parameter_counts(peft_model)
    logger.info("LoRA r=%d alpha=%d on %s: %s trainable of %s parameters (%.3f%%)", args.lora_r, args.lora_alpha,
                args.lora_target_modules, f"{counts['trainable_params']:,}", f"{counts['total_params']:,}",
                counts["trainable_share"])
    if added:
        width = model.get_input_embeddings().weight.shape[1]
        megabytes = len(added) * width * 4 * len(rows) / 1e6
        logger.info("%d token(s) not in the base vocabulary (ids %s) train as single rows of %s: %.3g MB in the "
                    "adapter (instead of full embedding copies).", len(added), added[:8], sorted(rows), megabytes)
    else:
        logger.info("No token added to the base vocabulary: the adapter holds only the LoRA matrices.")
    return peft_model


def is_peft_model(model: Any) -> bool:
    """True for a PEFT-wrapped model."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def save_adapter(
    model: Any, output_dir: str | Path, *, state_dict: dict | None = None, main_process: bool = True,
    adapters: list[str] | None = None,
) -> None:
    """Save a PEFT model's adapter without embedding copies, plus the base's generation config.

    PEFT's ``save_embedding_layers="auto"`` saves whole embedding and output tables as soon as the vocabulary was
    resized (measured with PEFT 0.21: 394 KB instead of 40 KB on a 64-dim model); the added rows are already in the
    adapter as ``trainable_tokens_delta``, so the copies are never needed here.
    """
    model.save_pretrained(output_dir, state_dict=state_dict, is_main_process=main_process, save_embedding_layers=False,
                          selected_adapters=adapters)  # adapters: e.g. ["default"], not a preference stage's "ref"
    if main_process:
        base = model.get_base_model()
        if getattr(base, "generation_config", None) is not None:
            base.generation_config.save_pretrained(output_dir)


def adapter_summary(model: Any) -> dict[str, Any] | None:
    """What the model card says about a LoRA adapter (``None`` for a model trained in full)."""
    if not is_peft_model(model):
        return None
    config = model.peft_config[model.active_adapter]
    targets = config.target_modules
    names = sorted({str(t).rsplit(".", 1)[-1] for t in targets}) if not isinstance(targets, str) else [targets]
    rows = config.trainable_token_indices or {}
    added = sorted({i for ids in (rows.values() if isinstance(rows, dict) else [rows]) for i in ids})
    info = parameter_counts(model)
    info.update({"r": config.r, "lora_alpha": config.lora_alpha, "lora_dropout": config.lora_dropout,
                 "target_modules": names, "trainable_token_rows": added, "modules_to_save": config.modules_to_save,
                 "quantized_4bit": bool(getattr(model.get_base_model(), "is_loaded_in_4bit", False))})
    return info

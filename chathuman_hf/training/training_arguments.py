"""``ChatTrainingArguments``: all of ``TrainingArguments`` with chat fine-tuning defaults, and its checks (device
layout, bf16 when available, ``--report_to`` integrations installed)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from transformers import TrainingArguments
from transformers.utils import is_torch_bf16_gpu_available


@dataclass
class ChatTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with defaults for a chat fine-tune: per-epoch eval/save, best model on assistant
    perplexity.
    """

    output_dir: str | None = field(
        default="outputs/chathuman", metadata={"help": "Where checkpoints and the model go."}
    )
    num_train_epochs: float = field(default=5.0, metadata={"help": "Total number of training epochs."})
    learning_rate: float = field(default=5.0e-05, metadata={"help": "Initial AdamW learning rate."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_steps: float = field(default=0.05, metadata={"help": "Warmup steps (a value < 1 is a share of all steps)."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=8, metadata={"help": "Batch size per device for evaluation."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(
        default="epoch", metadata={"help": "When to save a checkpoint: no, steps, epoch, best."}
    )
    save_total_limit: int | None = field(
        default=2, metadata={"help": "Keep at most this many checkpoints (+ the best)."}
    )
    load_best_model_at_end: bool = field(
        default=True, metadata={"help": "Load the best checkpoint (metric_for_best_model) at the end of training."}
    )
    metric_for_best_model: str | None = field(
        default="eval_assistant_perplexity", metadata={"help": "Metric that picks the best checkpoint."}
    )
    greater_is_better: bool | None = field(default=False, metadata={"help": "Whether a larger metric is better."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps (a value < 1 is a share)."})
    logging_first_step: bool = field(default=True, metadata={"help": "Log the first step too."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Must stay False: the collator needs the role columns."}
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False, metadata={"help": "DDP: search for unused parameters (not needed for GPT-2 style models)."}
    )
    auto_bf16: bool = field(
        default=False, metadata={"help": "Use bf16 mixed precision when the accelerator supports it, fp32 otherwise."}
    )
    gguf: str | None = field(
        default=None, metadata={"help": "At the end, also write OUTPUT_DIR/gguf/ with a GGUF of this type (f16, "
                                        "q8_0, f32, bf16) and an Ollama Modelfile (the gguf extra)."}
    )

    def __post_init__(self) -> None:
        if not self.use_cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1 and not accelerator_available():
            # several processes (accelerate launch / torchrun) and no GPU: data parallel on the CPU over gloo
            self.use_cpu = True
        if self.dataloader_pin_memory and not accelerator_available():
            self.dataloader_pin_memory = False  # pinned memory only helps host→GPU copies
        if self.auto_bf16 and not (self.bf16 or self.fp16) and not self.use_cpu and is_torch_bf16_gpu_available():
            self.bf16 = True
        if self.remove_unused_columns:
            raise ValueError(
                "--remove_unused_columns True would drop the 'roles'/'last_turn' columns the chat collator needs; "
                "leave it False."
            )
        try:
            super().__post_init__()
        except ValueError as err:  # transformers' own checks (e.g. eval vs save strategy) span lines: one line here
            raise ValueError(" ".join(str(err).split())) from None
        check_reporting_integrations(self.report_to)


def check_reporting_integrations(report_to: list[str]) -> None:
    """Refuse a ``--report_to`` integration that is not installed before any data is loaded (Trainer fails later)."""
    from transformers.integrations import get_available_reporting_integrations

    available = {"none", "all", *get_available_reporting_integrations()}
    missing = [name for name in report_to if name not in available]
    if missing:
        raise ValueError(
            f"--report_to {' '.join(missing)}: not installed here; install it (e.g. `pip install {missing[0]}`) or "
            "pass --report_to none."
        )


def accelerator_available() -> bool:
    """True when a CUDA/XPU/NPU/HPU device is present (one process per device is then the data-parallel layout)."""
    import torch
    from transformers.utils import is_torch_hpu_available, is_torch_npu_available, is_torch_xpu_available

    return (
        torch.cuda.is_available() or is_torch_xpu_available() or is_torch_npu_available() or is_torch_hpu_available()
    )

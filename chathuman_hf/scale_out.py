"""Scale-out engines: refuse the engine a launch asked for but would not get, instead of training another one.

Measured here (accelerate 1.16, torch 2.13 CPU): ``accelerate launch`` with ``distributed_type: FSDP`` on a machine
without GPUs starts the processes, but ``AcceleratorState`` only turns FSDP on for GPU-type devices; on the CPU it
keeps ``MULTI_CPU`` and drops the FSDP plugin, so the run silently trains plain DDP (full replicas, unsharded
checkpoints). torch's own ``fully_shard`` does work on CPU with gloo; the gap is accelerate's. DeepSpeed ZeRO-2/3
do run on two CPU processes (DeepSpeed's CPU accelerator with gloo).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def _flag(env: Mapping[str, str], name: str) -> bool:
    return str(env.get(name, "false")).strip().lower() in ("1", "true", "yes")


def engine_problem(distributed_type: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why the launch's engine (from accelerate's environment) would not run as asked here, or None."""
    import accelerate

    env = os.environ if env is None else env
    kind = str(distributed_type).rsplit(".", 1)[-1]
    if _flag(env, "ACCELERATE_USE_FSDP") and kind == "MULTI_CPU":
        return (
            f"FSDP was requested but accelerate {accelerate.__version__} runs FSDP only on GPUs: on this CPU-only "
            "machine the processes would train plain DDP with unsharded checkpoints. Use "
            "accelerate_configs/multi_cpu.yaml (DDP) or deepspeed_zero2.yaml / deepspeed_zero3.yaml with "
            "--mixed_precision no (sharded) on the CPU, and fsdp.yaml on GPUs."
        )
    return None


def check_engine(training_args: Any) -> None:
    """Raise ``ValueError`` (one line with the fix) when the launch asked for an engine this run would not use."""
    problem = engine_problem(training_args.distributed_state.distributed_type)
    if problem:
        raise ValueError(problem)

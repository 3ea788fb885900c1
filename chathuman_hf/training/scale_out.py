"""Scale-out engines: FSDP2 on CPU-only machines, and a one-line refusal for an engine a launch would not get.

Measured here (accelerate 1.16, torch 2.13 CPU): ``accelerate launch`` with ``distributed_type: FSDP`` on a machine
without GPUs starts the processes, but ``AcceleratorState`` only turns FSDP on for GPU-type devices; on the CPU it
keeps ``MULTI_CPU`` and drops the FSDP plugin, so the run would silently train plain DDP (full replicas, unsharded
checkpoints). torch's own ``fully_shard`` works on CPU over gloo, and so do accelerate's FSDP2 prepare, sharded
save/load and state-dict gathering once the state says FSDP (two-process runs in ``tests/test_scale_out.py``: losses
equal to DDP's, SIGKILL + resume). So the recipe turns FSDP2 back on there (``enable_fsdp_on_cpu``); FSDP1 on the
CPU is refused in one line. DeepSpeed ZeRO-2/3 run on two CPU processes as they are (DeepSpeed's CPU accelerator).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)


def _flag(env: Mapping[str, str], name: str) -> bool:
    return str(env.get(name, "false")).strip().lower() in ("1", "true", "yes")


def _fsdp_on_cpu(distributed_type: Any, env: Mapping[str, str]) -> bool:
    return _flag(env, "ACCELERATE_USE_FSDP") and str(distributed_type).rsplit(".", 1)[-1] == "MULTI_CPU"


def engine_problem(distributed_type: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why the launch's engine (from accelerate's environment) would not run as asked here, or None."""
    env = os.environ if env is None else env
    if _fsdp_on_cpu(distributed_type, env) and str(env.get("FSDP_VERSION", "1")) != "2":
        return (
            f"FSDP version {env.get('FSDP_VERSION', '1')} was requested on a CPU-only machine, where only FSDP2 is "
            "supported: set fsdp_version: 2 (accelerate_configs/fsdp_cpu.yaml), or use multi_cpu.yaml (DDP)."
        )
    return None


def check_engine(training_args: Any) -> None:
    """Raise ``ValueError`` (one line with the fix) when the launch asked for an engine this run would not use."""
    problem = engine_problem(training_args.distributed_state.distributed_type)
    if problem:
        raise ValueError(problem)


def enable_fsdp_on_cpu(accelerator: Any, env: Mapping[str, str] | None = None) -> bool:
    """Turn FSDP2 on where the launch asked for it but accelerate kept ``MULTI_CPU`` (see the module docstring).

    The plugin is built from the launch's ``FSDP_*`` environment, as accelerate itself does on GPUs. Returns True
    when it turned FSDP on; call it right after the ``Accelerator`` is created, before anything is prepared.
    """
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    env = os.environ if env is None else env
    state = accelerator.state
    if not _fsdp_on_cpu(state.distributed_type, env):
        return False
    problem = engine_problem(state.distributed_type, env)
    if problem:
        raise ValueError(problem)
    plugin = FullyShardedDataParallelPlugin()
    if accelerator.mixed_precision != "no":
        plugin.set_mixed_precision(accelerator.mixed_precision)
    state.distributed_type = DistributedType.FSDP  # AcceleratorState's shared state ...
    state.fsdp_plugin = plugin
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP  # ... and PartialState's, as accelerate does
    if state.is_main_process:
        logger.info("FSDP2 on the CPU over %d processes (accelerate keeps FSDP off without GPUs; turned on here)",
                    state.num_processes)
    return True

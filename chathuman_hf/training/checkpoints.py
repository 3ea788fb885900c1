"""Finding the checkpoint to resume from: ``--resume_from_checkpoint auto`` = the latest *complete* checkpoint."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "adapter_model.safetensors")


def checkpoint_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a complete Trainer checkpoint (``None`` when it is).

    Trainer writes ``trainer_state.json`` last, after the weights, optimizer, scheduler and RNG state; a checkpoint
    counts as complete when that file parses, names this step, and the weights (and optimizer/scheduler, unless the
    run saved only the model) are there.
    """
    path = Path(path)
    match = CHECKPOINT_RE.match(path.name)
    if not match or not path.is_dir():
        return "not a checkpoint-N directory"
    state_file = path / "trainer_state.json"
    if not state_file.is_file():
        return "no trainer_state.json (interrupted while saving)"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "trainer_state.json is not valid JSON (interrupted while saving)"
    if int(state.get("global_step", -1)) != int(match.group(1)):
        return f"trainer_state.json says step {state.get('global_step')}"
    if not any((path / name).is_file() for name in WEIGHT_FILES) and not list(path.glob("pytorch_model_fsdp*")):
        return "no model weights"
    has_optimizer = any(path.glob("optimizer.*")) or any(path.glob("global_step*")) or any(path.glob("optimizer_*"))
    has_scheduler = (path / "scheduler.pt").is_file() or any(path.glob("global_step*"))
    if not (has_optimizer and has_scheduler) and (path / "training_args.bin").is_file():
        # save_only_model checkpoints have no optimizer; they cannot be resumed exactly but are complete models.
        return "no optimizer/scheduler state (saved with save_only_model, cannot resume)"
    return None


def latest_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The highest-step complete ``checkpoint-N`` in ``output_dir``; incomplete ones are logged and skipped."""
    root = Path(output_dir)
    if not root.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), p) for p in root.iterdir() if (m := CHECKPOINT_RE.match(p.name)) and p.is_dir()
    )
    for _, path in reversed(found):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        logger.warning("Ignoring %s for resume: %s", path, problem)
    return None


def resolve_resume(value: str | bool | None, output_dir: str | Path) -> str | None:
    """Turn ``--resume_from_checkpoint`` into a path: ``auto``/``true`` → latest complete checkpoint (or ``None``)."""
    if value is None or value is False or str(value).lower() in ("", "none", "false", "no"):
        return None
    if value is True or str(value).lower() in ("auto", "true", "latest", "yes"):
        found = latest_complete_checkpoint(output_dir)
        if found is None:
            logger.warning("--resume_from_checkpoint auto: no complete checkpoint in %s; starting fresh.", output_dir)
        else:
            logger.info("Resuming from %s", found)
        return found
    path = Path(str(value))
    problem = checkpoint_problem(path) if path.is_dir() else "no such directory"
    if problem is not None:
        raise ValueError(f"--resume_from_checkpoint {path}: {problem}; pass a complete checkpoint-N directory or auto")
    return str(path)


def match_umask(folder: str | Path) -> list[str]:
    """Give files written ``0600`` the process's normal mode (``0644`` under umask 022); returns their names.

    safetensors writes ``model.safetensors`` through a private temporary file and renames it, so the weights (in
    the output directory and in every checkpoint) came out ``0600`` while everything else is ``0644``.
    """
    mask = os.umask(0)
    os.umask(mask)
    mode = 0o666 & ~mask
    fixed = []
    for path in Path(folder).iterdir():
        if path.is_file() and not path.is_symlink() and (path.stat().st_mode & 0o777) == 0o600 and mode != 0o600:
            path.chmod(mode)
            fixed.append(path.name)
    return fixed

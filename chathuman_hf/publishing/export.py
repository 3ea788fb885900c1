"""Export a trained chat model as a standalone model directory (``recipes/export.py``).

A LoRA adapter is merged into its base (``merge_and_unload``) and saved as safetensors with the tokenizer, chat
template, generation config, chat window, reports and card; a full fine-tune is copied without optimizer state,
checkpoints or other training leftovers. Either result loads with ``pipeline("text-generation", model=DIR)`` and
with vLLM.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from chathuman_hf.core.run_files import LOSS_CURVE_FILE, REPORT_FILE, RUN_ARGS_FILE
from chathuman_hf.core.window import WINDOW_FILE
from chathuman_hf.models.loading import adapter_base, load_chat_model, model_kind

logger = logging.getLogger(__name__)

# Files of a training output that describe the model (copied); everything else (checkpoint-*, optimizer.pt,
# scheduler.pt, rng_state*.pth, training_args.bin, trainer_state.json, _trained_tokenizer/) stays behind.
KEEP_SUFFIXES = (".safetensors", ".jinja", ".png", ".model", ".txt")
KEEP_JSON_EXCEPT = ("trainer_state.json", "adapter_config.json")
REPORT_FILES = (WINDOW_FILE, REPORT_FILE, RUN_ARGS_FILE, "train_results.json", "eval_results.json", "all_results.json",
                LOSS_CURVE_FILE)


def _kept(path: Path) -> bool:
    if not path.is_file() or path.name.startswith(("optimizer", "scheduler", "rng_state")):
        return False
    if path.suffix == ".json":
        return path.name not in KEEP_JSON_EXCEPT
    return path.suffix in KEEP_SUFFIXES or path.name == "README.md"


def _check_output(model_dir: Path, output_dir: Path) -> None:
    if output_dir.resolve() == model_dir.resolve():
        raise ValueError(f"--output {output_dir} is the model directory itself; choose a new directory.")
    if output_dir.exists() and any(output_dir.iterdir()):
        raise ValueError(f"--output {output_dir} exists and is not empty; choose a new directory or empty it.")


def export_model(model_dir: str | Path, output_dir: str | Path) -> Path:
    """Write a standalone, publishable copy of ``model_dir`` (merged adapter or cleaned full model) to
    ``output_dir``.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    kind = model_kind(model_dir)  # NotAModelError (one line) for a directory that is neither
    _check_output(model_dir, output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if kind == "model":
        for path in sorted(model_dir.iterdir()):
            if _kept(path):
                shutil.copy2(path, output_dir / path.name)
        logger.info("Copied the full model %s to %s without training state.", model_dir, output_dir)
        return output_dir
    base = adapter_base(model_dir)
    model, tokenizer = load_chat_model(model_dir, merge=True)
    model.save_pretrained(output_dir, safe_serialization=True)  # also writes the adapter's generation config
    tokenizer.save_pretrained(output_dir)
    for name in REPORT_FILES:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, output_dir / name)
    card = model_dir / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else f"# {output_dir.name}\n"
    note = (f"\n## Export\n\nA standalone model: the LoRA adapter `{model_dir.name}` merged into its base `{base}` "
            "with `python recipes/export.py` (PEFT `merge_and_unload`); it loads without PEFT, e.g. "
            "`pipeline(\"text-generation\", model=DIR)` or `vllm serve DIR`.\n")
    (output_dir / "README.md").write_text(text.replace("library_name: peft", "library_name: transformers") + note,
                                          encoding="utf-8")
    logger.info("Merged the adapter %s into %s and saved %s.", model_dir, base, output_dir)
    return output_dir


def push_export(output_dir: str | Path, hub_model_id: str, *, private: bool | None = None) -> str | None:
    """Upload an exported directory to the Hub (``huggingface_hub.upload_folder``); offline, stop before uploading."""
    from huggingface_hub import constants, create_repo, upload_folder

    if constants.HF_HUB_OFFLINE:
        logger.warning("HF_HUB_OFFLINE: %s is ready to push to %s; not uploading.", output_dir, hub_model_id)
        return None
    repo = create_repo(hub_model_id, private=private, exist_ok=True)
    upload_folder(repo_id=repo.repo_id, folder_path=str(output_dir), commit_message="Export from chathuman_hf")
    return repo.repo_id

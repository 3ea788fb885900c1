"""Export a standalone model directory as a GGUF for llama.cpp / Ollama / LM Studio, with an Ollama ``Modelfile``.

    python recipes/export.py --model outputs/run --output outputs/run-gguf --gguf q8_0

llama.cpp's own converter does the work (``gguf_convert.py`` runs it in a child process and adds only what it lacks
for our tokenizers and chat templates); this module reads the tokenizer to decide how it maps onto llama.cpp's
tokenizers (the plan), runs the conversion and writes the Modelfile beside the ``.gguf``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chathuman_hf.publishing.llama_cpp_source import find_converter
from chathuman_hf.publishing.modelfile import run_locally_lines, write_modelfile

logger = logging.getLogger(__name__)

GGUF_TYPES = ("f32", "f16", "bf16", "q8_0")


class GGUFExportError(ValueError):
    """A model or tokenizer the GGUF export cannot write faithfully (one-line message with the fix)."""


def _is_metaspace(part: dict | None) -> bool:
    if not part:
        return False
    if part.get("type") == "Metaspace":
        return True
    return any(_is_metaspace(p) for p in part.get("pretokenizers", part.get("normalizers", part.get("decoders", []))))


def _space_prefix(data: dict) -> bool:
    """Whether the tokenizer puts ``▁`` before a text (our Prepend normalizer, or Metaspace ``always``/``first``)."""
    norm = data.get("normalizer") or {}
    parts = norm.get("normalizers", [norm])
    if any(p.get("type") == "Prepend" and p.get("prepend") == "▁" for p in parts):
        return True
    pre = data.get("pre_tokenizer") or {}
    pres = pre.get("pretokenizers", [pre])
    return any(p.get("type") == "Metaspace" and p.get("prepend_scheme", "always") in ("always", "first") for p in pres)


def _byte_level_pre(data: dict) -> str | None:
    """llama.cpp's pre-tokenizer name for a byte-level BPE whose hash it does not know (trained from scratch)."""
    pre = data.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"  # HF ByteLevel's own regex is GPT-2's, llama.cpp's LLAMA_VOCAB_PRE_TYPE_GPT2
    return None


def check_runtime_shape(model_dir: Path) -> None:
    """Refuse configs llama.cpp would run differently than transformers (it fixes these from the layer count, and
    GGUF has no key for them): found by running tiny models in llama.cpp against the original's logits."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    kind, layers = config.get("model_type"), config.get("num_hidden_layers")
    mixed = len(set(config.get("layer_types") or [])) > 1
    if kind == "exaone4" and mixed and layers != 64:
        raise GGUFExportError(f"{model_dir}: llama.cpp applies EXAONE 4.0's sliding-window + global NoPE layer mix "
                              f"only to the 64-layer (32B) shape; this {layers}-layer mix would run differently.")
    head_dim = config.get("head_dim") or config.get("hidden_size", 0) // max(config.get("num_attention_heads", 1), 1)
    scalar = config.get("query_pre_attn_scalar", head_dim)
    if kind in ("gemma3", "gemma3_text") and scalar != head_dim and layers != 62:
        raise GGUFExportError(f"{model_dir}: llama.cpp scales Gemma 3 attention by 1/sqrt(head_dim={head_dim}), "
                              f"not by query_pre_attn_scalar={scalar} (only the 27B shape differs).")


def check_gguf_type(outtype: str) -> str:
    """``outtype`` when it is a GGUF type the export writes; a one-line error otherwise (checked before training)."""
    if outtype not in GGUF_TYPES:
        raise GGUFExportError(f"--gguf {outtype}: expected one of {', '.join(GGUF_TYPES)}.")
    return outtype


def tokenizer_plan(model_dir: str | Path) -> dict[str, Any]:
    """How the model's tokenizer maps onto llama.cpp's: vocabulary kind, pre-tokenizer, space prefix, end of turn."""
    from transformers import AutoTokenizer

    from chathuman_hf.tokens.turn_end import closing_text

    model_dir = Path(model_dir)
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise GGUFExportError(f"{model_dir} has no tokenizer.json: save the model with a fast tokenizer first.")
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data["model"]
    metaspace = _is_metaspace(data.get("pre_tokenizer")) or _is_metaspace(data.get("normalizer"))
    if metaspace and model["type"] != "BPE":
        raise GGUFExportError(f"{path}: a {model['type']} SentencePiece-style tokenizer has no exact llama.cpp "
                              "equivalent here; train the tokenizer with --model-type bpe for a GGUF export.")
    tok = AutoTokenizer.from_pretrained(model_dir)
    eot_text = closing_text(tok).strip() if tok.chat_template else ""
    eot_ids = tok.encode(eot_text, add_special_tokens=False) if eot_text else []
    eot_id = eot_ids[0] if len(eot_ids) == 1 else tok.eos_token_id
    if eot_id is None:
        raise GGUFExportError(f"{model_dir}: the tokenizer has neither an end-of-turn token nor an eos token.")
    with_specials = tok("가", add_special_tokens=True)["input_ids"]
    return {
        "vocab": "spm" if metaspace else "bpe",
        "pre": None if metaspace else _byte_level_pre(data),
        "add_space_prefix": _space_prefix(data) if metaspace else False,
        "eot_id": int(eot_id),
        "eot_text": tok.convert_ids_to_tokens(int(eot_id)),
        "bos_id": tok.bos_token_id,
        "add_bos": bool(tok.bos_token_id is not None and with_specials[:1] == [tok.bos_token_id]),
        "unk_token": tok.unk_token,
    }


def convert_to_gguf(model_dir: str | Path, outfile: str | Path, outtype: str = "f16", *,
                    llama_cpp_dir: str | Path | None = None) -> Path:
    """Write ``outfile`` (a GGUF) from a standalone Hugging Face model directory with llama.cpp's converter."""
    check_gguf_type(outtype)
    model_dir, outfile = Path(model_dir), Path(outfile)
    check_runtime_shape(model_dir)
    tree = find_converter(llama_cpp_dir)
    plan = {**tokenizer_plan(model_dir), "model_dir": str(model_dir), "outfile": str(outfile), "outtype": outtype,
            "name": model_dir.name}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tree), str(tree / "gguf-py"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with tempfile.TemporaryDirectory() as tmp:
        plan_file = Path(tmp) / "plan.json"
        plan_file.write_text(json.dumps(plan), encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "chathuman_hf.publishing.gguf_convert", str(plan_file)],
                              env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
        logger.error("llama.cpp converter output:\n%s", done.stderr[-4000:])
        raise GGUFExportError(f"llama.cpp's converter ({tree}) failed on {model_dir}: {tail[0]}")
    return outfile


def export_gguf(model_dir: str | Path, output_dir: str | Path, outtype: str = "f16", *,
                llama_cpp_dir: str | Path | None = None, name: str | None = None) -> Path:
    """Write ``OUTPUT/NAME-OUTTYPE.gguf`` (NAME: the output folder's) and ``OUTPUT/Modelfile`` for a standalone
    model directory."""
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    name = name or output_dir.resolve().name
    outfile = output_dir / f"{name}-{outtype}.gguf"
    start = time.perf_counter()
    convert_to_gguf(model_dir, outfile, outtype, llama_cpp_dir=llama_cpp_dir)
    logger.info("Wrote %s (%.1f MB) in %.1f s.", outfile, outfile.stat().st_size / 1e6, time.perf_counter() - start)
    write_modelfile(model_dir, output_dir / "Modelfile", outfile.name)
    _card_section(output_dir / "README.md", name, outfile.name)
    return outfile


def export_run_gguf(run_dir: str | Path, outtype: str, *, llama_cpp_dir: str | Path | None = None) -> Path:
    """``train.py --gguf``: the run's GGUF and Modelfile in ``RUN/gguf/`` (a LoRA adapter merged there first)."""
    from chathuman_hf.models.loading import model_kind
    from chathuman_hf.publishing.export import export_model

    run_dir = Path(run_dir)
    dest = run_dir / "gguf"
    source = export_model(run_dir, dest) if model_kind(run_dir) == "adapter" else run_dir
    return export_gguf(source, dest, outtype, llama_cpp_dir=llama_cpp_dir, name=run_dir.resolve().name)


def _card_section(card: Path, name: str, gguf_name: str) -> None:
    """Name the exported file in the card's "Run it locally" section (replaced, or added at the end)."""
    if not card.is_file():
        return
    text = card.read_text(encoding="utf-8")
    section = "\n".join(run_locally_lines(name, gguf_name))
    head, found, rest = text.partition("## Run it locally")
    if found:
        after = rest.find("\n## ")
        text = head + section + (rest[after + 1:] if after >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    card.write_text(text, encoding="utf-8")

"""Run llama.cpp's own converter (``conversion`` package beside ``convert_hf_to_gguf.py``) with what it lacks for our
models; executed as ``python -m chathuman_hf.publishing.gguf_convert PLAN.json`` by ``gguf_export.py`` in a child
process whose ``PYTHONPATH`` holds the converter tree and its vendored ``gguf-py`` (the converter needs that exact
``gguf``: the one on PyPI is older than the converter that ships with a llama-cpp-python release).

What we add, and why (everything else — tensor names, per-architecture tensor rewrites, hyperparameters, merges,
special tokens, the chat template — is the converter's and the ``gguf`` package's):

- SentencePiece-style tokenizers (``▁`` word boundaries, ``<0xXX>`` byte fallback: what ``train_tokenizer``,
  KoGPT2 and our ChatbotData recipe make) are written as llama.cpp's ``llama`` (SPM) vocabulary with
  ``add_space_prefix`` and BYTE-typed byte tokens. The converter only reads those from a ``tokenizer.model`` file,
  which a tokenizer trained with Hugging Face ``tokenizers`` does not have; its fallback, the byte-level ``gpt2``
  vocabulary, would not tokenize them the same way and refuses them ("BPE pre-tokenizer was not recognized").
  Scores are ``-id`` (earlier merges first), the order the BPE trainers assign ids in.
- A byte-level BPE trained from scratch has no known hash; its pre-tokenizer is read off ``tokenizer.json``
  instead (``ByteLevel`` with its own regex = llama.cpp's ``gpt-2``), chosen by the parent in the plan.
- An architecture whose converter wants ``tokenizer.model`` (Gemma) falls back to the ``tokenizer.json`` path.
- ``eos`` becomes the template's end-of-turn token (and ``eot`` too), so llama.cpp stops where the chat turn ends.
- The layer pattern of sliding-window models (``layer_types``) where the converter leaves it to llama.cpp's
  default (Gemma 3: every 6th layer global), so a model with another mix runs as it was trained.
- GPT-2 configs saved by transformers 5 have no ``n_ctx``; it is ``n_positions``.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _set_spm_vocab(self, plan: dict) -> None:
    """Write a SentencePiece-style ``tokenizer.json`` as llama.cpp's ``llama`` vocabulary (see module docstring)."""
    import gguf

    data = json.loads((self.dir_model / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = data["model"]["vocab"]
    added = {t["id"]: t for t in data.get("added_tokens", [])}
    size = max(self.hparams.get("vocab_size", 0), max(vocab.values()) + 1, max(added, default=-1) + 1)
    by_id = {i: t for t, i in vocab.items()} | {i: t["content"] for i, t in added.items()}
    tokens, scores, types_ = [], [], []
    for i in range(size):
        text = by_id.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]"), scores.append(-1e9), types_.append(gguf.TokenType.UNUSED)
            continue
        if text == plan.get("unk_token"):
            kind = gguf.TokenType.UNKNOWN
        elif i in added:
            kind = gguf.TokenType.CONTROL if added[i].get("special") else gguf.TokenType.USER_DEFINED
        elif BYTE_PIECE.fullmatch(text):
            kind = gguf.TokenType.BYTE
        else:
            kind = gguf.TokenType.NORMAL
        tokens.append(text.encode("utf-8")), scores.append(0.0 if i in added else -float(i)), types_.append(kind)
    w = self.gguf_writer
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types_)
    w.add_add_space_prefix(bool(plan["add_space_prefix"]))
    special = gguf.SpecialVocab(self.dir_model, load_merges=False, n_vocab=len(tokens))
    special.add_to_gguf(w)


def _patch(model, plan: dict) -> None:
    original_set_vocab = model.set_vocab
    original_pre = model.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer) -> str:
        try:
            return original_pre(tokenizer)
        except NotImplementedError:
            if plan.get("pre") is None:
                raise
            return plan["pre"]

    def set_vocab(self) -> None:
        if plan["vocab"] == "spm":
            _set_spm_vocab(self, plan)
        else:
            try:
                original_set_vocab()
            except FileNotFoundError:  # wants tokenizer.model (Gemma); a tokenizer.json model goes the BPE way
                self._set_vocab_gpt2()
        w = self.gguf_writer
        for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"):
            w.remove_key(key)
        w.add_eos_token_id(plan["eot_id"])
        w.add_eot_token_id(plan["eot_id"])
        for key in ("tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"):
            w.remove_key(key)
        w.add_add_bos_token(bool(plan["add_bos"]))  # as the Hugging Face tokenizer does; templates write their own
        w.add_add_eos_token(False)

    original_params = model.set_gguf_parameters

    def set_gguf_parameters(self) -> None:
        original_params()
        layer_types = self.hparams.get("layer_types")
        key = f"{self.gguf_writer.arch}.attention.sliding_window_pattern"
        written = any(key in kv for kv in self.gguf_writer.kv_data)
        if layer_types and "sliding_attention" in layer_types and not written:
            self.gguf_writer.add_sliding_window_pattern([t == "sliding_attention" for t in layer_types])

    model.set_gguf_parameters = types.MethodType(set_gguf_parameters, model)
    model.get_vocab_base_pre = types.MethodType(get_vocab_base_pre, model)
    model.set_vocab = types.MethodType(set_vocab, model)


def convert(plan: dict) -> str:
    """Convert ``plan["model_dir"]`` to ``plan["outfile"]`` with the converter's model class for its architecture."""
    import gguf
    import torch
    from conversion import ModelBase, ModelType, get_model_architecture, get_model_class

    ftypes = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
              "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
    model_dir = Path(plan["model_dir"])
    hparams = ModelBase.load_hparams(model_dir, False)
    if "n_positions" in hparams:
        hparams.setdefault("n_ctx", hparams["n_positions"])
    arch = get_model_architecture(hparams, ModelType.TEXT)
    cls = get_model_class(arch)
    with torch.inference_mode():
        model = cls(model_dir, ftypes[plan["outtype"]], Path(plan["outfile"]), hparams=hparams,
                    model_name=plan.get("name"))
        _patch(model, plan)
        model.write()
    return str(model.fname_out)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(convert(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))

"""The chat templates real models ship (``tests/chat_templates/*.jinja``, sources in SOURCES.md) on tiny local
tokenizers that hold each template's special tokens (``special_tokens.json``); markers a real vocabulary lacks stay
plain text, split into byte-level pieces as in the real models."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "chat_templates"
SPECIALS = json.loads((TEMPLATE_DIR / "special_tokens.json").read_text(encoding="utf-8"))
TEMPLATES = sorted(SPECIALS)
# The text that ends a reply (what generation stops on), per template.
END_OF_TURN = {
    "qwen2_5": "<|im_end|>", "qwen3": "<|im_end|>", "smollm2": "<|im_end|>",
    "deepseek_r1_distill": "<｜end▁of▁sentence｜>",
    "exaone3_5": "[|endofturn|]", "exaone4": "[|endofturn|]", "exaone_deep": "[|endofturn|]", "llama3_1": "<|eot_id|>",
    "llama3_2": "<|eot_id|>", "gemma2": "<end_of_turn>", "gemma3": "<end_of_turn>", "phi4_mini": "<|end|>",
    "mistral_small": "</s>", "mistral_small3_2": "</s>", "tinyllama": "</s>", "olmo2": "<|endoftext|>",
    "granite3_3": "<|end_of_text|>", "gemma4": "<turn|>",
}


def template_text(name: str) -> str:
    return (TEMPLATE_DIR / f"{name}.jinja").read_text(encoding="utf-8")


@cache
def _backend(name: str) -> Any:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    from tests.helpers.tiny_models import sample_texts

    spec = SPECIALS[name]
    specials = list(dict.fromkeys(t for t in (spec.get("bos_token"), spec.get("eos_token"), spec.get("pad_token"),
                                              spec.get("unk_token"), *spec["additional_special_tokens"]) if t))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    # plain-text markers get merges as in a real vocabulary (and '<|x|>>' one too, for a marker split in context)
    extra = [f"{m}{tail}" for m in spec["plain_text_markers"] for tail in ("\n", ">") for _ in range(50)]
    tok.train_from_iterator([*sample_texts(), *extra], trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in spec.get("added_non_special_tokens", [])])
    return tok.to_str()


def real_template_tokenizer(name: str) -> Any:
    """A fast tokenizer with ``name``'s special tokens and real chat template (byte-level BPE, vocab ~600)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = SPECIALS[name]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_backend(name)), bos_token=spec.get("bos_token"),
        eos_token=spec.get("eos_token"), pad_token=spec.get("pad_token"), unk_token=spec.get("unk_token"),
        extra_special_tokens=[t for t in spec["additional_special_tokens"] if t not in (spec.get("bos_token"),
                                                                                      spec.get("eos_token"))],
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = template_text(name)
    fast.name_or_path = name
    return fast


def make_real_template_model_dir(path: str | Path, name: str, *, seed: int = 0) -> Path:
    """A tiny llama-architecture base model with ``name``'s tokenizer and chat template, saved under ``path``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tests.helpers.families import TINY_FAMILY_CONFIGS

    path = Path(path)
    tok = real_template_tokenizer(name)
    tok.save_pretrained(path)
    config = AutoConfig.for_model("llama", vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                  **TINY_FAMILY_CONFIGS["llama"])
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    return path

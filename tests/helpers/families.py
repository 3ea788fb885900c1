"""Test helpers for the base-model families: tiny configs of every architecture the recipe accepts, chat templates
we wrote that render each family's documented turn format, and tiny base-model directories built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tests.helpers.tiny_models import make_kogpt2_like_dir, sample_texts

# Tiny configs (AutoConfig.for_model overrides) of every architecture family the recipe accepts, ~20-30k
# parameters each. gemma3_text and exaone4 get one sliding-window layer (window 16, shorter than a packed row)
# and one full-attention layer, the layer mix of the real models.
_TINY_DECODER = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "num_key_value_heads": 1,
                 "intermediate_size": 64, "max_position_embeddings": 256}
_SLIDING = {"sliding_window": 16, "layer_types": ["sliding_attention", "full_attention"]}
TINY_FAMILY_CONFIGS: dict[str, dict[str, Any]] = {
    "gpt2": {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 256},
    "llama": dict(_TINY_DECODER),
    "qwen2": dict(_TINY_DECODER),
    "gemma3_text": {**_TINY_DECODER, "head_dim": 16, **_SLIDING},
    "exaone4": {**_TINY_DECODER, **_SLIDING},
}
# ---------------------------------------------------------------- base-model families with their own templates
# Templates we wrote to render each family's documented turn format (for tests; the real models ship their own).
_LOOP = "{%- for m in messages -%}"
FAMILY_TEMPLATES = {
    # Llama 3 (kanana, HyperCLOVA X SEED, Mi:dm): headers, contents trimmed, <|eot_id|> ends every turn
    "llama": "{{- bos_token -}}" + _LOOP + "{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + "
             "(m['content'] | trim) + '<|eot_id|>' -}}{%- endfor -%}"
             "{%- if add_generation_prompt -%}"
             "{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}{%- endif -%}",
    # ChatML (Qwen 2.5, A.X 4.0)
    "qwen2": _LOOP + "{{- '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' -}}{%- endfor -%}"
             "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}",
    # Gemma 3: the assistant is 'model'; a system message is folded into the first user turn
    "gemma3_text": "{{- bos_token -}}{%- if messages and messages[0]['role'] == 'system' -%}"
                   "{%- set first = (messages[0]['content'] | trim) + '\n\n' -%}{%- set turns = messages[1:] -%}"
                   "{%- else -%}{%- set first = '' -%}{%- set turns = messages -%}{%- endif -%}"
                   "{%- for m in turns -%}{{- '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role'])"
                   " + '\n' + (first if loop.first else '') + (m['content'] | trim) + '<end_of_turn>\n' -}}"
                   "{%- endfor -%}{%- if add_generation_prompt -%}{{- '<start_of_turn>model\n' -}}{%- endif -%}",
    # EXAONE 4.0
    "exaone4": _LOOP + "{{- '[|' + m['role'] + '|]\n' + m['content'] + '[|endofturn|]\n' -}}{%- endfor -%}"
               "{%- if add_generation_prompt -%}{{- '[|assistant|]\n' -}}{%- endif -%}",
}
# Special tokens per family: (bos, eos, pad, unk, others); eos differs from the end-of-turn token for llama.
FAMILY_SPECIALS = {
    "llama": ("<|begin_of_text|>", "<|end_of_text|>", None, None,
              ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]),
    "qwen2": (None, "<|im_end|>", "<|endoftext|>", None, ["<|im_start|>"]),
    "gemma3_text": ("<bos>", "<eos>", "<pad>", "<unk>", ["<start_of_turn>", "<end_of_turn>"]),
    "exaone4": ("[BOS]", "[|endofturn|]", "[PAD]", "[UNK]", ["[|system|]", "[|user|]", "[|assistant|]"]),
}
FAMILIES = ("gpt2", *FAMILY_TEMPLATES)


def _family_fast(tok: Any, family: str) -> Any:
    from transformers import PreTrainedTokenizerFast

    bos, eos, pad, unk, others = FAMILY_SPECIALS[family]
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
                                   extra_special_tokens=others, clean_up_tokenization_spaces=False)
    fast.chat_template = FAMILY_TEMPLATES[family]
    return fast


def family_specials(family: str) -> list[str]:
    """Every special token of ``family`` (bos, eos, pad, unk and the turn markers), without duplicates."""
    bos, eos, pad, unk, others = FAMILY_SPECIALS[family]
    return list(dict.fromkeys(t for t in (bos, eos, pad, unk, *others) if t))


def make_family_word_tokenizer(family: str, words: list[str]) -> Any:
    """A word-level tokenizer with ``family``'s specials and template and predictable ids (hand-checked masks).

    Ids: the specials in ``family_specials`` order, then ``\\n``, the role names, then ``words``; spaces split words.
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    vocab_list = [*family_specials(family), "\n", "user", "assistant", "system", "model", *words]
    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(vocab_list)}, unk_token=vocab_list[0]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("\n"), behavior="isolated"), pre_tokenizers.Split(Regex(" "), behavior="removed"),
    ])
    return _family_fast(tok, family)


def make_family_model_dir(path: str | Path, family: str, *, vocab_size: int = 1000, seed: int = 0) -> Path:
    """A tiny base model of ``family`` (gpt2, llama, qwen2, gemma3_text, exaone4) built from its config, with a
    byte-level BPE tokenizer trained on the embedded sample and the family's chat template (gpt2: none, like
    KoGPT2, so the recipe adds ours). 2 layers, 32 dims, 256 positions; loads with ``--model_name_or_path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoModelForCausalLM

    if family == "gpt2":
        return make_kogpt2_like_dir(path, vocab_size=vocab_size, n_layer=2, n_positions=256)
    if family not in FAMILY_TEMPLATES:
        raise ValueError(f"Unknown family {family!r}: expected one of {', '.join(FAMILIES)}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=family_specials(family),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(sample_texts(), trainer=trainer)
    fast = _family_fast(tok, family)
    fast.save_pretrained(path)
    config = AutoConfig.for_model(
        family, vocab_size=len(fast), bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id, **TINY_FAMILY_CONFIGS[family],
    )
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    return path

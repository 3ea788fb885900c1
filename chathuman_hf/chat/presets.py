"""Generation presets (``seed``: the seed project's beam search; ``fast``/``greedy``: streaming) and banned words."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

from transformers import GenerationConfig, PreTrainedTokenizerBase

from chathuman_hf.tokens.tokenizer import CHAT_SAMPLING

# Laughter/crying jamo and family words the seed kept out of replies (configurable per session/server).
DEFAULT_BANNED_WORDS = ("ㅋ", "ㅋㅋ", "ㅎㅎ", "ㅠ", "ㅠㅠ", "ㅜㅜ", "엄마", "아빠", "할머니", "할아버지")


@dataclass(frozen=True)
class GenerationPreset:
    """How replies are decoded; ``None`` fields keep the model directory's generation_config value."""

    name: str
    num_beams: int = 1
    do_sample: bool = CHAT_SAMPLING["do_sample"]
    temperature: float | None = CHAT_SAMPLING["temperature"]
    top_p: float | None = CHAT_SAMPLING["top_p"]
    repetition_penalty: float = CHAT_SAMPLING["repetition_penalty"]
    no_repeat_ngram_size: int = CHAT_SAMPLING["no_repeat_ngram_size"]
    max_new_tokens: int | None = None
    banned_words: tuple[str, ...] = field(default=DEFAULT_BANNED_WORDS)
    top_k: int | None = None  # None: the model directory's value (sampling only); 0: off
    min_p: float | None = None
    min_new_tokens: int | None = None  # end-of-turn tokens are held back until this many were generated

    @property
    def streams(self) -> bool:
        """Token streaming needs a single beam (TextIteratorStreamer does not support beam search)."""
        return self.num_beams == 1

    def replace(self, **overrides: Any) -> GenerationPreset:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"Unknown preset fields {sorted(unknown)}; expected some of {sorted(known)}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(overrides)
        if values["banned_words"] is not None:
            values["banned_words"] = tuple(values["banned_words"])
        return GenerationPreset(**values)


PRESETS: dict[str, GenerationPreset] = {
    "seed": GenerationPreset("seed", num_beams=3, do_sample=True, max_new_tokens=25),
    "fast": GenerationPreset("fast", num_beams=1, do_sample=True, max_new_tokens=40),
    "greedy": GenerationPreset(
        "greedy", num_beams=1, do_sample=False, temperature=None, top_p=None, max_new_tokens=40
    ),
}


def get_preset(preset: str | GenerationPreset, **overrides: Any) -> GenerationPreset:
    """A preset by name (``seed``, ``fast``, ``greedy``) or as given, with field overrides applied."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"Unknown generation preset {preset!r}; choose one of {sorted(PRESETS)}")
        preset = PRESETS[preset]
    return preset.replace(**overrides) if overrides else preset


def retry_preset(preset: GenerationPreset) -> GenerationPreset:
    """The preset for 다시 (a new reply to the same context): ``preset`` when it samples, else it with the chat
    sampling settings (greedy decoding would write the same reply again)."""
    if preset.do_sample:
        return preset
    return preset.replace(do_sample=True, temperature=CHAT_SAMPLING["temperature"], top_p=CHAT_SAMPLING["top_p"])


def bad_words_ids(tokenizer: PreTrainedTokenizerBase, words: tuple[str, ...] | list[str]) -> list[list[int]]:
    """Token-id sequences for each banned word, with and without a leading space (deduplicated, no unk)."""
    unk = tokenizer.unk_token_id
    found: list[list[int]] = []
    for word in words:
        for variant in (word, " " + word):
            ids = tokenizer.encode(variant, add_special_tokens=False)
            if ids and unk not in ids and ids not in found:
                found.append(ids)
    return found


def build_generation_config(base: GenerationConfig, preset: GenerationPreset,
                            tokenizer: PreTrainedTokenizerBase) -> GenerationConfig:
    """The model directory's generation config (eos/``<usr>`` stops, pad id) with the preset applied."""
    config = copy.deepcopy(base)
    config.num_beams = preset.num_beams
    config.do_sample = preset.do_sample
    # Neutral values (not None) when decoding greedily: None would fall back to the model's sampling defaults.
    config.temperature = preset.temperature if preset.do_sample and preset.temperature is not None else 1.0
    config.top_p = preset.top_p if preset.do_sample and preset.top_p is not None else 1.0
    if not preset.do_sample:
        config.top_k = None
    elif preset.top_k is not None:
        config.top_k = preset.top_k
    if preset.do_sample and preset.min_p is not None:
        config.min_p = preset.min_p
    if preset.min_new_tokens:
        config.min_new_tokens = preset.min_new_tokens
    config.use_cache = True
    config.repetition_penalty = preset.repetition_penalty
    config.no_repeat_ngram_size = preset.no_repeat_ngram_size
    if preset.max_new_tokens is not None:
        config.max_new_tokens = preset.max_new_tokens
    if config.max_new_tokens is None:
        config.max_new_tokens = CHAT_SAMPLING["max_new_tokens"]
    config.bad_words_ids = bad_words_ids(tokenizer, preset.banned_words) or None
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    return config

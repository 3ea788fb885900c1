"""Tokenizer preparation: role tokens, pad/eos/bos, the chat template and chat generation defaults.

The chat format (what training sees and what ``apply_chat_template`` renders)::

    bos [system text] <usr>user 1<sys>assistant 1 eos <usr>user 2<sys>assistant 2 eos

A ``system`` message (only as the first message) is rendered as plain text right after ``bos`` and before the
first ``<usr>`` (KoGPT2 has no system token); ``add_generation_prompt=True`` ends the text with ``<sys>``.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

from transformers import AutoTokenizer, GenerationConfig, PreTrainedTokenizerBase, PreTrainedTokenizerFast
from transformers.tokenization_utils_base import AddedToken

from chathuman_hf.tokens.turn_end import end_of_turn_ids

USER_TOKEN = "<usr>"
ASSISTANT_TOKEN = "<sys>"
DEFAULT_EOS = "</s>"
DEFAULT_PAD = "<pad>"
DEFAULT_UNK = "<unk>"
logger = logging.getLogger(__name__)
RESERVED_PATTERN = re.compile(r"^<unused(\d+)>$")

_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- if not loop.first -%}{{ raise_exception('A system message is only allowed first.') }}{%- endif -%}"
    "{{- message['content'] -}}"
    "{%- elif message['role'] == 'user' -%}"
    "{{- '@USR@' + message['content'] -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '@SYS@' + message['content'] + eos_token -}}"
    "{%- else -%}"
    "{{ raise_exception('Unknown role ' + message['role'] + ': expected system, user or assistant.') }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '@SYS@' -}}{%- endif -%}"
)


def build_chat_template(user_token: str = USER_TOKEN, assistant_token: str = ASSISTANT_TOKEN) -> str:
    """Return the Jinja chat template with the given role-marker token strings."""
    for tok in (user_token, assistant_token):
        if "'" in tok or "\\" in tok:
            raise ValueError(f"Role token {tok!r} cannot contain quotes or backslashes.")
    return _TEMPLATE.replace("@USR@", user_token).replace("@SYS@", assistant_token)


CHAT_TEMPLATE = build_chat_template()


def _in_vocab(tokenizer: PreTrainedTokenizerBase, token: str) -> bool:
    return token in tokenizer.get_vocab()


def _reserved_tokens(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    found = [(int(m.group(1)), tok) for tok in tokenizer.get_vocab() if (m := RESERVED_PATTERN.match(tok))]
    return [tok for _, tok in sorted(found)]


def role_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[str, str]:
    """The (user, assistant) marker strings of a prepared tokenizer, read back from its chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("The tokenizer has no chat template: call chathuman_hf.tokens.tokenizer.prepare_tokenizer "
                         "first.")
    probe = "\x00"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": probe}], tokenize=False, add_generation_prompt=True
    )
    head, _, tail = text.partition(probe)
    bos = tokenizer.bos_token or ""
    user = head[len(bos):] if head.startswith(bos) else head
    if not user or not tail:
        raise ValueError(
            f"Cannot find the role markers in the chat template output {text!r}: not a chathuman_hf template."
        )
    return user, tail


PROBE = "안녕하세요 반가워요"


def round_trips(tokenizer: PreTrainedTokenizerBase, text: str = PROBE) -> bool:
    """True when ``decode(encode(text)) == text`` without unknown tokens."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids or (tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids):
        return False
    return tokenizer.decode(ids, skip_special_tokens=True).strip() == text


def _loses_text(tokenizer: PreTrainedTokenizerBase, text: str = PROBE) -> bool:
    """True when known text silently disappears or changes (not merely unknown words mapped to ``<unk>``)."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        return True
    vocab = tokenizer.get_vocab()
    unk_ids = {tokenizer.unk_token_id} | {vocab.get(t) for t in ("<unk>", "[UNK]")}
    if unk_ids.intersection(ids):
        return False
    return tokenizer.decode(ids, skip_special_tokens=True).strip() != text


def load_tokenizer(name_or_path: str, **load_kwargs: Any) -> PreTrainedTokenizerBase:
    """``AutoTokenizer``, falling back to the repository's own ``tokenizer.json`` pipeline when that is faithful.

    transformers 5 maps a ``gpt2`` config to ``GPT2Tokenizer``, which imposes byte-level pre-tokenization and
    ``<|endoftext|>``; KoGPT2's SentencePiece-style ``tokenizer.json`` then loses Korean text. The generic
    ``PreTrainedTokenizerFast`` keeps the file's pipeline.
    """
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **load_kwargs)
    if round_trips(tokenizer):
        return tokenizer
    try:
        generic = PreTrainedTokenizerFast.from_pretrained(name_or_path, **load_kwargs)
    except (OSError, ValueError):
        return tokenizer
    if round_trips(generic):
        logger.info("Loaded %s with PreTrainedTokenizerFast (AutoTokenizer's %s loses Korean text).",
                    name_or_path, type(tokenizer).__name__)
        return generic
    return tokenizer


def prepare_tokenizer(
    tokenizer_or_name: PreTrainedTokenizerBase | str, *, use_reserved_tokens: bool = False, **load_kwargs: Any
) -> PreTrainedTokenizerBase:
    """Make a tokenizer chat-ready: eos/bos/pad/unk, atomic ``<usr>``/``<sys>`` role tokens and the chat template.

    KoGPT2 (bos = eos = ``</s>``, ``<pad>``, ``<unk>``, ``<mask>``, ``<usr>``, ``<sys>`` already in the vocabulary)
    is prepared without growing the vocabulary. Missing tokens are added (resize the model afterwards, see
    ``modeling.build_model``), or with ``use_reserved_tokens=True`` a missing role marker is mapped onto the first
    free ``<unusedN>`` token. Returns the (same, modified) tokenizer.
    """
    if isinstance(tokenizer_or_name, str):
        tokenizer = load_tokenizer(tokenizer_or_name, **load_kwargs)
    else:
        tokenizer = tokenizer_or_name
        if _loses_text(tokenizer):
            warnings.warn(
                f"{type(tokenizer).__name__} does not reproduce Korean text ({PROBE!r}); "
                "if this is KoGPT2 loaded with "
                "AutoTokenizer under transformers 5, pass the model name to prepare_tokenizer (or load it with "
                "PreTrainedTokenizerFast.from_pretrained) so its own tokenizer.json pipeline is used.",
                stacklevel=2,
            )
    if not getattr(tokenizer, "is_fast", False):
        warnings.warn(
            f"{type(tokenizer).__name__} is a slow tokenizer; chathuman_hf needs offsets from a fast tokenizer. "
            "Load it with use_fast=True or convert it.",
            stacklevel=2,
        )
    specials: dict[str, Any] = {}

    def special(tok: str) -> AddedToken:
        return AddedToken(tok, lstrip=False, rstrip=False, normalized=False, special=True)

    eos = tokenizer.eos_token
    if eos is None or not _in_vocab(tokenizer, eos):
        eos = DEFAULT_EOS
        specials["eos_token"] = special(eos)
    if tokenizer.bos_token is None or not _in_vocab(tokenizer, tokenizer.bos_token):
        specials["bos_token"] = special(eos)  # KoGPT2 convention: bos = eos = </s>
    if tokenizer.unk_token is None and _in_vocab(tokenizer, DEFAULT_UNK):
        specials["unk_token"] = special(DEFAULT_UNK)
    if getattr(tokenizer, "mask_token", None) is None and _in_vocab(tokenizer, "<mask>"):
        specials["mask_token"] = special("<mask>")
    if tokenizer.pad_token is None or not _in_vocab(tokenizer, tokenizer.pad_token):
        specials["pad_token"] = special(DEFAULT_PAD)

    reserved = _reserved_tokens(tokenizer) if use_reserved_tokens else []
    used = {str(t) for t in specials.values()} | set(tokenizer.all_special_tokens)
    chosen = []
    for want in (USER_TOKEN, ASSISTANT_TOKEN):
        tok = want
        if not _in_vocab(tokenizer, want) and use_reserved_tokens:
            free = [r for r in reserved if r not in used and r not in chosen]
            if not free:
                raise ValueError(
                    f"use_reserved_tokens=True but the tokenizer has no free <unusedN> token for {want}; "
                    "pass use_reserved_tokens=False to add the role token (and resize the model)."
                )
            tok = free[0]
        chosen.append(tok)
    if "pad_token" in specials and use_reserved_tokens and not _in_vocab(tokenizer, DEFAULT_PAD):
        free = [r for r in reserved if r not in used and r not in chosen]
        if free:
            specials["pad_token"] = special(free[0])

    existing_extra = [str(t) for t in (getattr(tokenizer, "extra_special_tokens", None) or [])]
    extra = existing_extra + [t for t in chosen if t not in existing_extra]
    specials["extra_special_tokens"] = [special(t) for t in extra]
    tokenizer.add_special_tokens(specials)

    user_tok, asst_tok = chosen
    tokenizer.chat_template = build_chat_template(user_tok, asst_tok)
    if hasattr(tokenizer, "clean_up_tokenization_spaces"):
        tokenizer.clean_up_tokenization_spaces = False
    tokenizer.padding_side = "left"  # generation batches; training collators pad themselves
    for tok in (user_tok, asst_tok, tokenizer.eos_token, tokenizer.pad_token):
        ids = tokenizer.encode(tok, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"Special token {tok!r} does not encode to a single id (got {ids}).")
    return tokenizer


# The seed's decoding (temperature 0.8, top-p 0.92, repetition penalty 1.25, no repeated 3-grams) and reply length:
# saved as each model's generation_config.json and the defaults of the chat presets (chathuman_hf.chat.presets).
CHAT_SAMPLING: dict[str, Any] = {
    "max_new_tokens": 32, "do_sample": True, "temperature": 0.8, "top_p": 0.92, "repetition_penalty": 1.25,
    "no_repeat_ngram_size": 3,
}


def chat_generation_config(tokenizer: PreTrainedTokenizerBase, **overrides: Any) -> GenerationConfig:
    """Generation defaults for chat: stop at the template's end of turn (``</s>``, ``<|im_end|>``…), eos or a new
    user turn (``<usr>``, ``<|im_start|>``…), pad id set, seed-like sampling."""
    eos_ids = end_of_turn_ids(tokenizer)
    values: dict[str, Any] = {
        "eos_token_id": eos_ids,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        **CHAT_SAMPLING,
    }
    values.update(overrides)
    return GenerationConfig(**values)

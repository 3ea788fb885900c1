"""What ends an assistant turn: the template's closing text, the user header after it, and the ids generation stops
on (all read off the template's layout)."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from chathuman_hf.tokens.rendering import layout_for


def closing_text(tokenizer: PreTrainedTokenizerBase) -> str:
    """The text the template closes an assistant turn with (``</s>``, ``<|im_end|>``...)."""
    layout = layout_for(tokenizer, ("user", "assistant", "user"))
    return layout.frames[2][: layout.closing[2]]


def user_header(tokenizer: PreTrainedTokenizerBase) -> str:
    """The template text that opens a user turn after an assistant turn (``<usr>``, ``<|im_start|>user\\n``...)."""
    layout = layout_for(tokenizer, ("user", "assistant", "user"))
    return layout.frames[2][layout.closing[2]:].lstrip()


def end_of_turn_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Token ids generation stops on: the template's end-of-turn token, eos, and the token opening a user turn."""
    ids: list[int] = []
    for text in (closing_text(tokenizer).strip(), user_header(tokenizer)):
        enc = tokenizer.encode(text, add_special_tokens=False) if text else []
        if enc and tokenizer.convert_ids_to_tokens(enc[0]) in set(tokenizer.all_special_tokens) | set(
            tokenizer.get_added_vocab()
        ):
            ids.append(enc[0])
    if tokenizer.eos_token_id is not None:
        ids.insert(1 if ids else 0, tokenizer.eos_token_id)
    return list(dict.fromkeys(ids))

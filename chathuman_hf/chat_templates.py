"""``--chat_template auto|model|chathuman|PATH.jinja``: the one definition of the choice and its resolution.

``auto`` (default): the base tokenizer's own template when it has one, else ours (``<usr>…<sys>…</s>``, added by
``tokenization.prepare_tokenizer``) — KoGPT2 and tokenizers trained here keep today's behaviour. ``model``: the base's
template, an error if it has none. ``chathuman``: ours. ``PATH.jinja``: that file. With a template other than ours no
token is added and the template string is kept byte for byte. Every choice is checked before training (assistant
role, end-of-turn text, prefix-consistent renders, special tokens in the vocabulary) with one-line errors.
"""

from __future__ import annotations

import re
from dataclasses import field
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from chathuman_hf.rendering import FIX, TEMPLATE_FILE_ATTR, TemplateError, layout_for, template_name
from chathuman_hf.tokenization import build_chat_template, prepare_tokenizer, role_tokens

TEMPLATE_CHOICES = ("auto", "model", "chathuman")
TEMPLATE_HELP = (
    "Chat template: auto (the base tokenizer's own template if it has one, else ours), model (the base's; an error "
    "if it has none), chathuman (ours: <usr>…<sys>…</s>, tokens added if missing) or PATH.jinja (a template file)."
)
# Marker-looking strings in a template's frames that must be single tokens: <|im_end|>, [|endofturn|], <end_of_turn>.
_MARKER = re.compile(r"<\|[^<>|\s]+\|>|\[\|[^\[\]|\s]+\|\]|<[/A-Za-z_][A-Za-z0-9_]*>")


def chat_template_field(default: str = "auto") -> Any:
    """The ``--chat_template`` dataclass field shared by train, evaluate, inspect_labels, chat and serve."""
    return field(default=default, metadata={"help": TEMPLATE_HELP})


def parse_template_choice(value: str | None) -> str:
    """``auto``/``model``/``chathuman`` or an existing ``.jinja`` file; anything else is a one-line error."""
    choice = (value or "auto").strip()
    if choice.lower() in TEMPLATE_CHOICES:
        return choice.lower()
    if choice.endswith((".jinja", ".j2", ".jinja2")):
        if not Path(choice).is_file():
            raise TemplateError(f"--chat_template {choice}: no such file; pass an existing .jinja file or one of "
                                f"{', '.join(TEMPLATE_CHOICES)}.")
        return choice
    raise TemplateError(f"--chat_template {choice!r}: unknown value; use one of {', '.join(TEMPLATE_CHOICES)} or a "
                        "template file PATH.jinja.")


def read_template_file(path: str) -> str:
    """The text of a ``--chat_template`` file: UTF-8, a byte-order mark (Windows Notepad) dropped; anything else is a
    one-line error naming the file."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise TemplateError(f"--chat_template {path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as "
                            "UTF-8 (e.g. iconv -f cp949 -t utf-8).") from None


def is_chathuman_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True when the tokenizer's template is ours (any role-marker tokens)."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return False
    try:
        return template == build_chat_template(*role_tokens(tokenizer))
    except Exception:  # noqa: BLE001 - a foreign template that role_tokens cannot read
        return False


def _prepare_foreign(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Pad/eos for a tokenizer keeping its own template; no token is added."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise TemplateError(f"{template_name(tokenizer)}: the tokenizer has neither a pad nor an eos token; "
                                "set one in its tokenizer_config.json or use --chat_template chathuman.")
        tokenizer.pad_token = tokenizer.eos_token  # padding positions never carry labels, any id will do
    tokenizer.padding_side = "left"
    return tokenizer


def apply_template_choice(
    tokenizer: PreTrainedTokenizerBase, choice: str | None = "auto", *, use_reserved_tokens: bool = False
) -> PreTrainedTokenizerBase:
    """Resolve ``--chat_template`` on ``tokenizer`` (in place) and check the result; returns the tokenizer."""
    choice = parse_template_choice(choice)
    has_own = bool(getattr(tokenizer, "chat_template", None))
    if choice == "chathuman" or (choice == "auto" and (not has_own or is_chathuman_template(tokenizer))):
        tokenizer = prepare_tokenizer(tokenizer, use_reserved_tokens=use_reserved_tokens)
    elif choice in ("auto", "model"):
        if not has_own:
            source = getattr(tokenizer, "name_or_path", "") or "the base model"
            raise TemplateError(f"--chat_template model: {source} has no chat template; use --chat_template chathuman "
                                "(adds <usr>/<sys>) or a template file (--chat_template PATH.jinja).")
        tokenizer = _prepare_foreign(tokenizer)
    else:
        tokenizer.chat_template = read_template_file(choice)
        setattr(tokenizer, TEMPLATE_FILE_ATTR, choice)  # later rendering errors name the file (template_name)
        tokenizer = _prepare_foreign(tokenizer)
        try:
            check_template(tokenizer)
        except TemplateError as err:  # the file is at fault, not the base whose tokenizer it was put on
            raise TemplateError(str(err).replace(template_name(tokenizer), f"--chat_template {choice}")) from None
        return tokenizer
    check_template(tokenizer)
    return tokenizer


def check_template(tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise ``TemplateError`` (one line with the fix) unless the template can train and stop generation."""
    if "strftime_now" in (tokenizer.chat_template or ""):
        raise TemplateError(f"{template_name(tokenizer)} stamps the current date (strftime_now), so the same "
                            f"conversation renders differently from day to day (not prefix-consistent across runs); "
                            f"{FIX}.")
    for roles in (("user", "assistant", "user", "assistant"), ("system", "user", "assistant")):
        try:
            layout = layout_for(tokenizer, roles)
        except TemplateError:
            if roles[0] == "system":
                continue  # a template without a system role is fine as long as the data has none
            raise
        frames = "".join(layout.frames)
        for marker in sorted(set(_MARKER.findall(frames))):
            ids = tokenizer.encode(marker, add_special_tokens=False)
            if len(ids) != 1 or tokenizer.convert_ids_to_tokens(ids[0]) != marker:
                raise TemplateError(f"{template_name(tokenizer)} uses {marker} but the vocabulary has no such token "
                                    f"(it encodes to {len(ids)} pieces); use the model's own tokenizer, add the token "
                                    f"and resize the embeddings, or {FIX}.")

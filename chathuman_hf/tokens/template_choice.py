"""``--chat_template auto|model|chathuman|PATH.jinja``: the one definition of the choice and its resolution.

``auto`` (default): the base tokenizer's own template when it has one, else ours (``<usr>…<sys>…</s>``, added by
``tokenization.prepare_tokenizer``) — KoGPT2 and tokenizers trained here keep today's behaviour. ``model``: the base's
template, an error if it has none. ``chathuman``: ours. ``PATH.jinja``: that file. With a template other than ours no
token is added and the template string is kept byte for byte. Every choice is checked before training with one-line
errors: an assistant role, end-of-turn text, a generation prompt that starts the reply it opens, role markers that
tokenize inside a conversation as they do alone, and the tokens before each reply equal to the inference prompt's.
Templates calling ``strftime_now`` render with one fixed date (``--template_date``).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import field
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from chathuman_hf.core.run_files import RUN_ARGS_FILE
from chathuman_hf.tokens.encoding import encode_dialogues
from chathuman_hf.tokens.labels import ASSISTANT
from chathuman_hf.tokens.rendering import FIX, TEMPLATE_FILE_ATTR, TemplateError, layout_for, template_name
from chathuman_hf.tokens.template_inputs import render_ids, render_text
from chathuman_hf.tokens.tokenizer import build_chat_template, prepare_tokenizer, role_tokens

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


def parse_template_date(value: str | None) -> str:
    """``--template_date``: an ISO date (YYYY-MM-DD); empty means today (UTC)."""
    if not value:
        return _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    try:
        return _dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise TemplateError(f"--template_date {value!r}: not a date; use YYYY-MM-DD, e.g. 2025-01-31.") from None


def saved_template_date(model_dir: str | Path) -> str | None:
    """The ``--template_date`` a model directory of ``train.py`` was trained with (``run_args.json``), if any."""
    path = Path(model_dir) / RUN_ARGS_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("ModelArguments", {}).get("template_date") or None


def apply_template_choice(
    tokenizer: PreTrainedTokenizerBase, choice: str | None = "auto", *, use_reserved_tokens: bool = False,
    template_date: str | None = None,
) -> PreTrainedTokenizerBase:
    """Resolve ``--chat_template`` on ``tokenizer`` (in place) and check the result; returns the tokenizer.

    ``template_date``: the date a template calling ``strftime_now`` renders with (default today), for every render
    of the run (``template_inputs.pinned_template``); the template saved with the model is unchanged.
    """
    choice = parse_template_choice(choice)
    tokenizer.chathuman_template_date = parse_template_date(template_date)
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


_PROBE = ("안녕하세요 반가워요", "네 안녕하세요!", "점심 뭐 먹었어?", "김밥 먹었어요.")


def check_template(tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise ``TemplateError`` (one line with the fix) unless the template can train and stop generation."""
    for roles in (("user", "assistant", "user", "assistant"), ("system", "user", "assistant")):
        try:
            layout_for(tokenizer, roles)
        except TemplateError:
            if roles[0] == "system":
                continue  # a template without a system role is fine as long as the data has none
            raise
        head = [{"role": "system", "content": "친절하게 답해요."}] if roles[0] == "system" else []
        probe = head + [{"role": r, "content": _PROBE[i % 4]} for i, r in enumerate(roles[len(head):])]
        _check_markers(tokenizer, probe)
        _check_prompts(tokenizer, probe)


def _check_markers(tokenizer: PreTrainedTokenizerBase, messages: list[dict]) -> None:
    """Every marker-looking string of the render (``<|im_end|>``, ``[|endofturn|]``, ``<|user|>`` as plain text)
    tokenizes inside the conversation exactly as alone: same pieces, token boundaries at both ends."""
    name = template_name(tokenizer)
    text = render_text(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    starts = {s: i for i, (s, _e) in enumerate(offsets)}
    ends = {e: i for i, (_s, e) in enumerate(offsets)}
    for marker in sorted(set(_MARKER.findall(text)) - {m["content"] for m in messages}):
        alone = tokenizer.encode(marker, add_special_tokens=False)
        unk = tokenizer.unk_token_id
        if unk is not None and unk in alone and tokenizer.unk_token != marker:
            raise TemplateError(f"{name} uses {marker} but the vocabulary has no such token (it encodes to the "
                                f"unknown token); use the model's own tokenizer, add the token and resize the "
                                f"embeddings, or {FIX}.")
        at = text.find(marker)
        while at >= 0:
            first, last = starts.get(at), ends.get(at + len(marker))
            if first is None or last is None or list(ids[first:last + 1]) != list(alone):
                raise TemplateError(f"{name} uses {marker}, which tokenizes differently inside a conversation than "
                                    f"alone ({len(alone)} pieces), so its role marks would be wrong; use the model's "
                                    f"own tokenizer, add {marker} as a token and resize the embeddings, or {FIX}.")
            at = text.find(marker, at + len(marker))


def _check_prompts(tokenizer: PreTrainedTokenizerBase, messages: list[dict]) -> None:
    """For each reply: the tokens before it in its training row are exactly the inference prompt's tokens."""
    name = template_name(tokenizer)
    for k, m in enumerate(messages):
        if m["role"] != "assistant" or k == 0:
            continue
        row = encode_dialogues([messages[: k + 1]], tokenizer)[0]
        first = next((i for i, (r, t) in enumerate(zip(row["roles"], row["last_turn"], strict=True))
                      if r == ASSISTANT and t), None)
        prompt = render_ids(tokenizer, messages[:k], gen=True)
        if first is None or row["input_ids"][:first] != prompt:
            tail = render_text(tokenizer, messages[:k], gen=True)[-12:]
            raise TemplateError(f"{name}: the generation prompt (ending {tail!r}) tokenizes differently alone than "
                                f"before the reply it opens (turn {k + 1}), so training would not see what the model "
                                f"sees at inference; use the model's own tokenizer or {FIX}.")

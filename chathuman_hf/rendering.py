"""Chat-template rendering with character spans, for any template: where each message's content and each assistant
turn's closing text (``</s>``, ``<|im_end|>``, ``<end_of_turn>``, ``[|endofturn|]``, ``<|eot_id|>``) are.

The template is rendered once per role sequence with sentinel contents (a skeleton) and with growing prefixes of it:
a template is usable when every prefix render is the start of the whole render (prefix-consistent) and the generation
prompt is the start of the assistant turn that follows. The text an assistant turn closes with is what its prefix
render adds after the content (trailing whitespace excluded). Real conversations are then the skeleton's frames with
the contents inserted; one real render per conversation checks that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

_SENTINEL = re.compile("\ue000(\\d+)\ue001")
FIX = "use --chat_template chathuman (our <usr>/<sys> template) or a template file (--chat_template PATH.jinja)"


class TemplateError(ValueError):
    """A chat template the recipe cannot train with; the message is one line naming the template and the fix."""


TEMPLATE_FILE_ATTR = "chat_template_file"  # set by chat_templates.apply_template_choice for --chat_template FILE


def template_name(tokenizer: PreTrainedTokenizerBase) -> str:
    """How error messages name the tokenizer's chat template (the ``--chat_template`` file when one was read)."""
    path = getattr(tokenizer, TEMPLATE_FILE_ATTR, None)
    if path:
        return f"--chat_template {path}"
    source = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return f"the chat template of {source}"


def _sentinel(i: int) -> str:
    return f"\ue000{i}\ue001"


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict], *, gen: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)


@dataclass(frozen=True)
class Layout:
    """The template's text around the contents for one role sequence.

    ``frames[i]`` precedes message ``i``'s content (``frames[-1]`` ends the text); ``closing[i]`` is how many leading
    characters of ``frames[i]`` close assistant turn ``i - 1`` (0 when message ``i - 1`` is not an assistant turn).
    ``strip[i]``: the template trims message ``i``'s content.
    """

    roles: tuple[str, ...]
    frames: tuple[str, ...]
    closing: tuple[int, ...]
    strip: tuple[bool, ...]


def _skeleton(tokenizer: PreTrainedTokenizerBase, roles: tuple[str, ...], **kwargs: Any) -> str:
    name = template_name(tokenizer)
    msgs = [{"role": r, "content": _sentinel(i)} for i, r in enumerate(roles)]
    try:
        text = _render(tokenizer, msgs, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the template's own exception, reported in one line
        raise TemplateError(f"{name} cannot render roles {list(roles)} ({exc}); {FIX}.") from None
    return text


def trims_contents(tokenizer: PreTrainedTokenizerBase, role: str) -> bool:
    """True when the template inserts ``role`` contents stripped of edge whitespace (e.g. ``| trim``)."""
    roles = ("user",) if role == "user" else ("system", "user") if role == "system" else ("user", "assistant")
    msgs = [{"role": r, "content": f" \ue000{i}\ue001 "} for i, r in enumerate(roles)]
    try:
        text = _render(tokenizer, msgs)
    except Exception:  # noqa: BLE001 - build_layout reports the template's error
        return False
    probe = f" \ue000{len(roles) - 1}\ue001 "
    return probe not in text


def build_layout(tokenizer: PreTrainedTokenizerBase, roles: tuple[str, ...]) -> Layout:
    """Frames, closing lengths and trimming for ``roles``; ``TemplateError`` (one line) when the template is
    unusable.
    """
    name = template_name(tokenizer)
    full = _skeleton(tokenizer, roles)
    pieces = _SENTINEL.split(full)
    frames, order = pieces[0::2], [int(x) for x in pieces[1::2]]
    if order != list(range(len(roles))):
        missing = next((i for i in range(len(roles)) if i not in order), None)
        if missing is not None and roles[missing] == "assistant":
            raise TemplateError(f"{name} has no assistant role: it does not render an assistant message's content; "
                                f"{FIX}.")
        raise TemplateError(f"{name} renders message contents {order} for roles {list(roles)}, expected each once and "
                            f"in order; {FIX}.")
    closing = [0] * (len(roles) + 1)
    for k, role in enumerate(roles):
        prefix = _skeleton(tokenizer, roles[: k + 1])
        if not full.startswith(prefix):
            raise TemplateError(f"{name} is not prefix-consistent: rendering turns 1-{k + 1} does not give the start "
                                f"of the whole conversation (first diverging turn: {k + 1}, {role}), so earlier turns "
                                f"are rewritten; {FIX}.")
        if role != "assistant":
            continue
        if k > 0:
            prompt = _skeleton(tokenizer, roles[:k], gen=True)
            if not prefix.startswith(prompt):
                raise TemplateError(f"{name}: the generation prompt after turn {k} is not how assistant turn {k + 1} "
                                    f"starts, so what the model sees at inference differs from training; {FIX}.")
        tail = prefix[prefix.index(_sentinel(k)) + len(_sentinel(k)):]
        closing[k + 1] = len(tail.rstrip())
        if closing[k + 1] == 0:
            raise TemplateError(f"{name} closes assistant turn {k + 1} with no end-of-turn text, so generation could "
                                f"not stop; {FIX}.")
    strip = tuple(trims_contents(tokenizer, r) for r in roles)
    return Layout(tuple(roles), tuple(frames), tuple(closing), strip)


_LAYOUTS: dict[tuple, Layout] = {}


def layout_for(tokenizer: PreTrainedTokenizerBase, roles: tuple[str, ...]) -> Layout:
    """``build_layout`` cached per template, special tokens and role sequence."""
    key = (tokenizer.chat_template, str(tokenizer.special_tokens_map), roles)
    layout = _LAYOUTS.get(key)
    if layout is None:
        if len(_LAYOUTS) > 10_000:
            _LAYOUTS.clear()
        layout = _LAYOUTS[key] = build_layout(tokenizer, roles)
    return layout


def inserted(layout: Layout, messages: list[dict]) -> list[str]:
    """The contents as the template inserts them (stripped where it trims)."""
    return [m["content"].strip() if s else m["content"] for m, s in zip(messages, layout.strip, strict=True)]


def assemble(layout: Layout, contents: list[str]) -> tuple[str, list[tuple[int, int, int]]]:
    """The rendered text and, per message, (content start, content end, end including the closing text)."""
    parts: list[str] = []
    spans: list[tuple[int, int, int]] = []
    cursor = 0
    for i, content in enumerate(contents):
        cursor += len(layout.frames[i])
        spans.append((cursor, cursor + len(content), cursor + len(content) + layout.closing[i + 1]))
        cursor += len(content)
        parts += [layout.frames[i], content]
    parts.append(layout.frames[-1])
    return "".join(parts), spans


def render_batch(
    batch_messages: list[list[dict]], tokenizer: PreTrainedTokenizerBase
) -> list[tuple[str, list[tuple[int, int, int]]]]:
    """Render conversations; return each text and its messages' (start, end, end with closing) character spans."""
    out = []
    for messages in batch_messages:
        layout = layout_for(tokenizer, tuple(m["role"] for m in messages))
        out.append(assemble(layout, inserted(layout, messages)))
    real = tokenizer.apply_chat_template(list(batch_messages), tokenize=False) if batch_messages else []
    for i, (text, _) in enumerate(out):
        if real[i] != text:
            raise TemplateError(f"{template_name(tokenizer)} changes the contents of conversation {i} of this batch "
                                f"(it must insert each message's content verbatim or trimmed); {FIX}.")
    return out


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

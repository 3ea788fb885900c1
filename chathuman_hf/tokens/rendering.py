"""Chat-template rendering with character spans, for any template: where each message's content, the text the model
generates before an assistant reply (an empty ``<think>`` block) and each assistant turn's closing text (``</s>``,
``<|im_end|>``, ``<end_of_turn>``, ``[|endofturn|]``, ``<|eot_id|>``, ``<|end|>``) are.

The template is rendered once per role sequence with sentinel contents (a skeleton). Assistant turn ``k`` is
*in inference form* in a render when the render starts with ``apply_chat_template(messages[:k],
add_generation_prompt=True)`` followed by what the template renders for the reply when it is the newest message (up to
and including its end-of-turn text). Templates that rewrite history (Qwen3: earlier replies lose their think
blocks) render only the newest turn in inference form; the others are *rewritten* (``Layout.rewritten``) and
``features`` gives each of them its own row. The end-of-turn text is what follows the reply both when it is the last
message and when a user turn follows (Phi-4-mini's trailing eos is end-of-conversation text, not part of it).
Real conversations are the skeleton's frames with the contents inserted; one real render per conversation checks that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from chathuman_hf.tokens.template_inputs import THINK_ROLE, pinned_template, reasoning_of, render_text, shape

_SENTINEL = re.compile("\ue000(\\d+)\ue001")
_ANY_SENTINEL = re.compile("\ue000(\\d+)\ue001|\ue003(\\d+)\ue001")  # a content or a reasoning sentinel
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


def _reasoning_sentinel(i: int) -> str:
    return f"\ue003{i}\ue001"


@dataclass(frozen=True)
class Layout:
    """The template's text around the contents for one role sequence.

    ``frames[i]`` precedes message ``i``'s content (``frames[-1]`` ends the text); ``closing[i]`` is how many leading
    characters of ``frames[i]`` close assistant turn ``i - 1`` (0 when message ``i - 1`` is not an assistant turn);
    ``opened[i]`` how many trailing characters of ``frames[i]`` the model generates after the generation prompt
    (Qwen3's ``<think>\\n\\n</think>\\n\\n``; 0 for most templates). ``strip[i]``: the template trims message
    ``i``'s content. ``rewritten[i]``: assistant turn ``i`` is not in inference form here (history rewritten).
    """

    roles: tuple[str, ...]
    frames: tuple[str, ...]
    closing: tuple[int, ...]
    strip: tuple[bool, ...]
    opened: tuple[int, ...] = ()
    rewritten: tuple[bool, ...] = ()
    reasoning_at: tuple[int, ...] = ()  # where in frames[i] message i's reasoning is rendered (-1: nowhere)

    @property
    def rewrites(self) -> bool:
        """True when some assistant turn of this role sequence is not rendered as at inference."""
        return any(self.rewritten)


def _skeleton(tokenizer: PreTrainedTokenizerBase, roles: tuple[str, ...], **kwargs: Any) -> str:
    name = template_name(tokenizer)
    msgs = [{"role": "assistant", "content": _sentinel(i), "reasoning_content": _reasoning_sentinel(i)}
            if r == THINK_ROLE else {"role": r, "content": _sentinel(i)} for i, r in enumerate(roles)]
    try:
        text = render_text(tokenizer, msgs, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the template's own exception, reported in one line
        reason = " ".join(str(exc).split())  # one line, whatever the template raised
        raise TemplateError(f"{name} cannot render roles {list(roles)} ({reason}); {FIX}.") from None
    return text


def trims_contents(tokenizer: PreTrainedTokenizerBase, role: str) -> bool:
    """True when the template inserts ``role`` contents stripped of edge whitespace (e.g. ``| trim``)."""
    roles = ("user",) if role == "user" else ("system", "user") if role == "system" else ("user", "assistant")
    if role == THINK_ROLE:
        return False  # the content of a message with reasoning is inserted stripped
    msgs = [{"role": r, "content": f" \ue000{i}\ue001 "} for i, r in enumerate(roles)]
    try:
        text = render_text(tokenizer, msgs)
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
    frames, order, reasoning_at, cursor, acc = [], [], [-1] * len(roles), 0, ""
    for match in _ANY_SENTINEL.finditer(full):
        acc += full[cursor:match.start()]
        cursor = match.end()
        if match.group(1) is not None:
            frames.append(acc)
            order.append(int(match.group(1)))
            acc = ""
        elif int(match.group(2)) == len(frames):  # reasoning rendered before its own message's content
            reasoning_at[len(frames)] = len(acc)
        else:
            raise TemplateError(f"{name} renders the reasoning of message {match.group(2)} away from its reply; "
                                f"{FIX}.")
    frames.append(acc + full[cursor:])
    if order != list(range(len(roles))):
        missing = next((i for i in range(len(roles)) if i not in order), None)
        if missing is not None and roles[missing].startswith("assistant"):
            raise TemplateError(f"{name} has no assistant role: it does not render an assistant message's content; "
                                f"{FIX}.")
        raise TemplateError(f"{name} renders message contents {order} for roles {list(roles)}, expected each once and "
                            f"in order; {FIX}.")
    n = len(roles)
    closing, opened, rewritten = [0] * (n + 1), [0] * n, [False] * n
    for k, role in enumerate(roles):
        if not role.startswith("assistant"):
            continue
        single = full if k == n - 1 else _skeleton(tokenizer, roles[: k + 1])
        at = single.find(_sentinel(k))
        prompt = _skeleton(tokenizer, roles[:k], gen=True) if k > 0 else ""
        if at < 0 or not single.startswith(prompt):
            raise TemplateError(_prompt_mismatch(name, k, prompt, single))
        opened[k] = at - len(prompt) - (len(_reasoning_sentinel(k)) if _reasoning_sentinel(k) in single else 0)
        opened[k] = opened[k] if k > 0 else 0
        tail = single[at + len(_sentinel(k)):]
        try:
            following = _skeleton(tokenizer, (*roles[: k + 1], "user"))
            after = following[following.index(_sentinel(k)) + len(_sentinel(k)):]
        except (TemplateError, ValueError):
            after = tail
        closing[k + 1] = _end_of_turn_length(tokenizer, tail, after)
        if closing[k + 1] == 0:
            raise TemplateError(f"{name} closes assistant turn {k + 1} with no end-of-turn text, so generation could "
                                f"not stop; {FIX}.")
        rewritten[k] = not full.startswith(single[: at + len(_sentinel(k)) + closing[k + 1]])
        if rewritten[k]:  # its own row trains it; here it is history (its closing kept where the frame has it)
            opened[k] = 0
            if not frames[k + 1].startswith(tail[: closing[k + 1]]):
                closing[k + 1] = 0
    strip = tuple(trims_contents(tokenizer, r) for r in roles)
    return Layout(tuple(roles), tuple(frames), tuple(closing), strip, tuple(opened), tuple(rewritten),
                  tuple(reasoning_at))


def _prompt_mismatch(name: str, k: int, prompt: str, single: str) -> str:
    """The refusal for a generation prompt that is not how the reply it opens is rendered (one line)."""
    same = next((i for i, (a, b) in enumerate(zip(prompt, single, strict=False)) if a != b), min(len(prompt),
                                                                                                 len(single)))
    extra = _SENTINEL.sub("…", prompt[same:])
    if "…" not in extra and re.search(r"<(think|thought|reasoning)>", extra):
        return (f"{name} is a reasoning-only template: its generation prompt opens a reasoning block ({extra!r}) "
                f"that it never renders in a reply, so no reply can be trained as the model generates it; {FIX}.")
    return (f"{name}: the generation prompt after turn {k} is not how assistant turn {k + 1} starts (it adds "
            f"{extra!r}), so what the model sees at inference differs from training; {FIX}.")


def _end_of_turn_length(tokenizer: PreTrainedTokenizerBase, last: str, followed: str) -> int:
    """Characters of ``last`` (the text after a reply that ends the conversation) that close the turn: the whole
    tokens it shares with ``followed`` (the text after the same reply when a user turn follows), trailing whitespace
    excluded. Phi-4-mini: ``<|end|><|endoftext|>`` / ``<|end|><|user|>…`` → ``<|end|>``."""
    common = 0
    for a, b in zip(last, followed, strict=False):
        if a != b:
            break
        common += 1
    if common < len(last):
        offsets = tokenizer(last, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        common = max((e for _s, e in offsets if e <= common), default=0)
    return len(last[:common].rstrip())


_LAYOUTS: dict[tuple, Layout] = {}


def layout_for(tokenizer: PreTrainedTokenizerBase, roles: tuple[str, ...]) -> Layout:
    """``build_layout`` cached per template, special tokens and role sequence."""
    key = (pinned_template(tokenizer), str(tokenizer.special_tokens_map), roles)
    layout = _LAYOUTS.get(key)
    if layout is None:
        if len(_LAYOUTS) > 10_000:
            _LAYOUTS.clear()
        layout = _LAYOUTS[key] = build_layout(tokenizer, roles)
    return layout


def inserted(layout: Layout, messages: list[dict]) -> list[str]:
    """The contents as the template inserts them (stripped where it trims; without reasoning, stripped)."""
    return [reasoning_of(m, True)[1] if r == THINK_ROLE else m["content"].strip() if s else m["content"]
            for m, s, r in zip(messages, layout.strip, layout.roles, strict=True)]


def assemble(
    layout: Layout, contents: list[str], reasonings: list[str] | None = None
) -> tuple[str, list[tuple[int, int, int, int]]]:
    """The rendered text and, per message, (content start, content end, end including the closing text, start of
    what the model generates before the content, reasoning included)."""
    parts: list[str] = []
    spans: list[tuple[int, int, int, int]] = []
    cursor = 0
    opened = layout.opened or (0,) * len(contents)
    for i, content in enumerate(contents):
        frame, extra = layout.frames[i], 0
        at = layout.reasoning_at[i] if layout.reasoning_at and reasonings else -1
        if at >= 0:
            frame, extra = frame[:at] + reasonings[i] + frame[at:], len(reasonings[i])
        cursor += len(frame)
        spans.append((cursor, cursor + len(content), cursor + len(content) + layout.closing[i + 1],
                      cursor - opened[i] - (extra if opened[i] else 0)))
        cursor += len(content)
        parts += [frame, content]
    parts.append(layout.frames[-1])
    return "".join(parts), spans


def render_batch(
    batch_messages: list[list[dict]], tokenizer: PreTrainedTokenizerBase
) -> list[tuple[str, list[tuple[int, int, int, int]]]]:
    """Render conversations; return each text and its messages' (start, end, end with closing, start of what the
    model generates) character spans."""
    out = []
    for messages in batch_messages:
        layout = layout_for(tokenizer, shape(messages, tokenizer))
        reasonings = [reasoning_of(m, True)[0] if r == THINK_ROLE else "" for m, r in zip(messages, layout.roles,
                                                                                          strict=True)]
        out.append(assemble(layout, inserted(layout, messages), reasonings if THINK_ROLE in layout.roles else None))
    real = render_text(tokenizer, list(batch_messages)) if batch_messages else []
    for i, (text, _) in enumerate(out):
        if real[i] != text:
            raise TemplateError(f"{template_name(tokenizer)} changes the contents of conversation {i} of this batch "
                                f"(it must insert each message's content verbatim or trimmed); {FIX}.")
    return out

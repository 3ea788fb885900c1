"""The one home of the label rule: role codes, label modes and which tokens are targets (a leaf module).

Which tokens carry loss (``✓``) for ``<usr>밥 먹었어<sys>응 먹었어</s><usr>뭐 먹었어<sys>김밥</s>``::

    token      </s> <usr> 밥 먹었어 <sys> 응 먹었어 </s> <usr> 뭐 먹었어 <sys> 김밥 </s>
    input        ·    ✓    ✓   ✓     ✓    ✓   ✓     ✓    ✓    ✓   ✓     ✓    ✓    ✓
    -100         ·    ·    ·   ·     ·    ·   ·     ·    ·    ·   ·     ·    ✓    ✓
    -100+sys     ·    ·    ·   ·     ·    ✓   ✓     ✓    ·    ·   ·     ·    ✓    ✓
    shift        same targets as input, stored one position earlier (label[t] = token[t+1])

Per token, ``roles`` holds a role code (``ASSISTANT`` for an assistant turn's content and the text the template closes
the turn with, e.g. ``</s>``/``<|im_end|>``; ``FRAME`` for headers and other template text) and ``last_turn`` marks
the last assistant turn. ``HISTORY`` marks text a row carries only as context for its newest exchange: with a
template that rewrites earlier turns (Qwen3's think blocks) every assistant turn gets its own row, rendered as at
inference, and what came before that turn's exchange trains in no mode (it trained in the earlier row, or is a reply in
its rewritten history form). ``TOOL`` marks a tool result (the ``tool`` message and the template text around it): it
is context the model reads, never text it writes, so it trains in no mode; an assistant turn that calls a tool is
``ASSISTANT`` like any reply (``tokens/tool_encoding.py``). Every consumer (features, collator, evaluation, compare,
inspect_labels) asks this module.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

FRAME, USER, ASSISTANT, SYSTEM, HISTORY, TOOL = 0, 1, 2, 3, 4, 5
ROLE_CODES = {"user": USER, "assistant": ASSISTANT, "system": SYSTEM}
CONTEXT_ONLY = (HISTORY, TOOL)  # role codes that train in no mode
IGNORE_INDEX = -100


class LabelMode(str, enum.Enum):
    """Which tokens carry loss: ``input`` (all), ``last_sys`` (``-100``), ``all_sys`` (``-100+sys``), ``shift``."""

    INPUT = "input"
    LAST_SYS = "last_sys"
    ALL_SYS = "all_sys"
    SHIFT = "shift"

    @classmethod
    def parse(cls, value: str | LabelMode) -> LabelMode:
        """A mode from its CLI name or alias (``-100`` = ``last_sys``, ``-100+sys`` = ``all_sys``)."""
        if isinstance(value, LabelMode):
            return value
        key = str(value).strip().lower()
        if key in ALIASES:
            return cls(ALIASES[key])
        try:
            return cls(key)
        except ValueError:
            raise ValueError(
                f"Unknown label mode {value!r}: expected one of input, -100 (last_sys), -100+sys (all_sys), shift"
            ) from None

    @property
    def pre_shifted(self) -> bool:
        """True when labels are stored one position earlier (``label[t] = token[t+1]``; passed as ``shift_labels``)."""
        return self is LabelMode.SHIFT

    @property
    def cli_name(self) -> str:
        """The documented command-line name (``-100``/``-100+sys`` for the assistant modes)."""
        return {LabelMode.LAST_SYS: "-100", LabelMode.ALL_SYS: "-100+sys"}.get(self, self.value)


ALIASES = {"-100": "last_sys", "-100+sys": "all_sys"}
# Every accepted spelling, in documentation order (the CLI's choices).
LABEL_MODE_NAMES = ("input", "-100", "last_sys", "-100+sys", "all_sys", "shift")


def target_mask(roles: Sequence[int], last_turn: Sequence[int], mode: str | LabelMode) -> list[bool]:
    """Per token (unshifted sense): True when the token is a target under ``mode``; the first token never is."""
    mode = LabelMode.parse(mode)
    if mode in (LabelMode.INPUT, LabelMode.SHIFT):
        mask = [r not in CONTEXT_ONLY for r in roles] if HISTORY in roles or TOOL in roles else [True] * len(roles)
    elif mode is LabelMode.ALL_SYS:
        mask = [r == ASSISTANT for r in roles]
    else:
        mask = [r == ASSISTANT and bool(t) for r, t in zip(roles, last_turn, strict=True)]
    if mask:
        mask[0] = False  # nothing predicts a sequence's first token
    return mask


def label_token_count(roles: Sequence[int], last_turn: Sequence[int], mode: str | LabelMode) -> int:
    """How many tokens of one example are targets under ``mode``."""
    return sum(target_mask(roles, last_turn, mode))


def example_labels(
    ids: Sequence[int],
    roles: Sequence[int],
    last_turn: Sequence[int],
    mode: str | LabelMode,
    seq_lengths: Sequence[int] | None = None,
) -> list[int]:
    """Labels for one (possibly packed) row; each packed sequence is labelled as if it stood alone.

    Unshifted modes give ``labels[t] = ids[t]`` at targets (the model shifts); ``shift`` stores the same targets one
    position earlier (``labels[t] = ids[t+1]``, nothing after a sequence's last token).
    """
    mode = LabelMode.parse(mode)
    out: list[int] = []
    start = 0
    for n in seq_lengths if seq_lengths is not None else [len(ids)]:
        sl = slice(start, start + n)
        seq = list(ids[sl])
        mask = target_mask(roles[sl], last_turn[sl], mode)
        labels = [t if m else IGNORE_INDEX for t, m in zip(seq, mask, strict=True)]
        out.extend(labels[1:] + [IGNORE_INDEX] if mode.pre_shifted and labels else labels)
        start += n
    return out

"""The reply a skill gives, and the protocol every skill follows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SkillReply:
    """A skill's answer; ``action="reset"`` asks the session to clear its history."""

    text: str
    skill: str
    action: str | None = None


class Skill(Protocol):
    """A skill answers a message it recognises and returns ``None`` for everything else."""

    name: str
    title: str
    example: str

    def __call__(self, text: str) -> SkillReply | None: ...

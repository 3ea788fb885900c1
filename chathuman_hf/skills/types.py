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
    example: str  # a message that triggers the skill (the page sends it as is); "" when none can be shown
    # optional ``note``: what the skill does, shown beside the example (e.g. the profanity filter has only a note)

    def __call__(self, text: str) -> SkillReply | None: ...

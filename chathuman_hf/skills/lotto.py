"""The lotto skill: six distinct numbers from 1 to 45, sorted."""

from __future__ import annotations

import random
import re

from chathuman_hf.skills.types import SkillReply

NAME = "lotto"
PATTERN = re.compile(r"로또|lotto", re.IGNORECASE)


def draw(rng: random.Random | None = None) -> list[int]:
    """Six distinct numbers in 1–45, ascending."""
    return sorted((rng or random.Random()).sample(range(1, 46), 6))


class LottoSkill:
    """Draws lotto numbers; pass ``seed`` for a reproducible sequence of draws."""

    name = NAME
    title = "로또 번호 추천"
    example = "로또 번호 뽑아줘"

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def __call__(self, text: str) -> SkillReply | None:
        if not PATTERN.search(text):
            return None
        numbers = ", ".join(str(n) for n in draw(self.rng))
        return SkillReply(f"행운의 번호를 뽑았어요: {numbers}. 당첨되면 한턱 내기!", NAME)

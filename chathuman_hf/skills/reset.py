"""The reset skill: ``초기화`` clears the conversation history."""

from __future__ import annotations

import re

from chathuman_hf.skills.types import SkillReply

NAME = "reset"
PATTERN = re.compile(r"^\s*(?:대화\s*)?(?:초기화|리셋|reset)\s*(?:해\s*줘|해\s*주세요|해|하자|할래|좀)?\s*[.!~]*\s*$",
                     re.IGNORECASE)


class ResetSkill:
    """Recognises ``초기화`` (also ``대화 초기화해줘``, ``리셋``) and asks the session to forget the history."""

    name = NAME
    title = "대화 초기화"
    example = "초기화"

    def __call__(self, text: str) -> SkillReply | None:
        if not PATTERN.match(text):
            return None
        return SkillReply("대화를 초기화했어요. 처음부터 다시 이야기해요!", NAME, action="reset")

"""Skills answered before the model: time, lotto, 두벌식 keyboard fix, profanity filter, reset, weather, stock.

Self-contained: imports nothing from chathuman_hf (chat and serving call it).
"""

from chathuman_hf.skills.router import HelpSkill, SkillRouter, SkillsConfig, build_router
from chathuman_hf.skills.types import Skill, SkillReply

__all__ = ["HelpSkill", "Skill", "SkillReply", "SkillRouter", "SkillsConfig", "build_router"]

"""The time skill: current date and time in Korea (KST) with the Korean weekday."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from chathuman_hf.skills.types import SkillReply

NAME = "time"
KST = timezone(timedelta(hours=9), "KST")
WEEKDAYS = "월화수목금토일"
PATTERNS = [
    re.compile(r"몇\s*시(?!\s*간)"),  # 지금 몇 시야, 몇시야?  (not 몇 시간 걸려)
    re.compile(r"(지금|현재)\s*(시간|시각)"),
    re.compile(r"시간\s*(좀\s*)?(알려|말해|가르쳐)"),
    re.compile(r"(시각|시계)\s*(좀\s*)?(알려|보여)"),
    re.compile(r"(오늘|지금)\s*(은\s*|이\s*)?(무슨|몇)\s*(요일|월|일)"),
    re.compile(r"(오늘|지금)\s*(의\s*)?날짜"),
    re.compile(r"며칠\s*이(야|에요|예요|지)"),
]


def now_kst() -> datetime:
    return datetime.now(KST)


def format_kst(moment: datetime) -> str:
    """``2026년 11월 25일 수요일 오후 7시 5분`` for a moment (converted to KST)."""
    local = moment.astimezone(KST)
    half = "오전" if local.hour < 12 else "오후"
    hour12 = local.hour % 12 or 12
    return (
        f"{local.year}년 {local.month}월 {local.day}일 {WEEKDAYS[local.weekday()]}요일 "
        f"{half} {hour12}시 {local.minute}분"
    )


def asks_time(text: str) -> bool:
    return any(p.search(text) for p in PATTERNS)


class TimeSkill:
    """Tells the current KST time; ``clock`` is injectable for tests."""

    name = NAME
    title = "지금 시각 (한국 시간)"
    example = "지금 몇 시야?"

    def __init__(self, clock: Callable[[], datetime] = now_kst) -> None:
        self.clock = clock

    def __call__(self, text: str) -> SkillReply | None:
        if not asks_time(text):
            return None
        return SkillReply(f"지금은 한국 시간으로 {format_kst(self.clock())}이에요.", NAME)

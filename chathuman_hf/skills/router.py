"""The skill router: skills answer before the model, in a fixed order (the profanity filter first)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from chathuman_hf.skills.clock import TimeSkill, now_kst
from chathuman_hf.skills.keyboard import KeyboardSkill
from chathuman_hf.skills.lotto import LottoSkill
from chathuman_hf.skills.profanity import DEFAULT_WORDS, ProfanityFilter
from chathuman_hf.skills.reset import ResetSkill
from chathuman_hf.skills.stock import StockSkill, YahooChartQuotes
from chathuman_hf.skills.types import Skill, SkillReply
from chathuman_hf.skills.weather import OpenMeteoWeather, WeatherSkill

HELP_PATTERN = re.compile(
    r"(뭐|뭘|무엇을?|무슨\s*일을?)\s*(좀\s*)?할\s*수\s*있|할\s*수\s*있는\s*(게|것|거|일)|도움말|사용법|명령어|"
    r"기능\s*(이\s*)?(뭐|알려|목록|소개)|^\s*(help|도움|도와줘)\s*[?!.]*\s*$",
    re.IGNORECASE,
)


@dataclass
class SkillsConfig:
    """Settings of the built-in skills (network services have configurable URLs and timeout, no keys)."""

    weather_geocoding_url: str = field(default="https://geocoding-api.open-meteo.com/v1/search",
                                       metadata={"help": "Open-Meteo geocoding endpoint."})
    weather_forecast_url: str = field(default="https://api.open-meteo.com/v1/forecast",
                                      metadata={"help": "Open-Meteo forecast endpoint."})
    default_weather_place: str = field(default="서울", metadata={"help": "Place used when none is named."})
    stock_base_url: str = field(default="https://query1.finance.yahoo.com",
                                metadata={"help": "Base URL of the Yahoo-style chart quote API."})
    http_timeout: float = field(default=5.0, metadata={"help": "Seconds before a network skill gives up."})
    profanity_words: list[str] | None = field(default=None, metadata={"help": "Banned words (default list if unset)."})
    lotto_seed: int | None = field(default=None, metadata={"help": "Seed for reproducible lotto draws."})
    disabled: list[str] = field(default_factory=list, metadata={"help": "Skill names to switch off."})


class HelpSkill:
    """Lists what the assistant can do (like the web page's welcome card)."""

    name = "help"
    title = "도움말"
    example = "뭐 할 수 있어?"

    def __init__(self, router: SkillRouter) -> None:
        self.router = router

    def __call__(self, text: str) -> SkillReply | None:
        if not HELP_PATTERN.search(text):
            return None
        lines = [f"• {s.title}: {describe(s)}" for s in self.router.skills if s.name != self.name]
        body = "\n".join(lines)
        return SkillReply(f"저는 일상 대화를 가장 좋아해요. 이런 것도 할 수 있어요:\n{body}", self.name)


class SkillRouter:
    """Asks each skill in order; the first that answers wins. ``route`` returns ``None`` for the model's turn."""

    def __init__(self, skills: Iterable[Skill]) -> None:
        self.skills: list[Skill] = list(skills)

    def route(self, text: str) -> SkillReply | None:
        for skill in self.skills:
            reply = skill(text)
            if reply is not None:
                return reply
        return None

    def catalog(self) -> list[dict[str, str]]:
        """Name, Korean title, an example message ("" when none) and a note for each skill (for help cards)."""
        return [{"name": s.name, "title": s.title, "example": s.example, "note": getattr(s, "note", "")}
                for s in self.skills]


def describe(skill: Skill) -> str:
    """The example message and the note, as the help text shows them (e.g. ``dkssud → 안녕``)."""
    return " ".join(part for part in (skill.example, getattr(skill, "note", "")) if part)


def build_router(config: SkillsConfig | None = None, *, clock: Callable[[], datetime] = now_kst) -> SkillRouter:
    """The default router: profanity, reset, help, time, lotto, weather, stock, keyboard (minus ``disabled``)."""
    config = config or SkillsConfig()
    router = SkillRouter([])
    skills: list[Skill] = [
        ProfanityFilter(words=config.profanity_words if config.profanity_words is not None else DEFAULT_WORDS),
        ResetSkill(),
        HelpSkill(router),
        TimeSkill(clock),
        LottoSkill(config.lotto_seed),
        WeatherSkill(OpenMeteoWeather(config.weather_geocoding_url, config.weather_forecast_url, config.http_timeout),
                     default_place=config.default_weather_place),
        StockSkill(YahooChartQuotes(config.stock_base_url, config.http_timeout)),
        KeyboardSkill(),
    ]
    unknown = set(config.disabled) - {s.name for s in skills}
    if unknown:
        raise ValueError(f"Unknown skill names in disabled: {sorted(unknown)}; known: {[s.name for s in skills]}")
    router.skills = [s for s in skills if s.name not in config.disabled]
    return router

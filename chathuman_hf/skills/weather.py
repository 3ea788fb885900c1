"""The weather skill: "<place> 날씨 어때?" answered through a provider (Open-Meteo by default, no key)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from chathuman_hf.skills.http import NotFound, ServiceUnavailable, get_json
from chathuman_hf.skills.types import SkillReply

NAME = "weather"
QUESTION = re.compile(r"^(?P<where>.*?)\s*날씨\s*(?:는|가|좀|정보)?\s*(?:좀\s*)?"
                      r"(?P<ask>어때|어떄|어떠|어떻|어떤지|알려|말해|가르쳐|궁금|확인|\?|$)")
FILLER = {"오늘", "지금", "현재", "요즘", "여기", "거기", "우리", "동네", "혹시", "그럼", "그", "저기"}
WMO_CODES = {0: "맑음", 1: "대체로 맑음", 2: "구름 조금", 3: "흐림", 45: "안개", 48: "안개", 51: "약한 이슬비",
             53: "이슬비", 55: "강한 이슬비", 56: "어는 이슬비", 57: "어는 이슬비", 61: "약한 비", 63: "비",
             65: "강한 비", 66: "어는 비", 67: "어는 비", 71: "약한 눈", 73: "눈", 75: "많은 눈", 77: "싸락눈",
             80: "약한 소나기", 81: "소나기", 82: "강한 소나기", 85: "눈 소나기", 86: "강한 눈 소나기", 95: "뇌우",
             96: "우박 동반 뇌우", 99: "강한 우박 동반 뇌우"}


@dataclass(frozen=True)
class WeatherReport:
    place: str
    temperature: float
    high: float | None = None
    low: float | None = None
    description: str | None = None


class WeatherProvider(Protocol):
    def current(self, place: str, city: str | None = None) -> WeatherReport:
        """Weather now at ``place`` (optionally inside ``city``); raises NotFound / ServiceUnavailable."""
        ...


class OpenMeteoWeather:
    """Open-Meteo geocoding + forecast JSON APIs (free, no key); base URLs and timeout are configurable."""

    def __init__(self, geocoding_url: str = "https://geocoding-api.open-meteo.com/v1/search",
                 forecast_url: str = "https://api.open-meteo.com/v1/forecast", timeout: float = 5.0) -> None:
        self.geocoding_url = geocoding_url
        self.forecast_url = forecast_url
        self.timeout = timeout

    def locate(self, place: str, city: str | None = None) -> dict:
        data = get_json(self.geocoding_url, {"name": place, "count": 10, "language": "ko", "format": "json"},
                        timeout=self.timeout)
        results = (data or {}).get("results") or []
        if not results:
            raise NotFound(place)
        if city:
            for hit in results:
                areas = " ".join(str(hit.get(k) or "") for k in ("admin1", "admin2", "admin3", "admin4", "country"))
                if city in areas or city.rstrip("시도") in areas:
                    return hit
        korean = [hit for hit in results if hit.get("country_code") == "KR"]
        return (korean or results)[0]

    def current(self, place: str, city: str | None = None) -> WeatherReport:
        hit = self.locate(place, city)
        data = get_json(self.forecast_url, {
            "latitude": hit["latitude"], "longitude": hit["longitude"], "current": "temperature_2m,weather_code",
            "daily": "temperature_2m_max,temperature_2m_min", "timezone": "Asia/Seoul", "forecast_days": 1,
        }, timeout=self.timeout)
        try:
            current = data["current"]
            daily = data.get("daily") or {}
            high = (daily.get("temperature_2m_max") or [None])[0]
            low = (daily.get("temperature_2m_min") or [None])[0]
            return WeatherReport(place=str(hit.get("name") or place), temperature=float(current["temperature_2m"]),
                                 high=None if high is None else float(high), low=None if low is None else float(low),
                                 description=WMO_CODES.get(int(current.get("weather_code", -1))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceUnavailable(f"unexpected forecast answer: {exc}") from exc


def parse_place(text: str) -> tuple[str, str | None] | None:
    """``(place, city)`` from a weather question, ``("", None)`` when no place is named, ``None`` if not one."""
    match = QUESTION.search(text.strip())
    if not match:
        return None
    words = [re.sub(r"(의|에|은|는|이|가)$", "", w) for w in re.findall(r"[\w]+", match["where"])]
    words = [w for w in words if w and w not in FILLER and not w.isdigit()]
    if not words:
        return "", None
    return words[-1], (words[-2] if len(words) > 1 else None)


def _deg(value: float) -> str:
    return f"{value:.0f}°C" if float(value).is_integer() else f"{value:.1f}°C"


class WeatherSkill:
    """Answers weather questions; without a place it uses ``default_place``."""

    name = NAME
    title = "날씨 (동네/도시)"
    example = "강남구 날씨 어때?"

    def __init__(self, provider: WeatherProvider | None = None, default_place: str = "서울") -> None:
        self.provider = provider or OpenMeteoWeather()
        self.default_place = default_place

    def __call__(self, text: str) -> SkillReply | None:
        parsed = parse_place(text)
        if parsed is None:
            return None
        place, city = parsed
        place = place or self.default_place
        try:
            report = self.provider.current(place, city)
        except NotFound:
            return SkillReply(f"‘{place}’ 위치를 찾지 못했어요. 동네나 도시 이름으로 다시 물어봐 주세요.", NAME)
        except ServiceUnavailable:
            return SkillReply("지금은 날씨 서비스에 연결할 수 없어요. 잠시 후에 다시 물어봐 주세요.", NAME)
        text = f"{report.place} 날씨: 지금 {_deg(report.temperature)}"
        if report.description:
            text += f", {report.description}"
        if report.high is not None and report.low is not None:
            text += f" · 오늘 최고 {_deg(report.high)} / 최저 {_deg(report.low)}"
        return SkillReply(text, NAME)

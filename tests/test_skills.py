"""Skills: router patterns, time/lotto/keyboard/profanity/reset/help, weather and stock against a local HTTP server."""

from __future__ import annotations

import json
import random
import socket
import threading
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chathuman_hf.skills import SkillsConfig, build_router
from chathuman_hf.skills.clock import TimeSkill, format_kst
from chathuman_hf.skills.hangul import compose
from chathuman_hf.skills.keyboard import convert, looks_mistyped
from chathuman_hf.skills.lotto import LottoSkill, draw
from chathuman_hf.skills.profanity import ProfanityFilter
from chathuman_hf.skills.stock import StockSkill, YahooChartQuotes
from chathuman_hf.skills.weather import OpenMeteoWeather, WeatherSkill, parse_place

# 2026-11-25 10:07 UTC = 19:07 KST, a Wednesday.
FIXED = datetime(2026, 11, 25, 10, 7, tzinfo=timezone.utc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def router():
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: network skills must answer politely
    config = SkillsConfig(weather_geocoding_url=f"{closed}/v1/search", weather_forecast_url=f"{closed}/v1/forecast",
                          stock_base_url=closed, http_timeout=1.0, lotto_seed=7)
    return build_router(config, clock=lambda: FIXED)


@pytest.mark.parametrize(("text", "skill"), [
    ("지금 몇시야?", "time"), ("지금 몇 시야", "time"), ("몇시야?", "time"), ("시간 알려줘", "time"),
    ("현재 시각 좀 알려줘", "time"), ("오늘 무슨 요일이야?", "time"),
    ("로또번호 뽑아줘", "lotto"), ("로또 번호 추천해 줘", "lotto"),
    ("dkssud", "keyboard"), ("dk rkqwkrl gksrmfdl dkscuwu", "keyboard"),
    ("초기화", "reset"), ("대화 초기화해줘", "reset"),
    ("뭐 할 수 있어?", "help"), ("도움말", "help"), ("할 수 있는 게 뭐야", "help"),
    ("역삼동 날씨 어때?", "weather"), ("서울 강남구 날씨 어때", "weather"), ("날씨 알려줘", "weather"),
    ("삼성전자 주가 알려줘", "stock"), ("애플 주가 어때?", "stock"),
    ("이 씨발 진짜", "profanity"), ("tlqkf", "profanity"),
    ("안녕", None), ("오늘 너무 피곤하다", None), ("서울까지 몇 시간 걸려?", None), ("오늘 날씨 좋다", None),
    ("hello how are you", None), ("I love you", None), ("go to school", None), ("초기화 방법이 궁금해", None),
    ("시발점에서 다시 시작하자", None),
])
def test_router_picks_the_skill(router, text, skill):
    reply = router.route(text)
    assert (reply.skill if reply else None) == skill


def test_time_skill_kst_with_korean_weekday():
    assert format_kst(FIXED) == "2026년 11월 25일 수요일 오후 7시 7분"
    assert format_kst(datetime(2026, 11, 29, 15, 30, tzinfo=timezone.utc)) == "2026년 11월 30일 월요일 오전 12시 30분"
    seoul = timezone(timedelta(hours=9))
    assert format_kst(datetime(2026, 1, 1, 12, 0, tzinfo=seoul)) == "2026년 1월 1일 목요일 오후 12시 0분"
    reply = TimeSkill(lambda: FIXED)("지금 몇 시야")
    assert reply.text == "지금은 한국 시간으로 2026년 11월 25일 수요일 오후 7시 7분이에요."


def test_lotto_numbers_distinct_sorted_in_range_and_seedable():
    for seed in range(50):
        numbers = draw(random.Random(seed))
        assert len(numbers) == 6 and len(set(numbers)) == 6
        assert numbers == sorted(numbers) and all(1 <= n <= 45 for n in numbers)
    assert LottoSkill(seed=3)("로또").text == LottoSkill(seed=3)("로또").text
    assert draw(random.Random(1)) != draw(random.Random(2))


@pytest.mark.parametrize(("typed", "hangul"), [
    ("dkssud", "안녕"),
    ("dk rkqwkrl gksrmfdl dkscuwu", "아 갑자기 한글이 안쳐져"),
    ("rhkswjd", "관정"),  # compound vowel ㅘ
    ("dnjs", "원"),  # compound vowel ㅝ
    ("dmlwk", "의자"),  # compound vowel ㅢ
    ("dlfrdj", "읽어"),  # double final ㄺ split before a vowel
    ("qkfqdk", "밟아"),  # double final ㄼ kept, next syllable starts with ㅇ
    ("dksgdk", "않아"),  # ㄶ
    ("rkqt", "값"),  # ㅄ at the end
    ("Rkwl", "까지"),  # shifted key → tense consonant
    ("Tkdrhk", "쌍과"), ("dPrma", "예금"),  # ㅆ, ㅖ
    ("gksrmf 123!", "한글 123!"),  # digits and symbols pass through
])
def test_keyboard_conversion(typed, hangul):
    assert convert(typed) == hangul
    assert looks_mistyped(typed)


@pytest.mark.parametrize("english", ["hello", "hello world", "I love you", "go to school", "ok", "Python is fun",
                                     "thanks a lot", "안녕", "dkssud 안녕", "", "zzz"])
def test_keyboard_leaves_english_and_korean_alone(english):
    assert not looks_mistyped(english)


def test_compose_counts_loose_jamo():
    result = compose("ㅋㅋㅇㅏㄴ")
    assert (result.text, result.loose_jamo, result.syllables) == ("ㅋㅋ안", 2, 1)


@pytest.mark.parametrize(("text", "found"), [
    ("시발", "시발"), ("시 발", "시발"), ("시.발", "시발"),
    ("시ㅋ발", "시발"), ("씨1발", "씨발"), ("씨@발 뭐야", "씨발"),
    ("ㅅ ㅂ", "ㅅㅂ"), ("병 신 같네", "병신"), ("개 새 끼", "개새끼"), ("F.U.C.K", "fuck"), ("ｆｕｃｋ", "fuck"),
    ("시ㅂㅏㄹ", "시발"), ("tlqkf", "시발"),
    ("안녕하세요", None), ("시발점에서 출발", None), ("이 시 발표해", None),
    ("시바견 귀여워", None), ("오늘 날씨 좋다", None),
])
def test_profanity_filter_is_robust(text, found):
    assert ProfanityFilter().find(text) == found


def test_profanity_word_list_is_configurable(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("# our list\n바보\n멍청이  # comment\n", encoding="utf-8")
    flt = ProfanityFilter.from_file(words)
    assert flt.find("바 보 야") == "바보" and flt.find("멍.청.이") == "멍청이" and flt.find("시발") is None
    router = build_router(SkillsConfig(profanity_words=["바보"], disabled=["weather", "stock"]))
    assert router.route("이 바보야").skill == "profanity"
    assert router.route("이 바보야").text == "그런 말은 마음이 조금 아파요. 우리 기분 좋은 이야기 해요!"


def test_help_lists_the_skills(router):
    reply = router.route("뭐 할 수 있어?")
    for title in ("지금 시각", "로또", "날씨", "주가", "영타", "초기화", "욕설"):
        assert title in reply.text


def test_disabling_unknown_skill_is_an_error():
    with pytest.raises(ValueError, match="Unknown skill names"):
        build_router(SkillsConfig(disabled=["horoscope"]))


@pytest.mark.parametrize(("text", "parsed"), [
    ("역삼동 날씨 어때?", ("역삼동", None)), ("서울 강남구 날씨 어때", ("강남구", "서울")),
    ("오늘 날씨 어때?", ("", None)),
    ("부산의 날씨 알려줘", ("부산", None)), ("오늘 날씨 좋다", None), ("안녕", None),
])
def test_weather_place_parsing(text, parsed):
    assert parse_place(text) == parsed


# --- a local stand-in for Open-Meteo and Yahoo's chart API, answering their documented JSON shapes -----------------
GEOCODING = {"results": [
    {"id": 1, "name": "역삼동", "latitude": 37.5, "longitude": 127.03, "country_code": "KR", "country": "대한민국",
     "admin1": "서울특별시", "admin2": "강남구", "timezone": "Asia/Seoul"},
    {"id": 2, "name": "역삼동", "latitude": 37.2, "longitude": 127.2, "country_code": "KR", "country": "대한민국",
     "admin1": "경기도", "admin2": "용인시", "timezone": "Asia/Seoul"},
], "generationtime_ms": 0.5}
FORECASTS = {
    "37.5": {"latitude": 37.5, "longitude": 127.03, "timezone": "Asia/Seoul",
             "current_units": {"temperature_2m": "°C", "weather_code": "wmo code"},
             "current": {"time": "2026-11-25T19:00", "interval": 900, "temperature_2m": 3.4, "weather_code": 3},
             "daily_units": {"temperature_2m_max": "°C", "temperature_2m_min": "°C"},
             "daily": {"time": ["2026-11-25"], "temperature_2m_max": [7.0], "temperature_2m_min": [-1.5]}},
    "37.2": {"current": {"time": "2026-11-25T19:00", "temperature_2m": 1.0, "weather_code": 0},
             "daily": {"time": ["2026-11-25"], "temperature_2m_max": [5.0], "temperature_2m_min": [-3.0]}},
}
CHART = {"chart": {"result": [{"meta": {"currency": "KRW", "symbol": "005930.KS", "exchangeName": "KSC",
                                        "regularMarketPrice": 71500.0, "chartPreviousClose": 70000.0},
                               "timestamp": [1764028800], "indicators": {"quote": [{"close": [71500.0]}]}}],
                   "error": None}}
NO_CHART = {"chart": {"result": None, "error": {"code": "Not Found", "description": "No data found"}}}


class FakeApis(BaseHTTPRequestHandler):
    calls: list[str] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802
        url = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        FakeApis.calls.append(self.path)
        status, body = 404, {"error": True}
        if url.path == "/v1/search":
            status, body = 200, (GEOCODING if query.get("name") == "역삼동" else {"generationtime_ms": 0.1})
        elif url.path == "/v1/forecast":
            status, body = 200, FORECASTS[query["latitude"]]
        elif url.path == "/v8/finance/chart/005930.KS":
            status, body = 200, CHART
        elif url.path == "/broken/v8/finance/chart/005930.KS":
            status, body = 200, "not json"
        elif url.path.startswith("/v8/finance/chart/"):
            status, body = 404, NO_CHART
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def fake_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApis)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_weather_against_local_open_meteo(fake_api):
    skill = WeatherSkill(OpenMeteoWeather(f"{fake_api}/v1/search", f"{fake_api}/v1/forecast", timeout=2.0))
    assert skill("역삼동 날씨 어때?").text == "역삼동 날씨: 지금 3.4°C, 흐림 · 오늘 최고 7°C / 최저 -1.5°C"
    assert skill("용인 역삼동 날씨 어때?").text == "역삼동 날씨: 지금 1°C, 맑음 · 오늘 최고 5°C / 최저 -3°C"
    assert skill("없는동네 날씨 어때?").text.startswith("‘없는동네’ 위치를 찾지 못했어요")
    assert any("language=ko" in c and "name=%EC%97%AD%EC%82%BC%EB%8F%99" in c for c in FakeApis.calls)


def test_stock_against_local_chart_api(fake_api):
    skill = StockSkill(YahooChartQuotes(fake_api, timeout=2.0))
    assert skill("삼성전자 주가 알려줘").text == "삼성전자(005930.KS) 현재가 71,500원, 전일 대비 ▲ 1,500원 (+2.14%)"
    assert skill("005930 주가 어때").text.startswith("005930(005930.KS) 현재가 71,500원")
    assert skill("AAPL 주가 알려줘").text == "‘AAPL’(AAPL) 시세를 찾지 못했어요."
    assert skill("무명회사 주가 알려줘").text.startswith("‘무명회사’는 제가 아직 모르는 회사예요")
    broken = StockSkill(YahooChartQuotes(f"{fake_api}/broken", timeout=2.0))
    assert broken("삼성전자 주가").text.startswith("지금은 주식 시세 서비스에 연결할 수 없어요")


def test_network_skills_answer_politely_when_offline(router):
    assert router.route("역삼동 날씨 어때?").text == (
        "지금은 날씨 서비스에 연결할 수 없어요. 잠시 후에 다시 물어봐 주세요."
    )
    assert router.route("삼성전자 주가 알려줘").text == (
        "지금은 주식 시세 서비스에 연결할 수 없어요. 잠시 후에 다시 물어봐 주세요."
    )

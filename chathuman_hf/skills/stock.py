"""The stock skill: "<company> 주가 알려줘" answered through a quote provider (Yahoo Finance chart JSON, no key)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from chathuman_hf.skills.http import NotFound, ServiceUnavailable, get_json
from chathuman_hf.skills.types import SkillReply

NAME = "stock"
QUESTION = re.compile(r"(?P<company>[\w&.\-]+)\s*(?:의\s*)?(?:주가|주식\s*가격|시세)")
# A few well-known companies by their Korean names; extend with StockSkill(symbols={...}).
DEFAULT_SYMBOLS = {
    "삼성전자": "005930.KS", "삼전": "005930.KS", "sk하이닉스": "000660.KS", "하이닉스": "000660.KS",
    "lg에너지솔루션": "373220.KS", "삼성바이오로직스": "207940.KS", "현대차": "005380.KS", "현대자동차": "005380.KS",
    "기아": "000270.KS", "셀트리온": "068270.KS", "네이버": "035420.KS", "naver": "035420.KS", "카카오": "035720.KS",
    "lg전자": "066570.KS", "포스코홀딩스": "005490.KS", "삼성sdi": "006400.KS", "kb금융": "105560.KS",
    "애플": "AAPL", "테슬라": "TSLA", "엔비디아": "NVDA", "마이크로소프트": "MSFT", "구글": "GOOGL", "알파벳": "GOOGL",
    "아마존": "AMZN", "메타": "META", "넷플릭스": "NFLX",
}


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: float
    previous_close: float | None = None
    currency: str | None = None

    @property
    def change(self) -> float | None:
        return None if self.previous_close is None else self.price - self.previous_close


class QuoteProvider(Protocol):
    def quote(self, symbol: str) -> Quote:
        """The latest quote for ``symbol``; raises NotFound / ServiceUnavailable."""
        ...


class YahooChartQuotes:
    """Yahoo Finance's public chart JSON (``/v8/finance/chart/<symbol>``); base URL and timeout configurable."""

    def __init__(self, base_url: str = "https://query1.finance.yahoo.com", timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def quote(self, symbol: str) -> Quote:
        data = get_json(f"{self.base_url}/v8/finance/chart/{symbol}", {"range": "1d", "interval": "1d"},
                        timeout=self.timeout)
        chart = (data or {}).get("chart") or {}
        results = chart.get("result") or []
        if not results:
            raise NotFound(symbol)
        meta = results[0].get("meta") or {}
        try:
            previous = meta.get("chartPreviousClose", meta.get("previousClose"))
            return Quote(symbol=str(meta.get("symbol") or symbol), price=float(meta["regularMarketPrice"]),
                         previous_close=None if previous is None else float(previous), currency=meta.get("currency"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceUnavailable(f"unexpected quote answer for {symbol}: {exc}") from exc


def parse_company(text: str) -> str | None:
    match = QUESTION.search(text.strip())
    return match["company"] if match else None


def _money(value: float, currency: str | None) -> str:
    if currency == "KRW":
        return f"{value:,.0f}원"
    return f"{value:,.2f} {currency or ''}".rstrip()


class StockSkill:
    """Answers stock price questions for known company names and raw tickers (``AAPL``, ``005930``)."""

    name = NAME
    title = "주가 (회사 이름)"
    example = "삼성전자 주가 알려줘"

    def __init__(self, provider: QuoteProvider | None = None, symbols: dict[str, str] | None = None) -> None:
        self.provider = provider or YahooChartQuotes()
        self.symbols = {k.lower(): v for k, v in (symbols if symbols is not None else DEFAULT_SYMBOLS).items()}

    def symbol_for(self, company: str) -> str | None:
        if company.lower() in self.symbols:
            return self.symbols[company.lower()]
        if re.fullmatch(r"\d{6}", company):
            return f"{company}.KS"
        if re.fullmatch(r"[A-Z][A-Z.\-]{0,6}", company):
            return company
        return None

    def __call__(self, text: str) -> SkillReply | None:
        company = parse_company(text)
        if company is None:
            return None
        symbol = self.symbol_for(company)
        if symbol is None:
            return SkillReply(
                f"‘{company}’는 제가 아직 모르는 회사예요. 종목 코드(예: 005930, AAPL)로 물어봐 주세요.", NAME
            )
        try:
            quote = self.provider.quote(symbol)
        except NotFound:
            return SkillReply(f"‘{company}’({symbol}) 시세를 찾지 못했어요.", NAME)
        except ServiceUnavailable:
            return SkillReply("지금은 주식 시세 서비스에 연결할 수 없어요. 잠시 후에 다시 물어봐 주세요.", NAME)
        text = f"{company}({quote.symbol}) 현재가 {_money(quote.price, quote.currency)}"
        change = quote.change
        if change is not None and quote.previous_close:
            sign = "▲" if change > 0 else ("▼" if change < 0 else "-")
            text += f", 전일 대비 {sign} {_money(abs(change), quote.currency)} ({change / quote.previous_close:+.2%})"
        return SkillReply(text, NAME)

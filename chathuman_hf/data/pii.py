"""Korean personal data in free text: detection and replacement (pure ``str -> str`` functions).

Types (keys of :data:`PLACEHOLDERS`): 주민등록번호/외국인등록번호 (``YYMMDD-GNNNNNN``; a bare 13-digit run only
with a possible date, the hyphenated layout with any date), mobile/landline/070/+82 phone numbers (hyphens, dots,
spaces or none), e-mail addresses, bank account numbers (hyphenated 10-14 digit layouts such as 110-123-456789,
3333-01-1234567, or a bare 10-14 digit run),
Luhn-valid 15-16 digit card numbers, passport numbers (M12345678, M123A4567), IPv4 addresses and URLs carrying
credentials or a query string. Dates, times, prices, counts, measures, bus numbers, scores, years and version numbers
do not match (synthetic set: ``pii_synthetic.py`` and tests/data/pii_cases.py). One combined regex, run only on
texts that contain a digit, ``@`` or a URL start, over the text as cleaning will leave it (:func:`scan_view`).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable

PLACEHOLDERS = {
    "resident_id": "[주민등록번호]",
    "foreigner_id": "[외국인등록번호]",
    "phone": "[전화번호]",
    "email": "[이메일]",
    "bank_account": "[계좌번호]",
    "card": "[카드번호]",
    "passport": "[여권번호]",
    "ipv4": "[IP주소]",
    "url": "[링크]",
}
REPLACEMENTS = ("placeholder", "fake")
# the cleaning rules' symbol stripping keeps these (clean.strip_symbols)
PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()), re.IGNORECASE)
_EMAIL = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# ... and e-mail addresses whole (a fake keeps its "@"), placeholders or not
KEPT_WHOLE_RE = re.compile(f"{PLACEHOLDER_RE.pattern}|{_EMAIL}", re.IGNORECASE)
# full-width ASCII forms (NFKC's width folding, without its other changes: it would turn compatibility jamo such as
# ㅋ into conjoining jamo) and the hyphen look-alikes people type in numbers, read as ASCII before scanning
FULL_WIDTH = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "}
WIDTH_TABLE = str.maketrans(FULL_WIDTH)
FORMS_TABLE = str.maketrans(FULL_WIDTH | dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63", "-"))
ODD_FORMS = re.compile("[\uff01-\uff5e\u3000\u2010-\u2015\u2212\ufe63]")

_S = r"(?<![0-9])(?<![0-9][-.])"  # not inside a longer number
_E = r"(?![0-9]|[-.][0-9])"
_AREA = r"(?:2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70|1[016789])"  # Seoul, provinces, 070 and mobile prefixes
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# "3000000000원" is money, not an account
_UNIT = r"(?!\s?(?:원|달러|명|개|번|회|km|kg|m(?![A-Za-z])|g(?![A-Za-z])|%))"
_URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]"
PATTERN = re.compile(
    rf"""
    (?P<url>(?:https?|ftp)://{_URL_CHARS}+|(?<![A-Za-z0-9.])www\.{_URL_CHARS}+)
  | (?P<email>{_EMAIL})
  | (?P<resident>{_S}(?:[0-9]{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])\ ?-?\ ?|[0-9]{{6}}\ ?-\ ?)
                 [1-8][0-9]{{6}}{_E})
  | (?P<card>{_S}(?:[1-9][0-9]{{3}}(?:[-\ ]?[0-9]{{4}}){{3}}|3[47][0-9]{{2}}[-\ ]?[0-9]{{6}}[-\ ]?[0-9]{{5}}){_E})
  | (?P<phone>{_S}(?:\+82[-.\ ]?(?:\(0\)\ ?)?{_AREA}|\(0{_AREA}\)|0{_AREA})
             [-.)\ ]?\ ?[0-9]{{3,4}}[-.\ ]?[0-9]{{4}}{_E})
  | (?P<bank_account>{_S}(?:[0-9]{{2,6}}(?:-[0-9]{{1,7}}){{1,4}}|[1-9][0-9]{{9,13}}){_E}{_UNIT})
  | (?P<passport>(?<![A-Za-z0-9])[MSRODGmsrodg](?:[0-9]{{8}}|[0-9]{{3}}[A-Za-z][0-9]{{4}})(?![A-Za-z0-9]))
  | (?P<ipv4>(?<![0-9.vV]){_OCTET}(?:\.{_OCTET}){{3}}(?![0-9]|\.[0-9]))
    """,
    re.VERBOSE,
)
VALUE_CHAR = re.compile(r"[0-9A-Za-z@.\-+()/:?=&%_~]")
MAYBE = re.compile(r"[0-9@]|://|www\.")  # texts without any of these cannot hold a detectable value

Replacer = Callable[[str, str], str]


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a digit string (card numbers) is valid."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def classify(kind: str, value: str) -> str | None:
    """The PII type of a regex match (``kind`` is its group), or None when the checks reject it."""
    if kind == "url":
        return "url" if "?" in value or "@" in value else None
    digits = "".join(c for c in value if c.isdigit()) if kind != "email" else ""
    if kind == "resident":
        return "foreigner_id" if digits[6] in "5678" else "resident_id"
    if kind == "card":
        return "card" if luhn_ok(digits) else None
    if kind == "bank_account":
        groups = value.split("-")
        if len(groups) > 1 and (len(groups) < 3 or min(len(g) for g in groups) < 2):
            return None  # bank layouts have three or more groups: 3333-01-1234567, 110-123-456789
        return "bank_account" if 10 <= len(digits) <= 14 else None
    return kind


def placeholder(kind: str, value: str) -> str:
    """The Korean placeholder for a PII type (``[전화번호]`` ...)."""
    return PLACEHOLDERS[kind]


def normalize_forms(text: str) -> str:
    """Full-width forms (``０１０－１２３４``) and hyphen look-alikes (U+2010-2015, U+2212) as ASCII."""
    return text.translate(FORMS_TABLE) if ODD_FORMS.search(text) else text


# what cleaning turns into one space (clean.strip_symbols + collapse_whitespace) and no pattern reads: any run of
# whitespace (U+00A0, U+2009, newlines, double spaces), invisible format characters (U+200B, U+2060), emoji and other
# non-ASCII non-Hangul characters, and the ASCII symbols cleaning strips that no value contains. The scanner reads
# each run as one space, so "010\u00a04321\u200b8765" is the number that cleaning will make of it.
SPACE_CHAR = re.compile(r"[^!-~가-힣ㄱ-ㅎㅏ-ㅣ]|[`\\|<>{}]")
SPACING = re.compile(f"(?:{SPACE_CHAR.pattern})+")
ODD_SPACING = re.compile(r"[^ -~가-힣ㄱ-ㅎㅏ-ㅣ]|[`\\|<>{}]|  ")  # texts whose scanning view differs from the text


def scan_view(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with every :data:`SPACING` run read as one space, and ``[(view offset, text offset)]`` anchors: past
    an anchor, offsets advance together (:func:`find_values` maps matches back through them)."""
    if not ODD_SPACING.search(text):
        return text, []
    parts: list[str] = []
    anchors: list[tuple[int, int]] = []
    end = size = 0
    for match in SPACING.finditer(text):
        parts.append(text[end : match.start()] + " ")
        size += match.start() - end + 1
        end = match.end()
        anchors.append((size, end))
    parts.append(text[end:])
    return "".join(parts), anchors


def _to_text(offset: int, anchors: list[tuple[int, int]]) -> int:
    at = bisect.bisect_right(anchors, offset, key=lambda anchor: anchor[0]) - 1
    return offset if at < 0 else anchors[at][1] + offset - anchors[at][0]


def find_values(text: str) -> list[tuple[int, int, str, str]]:
    """``[(start, end, kind, value)]`` of every detected value in ``text`` (its offsets; ``value`` is
    ``text[start:end]``), scanned the way cleaning will see it (:func:`scan_view`)."""
    if not MAYBE.search(text):
        return []
    view, anchors = scan_view(text)
    found = []
    for match in PATTERN.finditer(view):
        kind = classify(match.lastgroup or "", match.group(0))
        if kind is None:
            continue
        start, end = (_to_text(match.start(), anchors), _to_text(match.end(), anchors)) if anchors else match.span()
        found.append((start, end, kind, text[start:end]))
    return found


def replace_values(text: str, found: list[tuple[int, int, str, str]], replace: Replacer,
                   counts: Counter[str] | None = None) -> str:
    """``text`` with each of ``found`` (in order, not overlapping) replaced by ``replace(kind, value)``."""
    parts, end = [], 0
    for start, stop, kind, value in found:
        if counts is not None:
            counts[kind] += 1
        parts += [text[end:start], replace(kind, value)]
        end = stop
    parts.append(text[end:])
    return "".join(parts)


def scrub_text(text: str, replace: Replacer = placeholder, counts: Counter[str] | None = None) -> str:
    """``text`` (full-width forms read as ASCII) with every detected value replaced by ``replace(kind, value)``;
    hits are added to ``counts``."""
    text = normalize_forms(text)
    found = find_values(text)
    return replace_values(text, found, replace, counts) if found else text


def find_pii(text: str) -> list[tuple[str, str]]:
    """``[(kind, value)]`` of every value :func:`scrub_text` would replace, in order."""
    found: list[tuple[str, str]] = []
    scrub_text(text, lambda kind, value: found.append((kind, value)) or "")
    return found

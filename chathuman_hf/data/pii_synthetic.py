"""Synthetic Korean PII of every scrubbed type in its formatting variants, in sentences: the recall test set and the
canary benchmark's secrets. Deterministic for a given seed."""

from __future__ import annotations

import random
import string

from .pii import luhn_ok

PER_TYPE = 100
TEMPLATES = ("{}로 연락 줘", "이거 {} 맞아?", "메모해 둬: {}", "{} 이야", "아까 말한 거 {}", "혹시 {}이거 기억나?",
             "{}", "적어놨어 ({}) ㅋㅋ", "그거 {} 아님?", "확인 부탁해요 {}.")  # fmt: skip


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _sep(rng: random.Random, choices: str = "-. ") -> str:
    return rng.choice([*choices, ""])


def resident(rng: random.Random, genders: str) -> str:
    date = f"{rng.randrange(100):02d}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    sep = rng.choice(["-", "", " - ", " "])
    return f"{date}{sep}{rng.choice(genders)}{_digits(rng, 6)}"


def phone(rng: random.Random) -> str:
    kind = rng.randrange(5)
    sep = _sep(rng)
    if kind == 0:  # mobile
        prefix = rng.choice(["010", "010", "011", "016", "017", "018", "019"])
        return f"{prefix}{sep}{_digits(rng, 4 if prefix == '010' else rng.choice([3, 4]))}{sep}{_digits(rng, 4)}"
    if kind == 1:  # Seoul, sometimes with parentheses
        head = rng.choice(["02", "(02) ", "02)"])
        return f"{head}{sep if head == '02' else ''}{_digits(rng, rng.choice([3, 4]))}{sep}{_digits(rng, 4)}"
    if kind == 2:  # other areas and 070
        area = rng.choice(["031", "032", "033", "041", "042", "051", "053", "055", "062", "064", "070"])
        return f"{area}{sep}{_digits(rng, rng.choice([3, 4]))}{sep}{_digits(rng, 4)}"
    if kind == 3:  # +82 forms
        national = rng.choice(["10", "2", "31", "70"])
        middle = _digits(rng, 4 if national == "10" else rng.choice([3, 4]))
        return rng.choice(["+82 ", "+82-", "+82", "+82 (0)"]) + f"{national}{sep}{middle}{sep}{_digits(rng, 4)}"
    return f"010{_digits(rng, 8)}"


def email(rng: random.Random) -> str:
    local = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randrange(3, 9)))
    local += rng.choice(["", ".kim", "_92", "+shop", str(rng.randrange(100))])
    domain = rng.choice(["naver.com", "gmail.com", "daum.net", "kakao.com", "hanmail.net", "company.co.kr"])
    return f"{local}@{domain}"


ACCOUNT_LAYOUTS = ((6, 2, 6), (3, 3, 6), (4, 3, 6), (3, 6, 5), (3, 4, 4, 2), (3, 6, 2, 3), (4, 2, 7), (4, 4, 4),
                   (3, 2, 6), (3, 2, 4, 3))  # fmt: skip


def account(rng: random.Random) -> str:
    layout = rng.choice(ACCOUNT_LAYOUTS)
    groups = [str(rng.randrange(1, 10)) + _digits(rng, layout[0] - 1)] + [_digits(rng, n) for n in layout[1:]]
    if rng.random() < 0.25:  # bare: 11, 12 or 14 digits (13 bare digits can read as a resident number)
        return str(rng.randrange(1, 10)) + _digits(rng, rng.choice([10, 11, 13]))
    return "-".join(groups)


def card(rng: random.Random) -> str:
    amex = rng.random() < 0.2
    body = (rng.choice(["34", "37"]) + _digits(rng, 13)) if amex else (rng.choice("4592") + _digits(rng, 15))
    for last in string.digits:
        if luhn_ok(body[:-1] + last):
            body = body[:-1] + last
            break
    sep = rng.choice(["-", " ", ""])
    groups = [body[:4], body[4:10], body[10:]] if amex else [body[i : i + 4] for i in range(0, 16, 4)]
    return sep.join(groups)


def passport(rng: random.Random) -> str:
    letter = rng.choice("MSRODG")
    value = letter + (
        _digits(rng, 8) if rng.random() < 0.5 else _digits(rng, 3) + rng.choice("ABCXYZ") + _digits(rng, 4)
    )
    return value.lower() if rng.random() < 0.1 else value


def ipv4(rng: random.Random) -> str:
    return ".".join(
        str(n) for n in (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(256))
    )


def url(rng: random.Random) -> str:
    host = rng.choice(["shop.co.kr", "example.com", "blog.naver.com", "my-site.kr", "192.168.0.7:8080"])
    if rng.random() < 0.4:
        user = "".join(rng.choice(string.ascii_lowercase) for _ in range(5))
        return f"{rng.choice(['https', 'http', 'ftp'])}://{user}:{_digits(rng, 6)}@{host}/files"
    query = f"id={_digits(rng, 6)}&name={rng.choice(['kim', 'lee', 'park'])}"
    return rng.choice(["https://", "http://", "www."]) + f"{host}/order?{query}"


GENERATORS = {
    "resident_id": lambda rng: resident(rng, "1234"),
    "foreigner_id": lambda rng: resident(rng, "5678"),
    "phone": phone,
    "email": email,
    "bank_account": account,
    "card": card,
    "passport": passport,
    "ipv4": ipv4,
    "url": url,
}


def positives(kind: str, n: int = PER_TYPE, seed: int = 0) -> list[tuple[str, str]]:
    """``[(sentence, planted value)]`` for one type."""
    rng = random.Random(f"{kind}{seed}")
    return [(rng.choice(TEMPLATES).format(value), value) for value in (GENERATORS[kind](rng) for _ in range(n))]

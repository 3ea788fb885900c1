"""Plausible Korean names (and other fakes) for AIHub masks, participants and scrubbed values, drawn from a seed."""

from __future__ import annotations

import hashlib
import random

from .pii import luhn_ok

SURNAMES = ("김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권", "황", "안", "송")
GIVEN_NAMES = (
    "민준", "서연", "지우", "하준", "도윤", "서윤", "지호", "하은", "예준", "수아", "지민", "유진", "현우", "다은",
    "준서", "채원", "은지", "성민", "민지", "태윤", "소희", "동현", "예린", "재원", "수빈", "건우", "나연", "승현",
)  # fmt: skip
PLACES = ("서울 마포구", "부산 해운대구", "대전 유성구", "인천 연수구", "광주 북구", "수원 영통구", "대구 수성구")


def _rng(seed: int, dialogue_id: str, key: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x1f{dialogue_id}\x1f{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def korean_name(seed: int, dialogue_id: str, index: str = "") -> str:
    """A name for placeholder ``index`` in ``dialogue_id``: same inputs, same name (surname+given or given alone)."""
    rng = _rng(seed, dialogue_id, "name" + index)
    given = rng.choice(GIVEN_NAMES)
    return rng.choice(SURNAMES) + given if rng.random() < 0.5 else given


def fake_phone(seed: int, dialogue_id: str, index: str = "") -> str:
    """A fake mobile number such as ``010-4821-0937`` (stable per dialogue and index)."""
    rng = _rng(seed, dialogue_id, "phone" + index)
    return f"010-{rng.randrange(1000, 10000)}-{rng.randrange(10000):04d}"


def fake_place(seed: int, dialogue_id: str, index: str = "") -> str:
    """A fake city + district for an address mask (stable per dialogue and index)."""
    return _rng(seed, dialogue_id, "place" + index).choice(PLACES)


def _redigit(value: str, rng: random.Random, keep: int = 0) -> str:
    """``value`` with every digit after the first ``keep`` ones drawn anew (separators and letters kept)."""
    out, seen = [], 0
    for char in value:
        if char.isdigit():
            seen += 1
            out.append(char if seen <= keep else str(rng.randrange(10)))
        else:
            out.append(char)
    return "".join(out)


def _luhn_fixed(value: str) -> str:
    """``value`` with its last digit set so that the digits pass the Luhn check (``pii.luhn_ok``)."""
    last = max(i for i, c in enumerate(value) if c.isdigit())
    body = "".join(c for c in value[:last] if c.isdigit())
    check = next(d for d in "0123456789" if luhn_ok(body + d))
    return value[:last] + check + value[last + 1 :]


def fake_like(kind: str, value: str, rng: random.Random) -> str:
    """A plausible fake of the same shape as ``value`` for a scrubbed PII type (see ``pii.PLACEHOLDERS``)."""
    if kind == "phone":
        digits = "".join(c for c in value if c.isdigit())
        national = digits[2:] if value.lstrip("(").startswith("+") else digits[1:]
        prefix = len(digits) - len(national) + (1 if national.startswith("2") else 2)
        return _redigit(value, rng, keep=prefix)
    if kind in ("resident_id", "foreigner_id"):
        year, month, day = rng.randrange(100), rng.randrange(1, 13), rng.randrange(1, 29)
        date = f"{year:02d}{month:02d}{day:02d}"
        return date + _redigit(value[6:], rng, keep=1)
    if kind == "card":
        return _luhn_fixed(_redigit(value, rng, keep=1))
    if kind == "bank_account":
        return str(rng.randrange(1, 10)) + _redigit(value[1:], rng)
    if kind == "passport":
        return value[0] + _redigit(value[1:], rng)
    if kind == "email":
        local, _, domain = value.rpartition("@")
        letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(max(len(local) - 2, 3)))
        return f"{letters}{rng.randrange(10, 100)}@{domain}"
    if kind == "ipv4":
        return f"192.0.2.{rng.randrange(1, 255)}"  # TEST-NET-1: a documentation address
    query = "&".join(f"{key}={rng.randrange(10**5)}" for key in "abc"[: max(1, value.count("&") + 1)])
    return f"{value.split('://')[0]}://example.com/page?{query}" if "://" in value else f"www.example.com/?{query}"


def has_final_consonant(syllable: str) -> bool:
    """The Hangul syllable ends in a consonant (받침): 준 yes, 수 no."""
    return "가" <= syllable <= "힣" and (ord(syllable) - 0xAC00) % 28 != 0


class FakeNamer:
    """Callable used by the cleaning rules: ``namer(kind, index) -> str`` for one dialogue.

    ``person(name)`` gives a participant's pseudonym and ``fake(kind, value)`` a scrubbed value's fake; the same
    input gets the same output within the dialogue, and different inputs different outputs.
    """

    def __init__(self, seed: int, dialogue_id: str) -> None:
        self.seed = seed
        self.dialogue_id = dialogue_id
        self._people: dict[str, tuple[str, str]] = {}
        self._fakes: dict[tuple[str, str], str] = {}

    def person(self, name: str, avoid: frozenset[str] = frozenset()) -> tuple[str, str]:
        """``(surname, given name)`` of participant ``name``'s pseudonym: distinct participants differ, and the
        given name is none of ``avoid`` (the real names in the dialogue)."""
        if name not in self._people:
            taken = {given for _, given in self._people.values()}
            for attempt in range(50):
                rng = _rng(self.seed, self.dialogue_id, f"person{len(self._people)}.{attempt}")
                pseudonym = (rng.choice(SURNAMES), rng.choice(GIVEN_NAMES))
                if pseudonym[1] not in taken and pseudonym[1] not in name and pseudonym[1] not in avoid:
                    break
            self._people[name] = pseudonym
        return self._people[name]

    def fake(self, kind: str, value: str) -> str:
        """A same-shape fake for a scrubbed value; drawn from the order of appearance, never from the value."""
        key = (kind, value)
        if key not in self._fakes:
            index = sum(k == kind for k, _ in self._fakes)
            for attempt in range(10):
                fake = fake_like(kind, value, _rng(self.seed, self.dialogue_id, f"{kind}{index}.{attempt}"))
                if fake != value:
                    break
            self._fakes[key] = fake
        return self._fakes[key]

    def __call__(self, kind: str, index: str = "") -> str:
        maker = {"name": korean_name, "phone": fake_phone, "place": fake_place}[kind]
        return maker(self.seed, self.dialogue_id, index)

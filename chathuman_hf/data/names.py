"""Plausible Korean names (and other fakes) for AIHub masks, drawn reproducibly from a seed."""

from __future__ import annotations

import hashlib
import random

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


class FakeNamer:
    """Callable used by the cleaning rules: ``namer(kind, index) -> str`` for one dialogue."""

    def __init__(self, seed: int, dialogue_id: str) -> None:
        self.seed = seed
        self.dialogue_id = dialogue_id

    def __call__(self, kind: str, index: str = "") -> str:
        maker = {"name": korean_name, "phone": fake_phone, "place": fake_place}[kind]
        return maker(self.seed, self.dialogue_id, index)

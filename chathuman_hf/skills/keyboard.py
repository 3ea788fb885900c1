"""Korean typed with the keyboard in English mode (두벌식): detection and conversion back to Hangul."""

from __future__ import annotations

import re

from chathuman_hf.skills.hangul import DUBEOLSIK, compose
from chathuman_hf.skills.types import SkillReply

NAME = "keyboard"
LATIN_ONLY = re.compile(r"^[A-Za-z0-9\s.,!?~^'\"\-]+$")
WORD = re.compile(r"[A-Za-z]+")
# Laughter/agreement jamo runs typed in English mode (zz → ㅋㅋ, gg → ㅎㅎ, bb → ㅠㅠ, dd → ㅇㅇ ...).
EXPRESSIVE = re.compile(r"^(?:z+|g+|b+|n+|d+|r+)$")

# Frequent English words that happen to compose into Hangul (go → 해, so → 내, to → 새 ...).
ENGLISH_WORDS = frozenset("""
a i an am as at be by do go he if in is it me my no of oh ok on or so to up us we ya yo hi
all and any are bad big boy but can day did dog end far few fun get god got had has her him his how its
let lot man may new not now old one our out own put say see she sky son sun ten the too top two use was way
who why yes yet you
also back been best both call come cool does done down each even fine from girl give good have help here
home just keep kind know last life like live long look love made make many more most much must name need
next nice only open over play real said same send show some stop such sure take talk than that them then
they this time very want well went what when will with word work year your
""".split())


def to_jamo(text: str) -> str:
    """Map each Latin key of a 두벌식 keyboard to its jamo (upper case only matters for the shifted keys)."""
    return "".join(DUBEOLSIK.get(ch, DUBEOLSIK.get(ch.lower(), ch)) for ch in text)


def convert(text: str) -> str:
    """Convert text typed in English mode on a 두벌식 keyboard to Hangul: ``dkssud`` → ``안녕``."""
    return compose(to_jamo(text)).text


def looks_mistyped(text: str) -> bool:
    """True when Latin-only text is better read as Korean typed in English mode than as English.

    Every word (except jamo runs like ``zz`` → ㅋㅋ) must compose into whole syllables with no jamo left over,
    at least one word must give syllables, and no word may be a common English word.
    """
    text = text.strip()
    if not text or not LATIN_ONLY.match(text):
        return False
    words = WORD.findall(text)
    if not words:
        return False
    syllables = 0
    for word in words:
        if word.lower() in ENGLISH_WORDS:
            return False
        if EXPRESSIVE.match(word):
            continue
        result = compose(to_jamo(word))
        if result.loose_jamo:
            return False
        syllables += result.syllables
    return syllables > 0


class KeyboardSkill:
    """Answers Latin-only messages that are Korean typed in English mode with the converted Hangul."""

    name = NAME
    title = "영타 → 한글 변환"
    example = "dkssud"
    note = "→ 안녕"

    def __call__(self, text: str) -> SkillReply | None:
        if not looks_mistyped(text):
            return None
        return SkillReply(f"한/영 전환이 안 된 것 같아요. 이렇게 쓰려던 거죠? “{convert(text.strip())}”", NAME)

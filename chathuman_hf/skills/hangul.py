"""Hangul syllable composition from compatibility jamo, and the 두벌식 (2-set) keyboard map."""

from __future__ import annotations

from dataclasses import dataclass

INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
FINALS = ["", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ", "ㄿ", "ㅀ", "ㅁ", "ㅂ",
          "ㅄ", "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ"]

COMPOUND_VOWELS = {("ㅗ", "ㅏ"): "ㅘ", ("ㅗ", "ㅐ"): "ㅙ", ("ㅗ", "ㅣ"): "ㅚ", ("ㅜ", "ㅓ"): "ㅝ", ("ㅜ", "ㅔ"): "ㅞ",
                   ("ㅜ", "ㅣ"): "ㅟ", ("ㅡ", "ㅣ"): "ㅢ"}
DOUBLE_FINALS = {("ㄱ", "ㅅ"): "ㄳ", ("ㄴ", "ㅈ"): "ㄵ", ("ㄴ", "ㅎ"): "ㄶ", ("ㄹ", "ㄱ"): "ㄺ", ("ㄹ", "ㅁ"): "ㄻ",
                 ("ㄹ", "ㅂ"): "ㄼ", ("ㄹ", "ㅅ"): "ㄽ", ("ㄹ", "ㅌ"): "ㄾ", ("ㄹ", "ㅍ"): "ㄿ", ("ㄹ", "ㅎ"): "ㅀ",
                 ("ㅂ", "ㅅ"): "ㅄ"}
SPLIT_FINALS = {v: k for k, v in DOUBLE_FINALS.items()}

# 두벌식: lower-case keys, plus the shifted keys that give tense consonants and ㅒ/ㅖ.
DUBEOLSIK = {
    "r": "ㄱ", "R": "ㄲ", "s": "ㄴ", "e": "ㄷ", "E": "ㄸ", "f": "ㄹ", "a": "ㅁ", "q": "ㅂ", "Q": "ㅃ", "t": "ㅅ",
    "T": "ㅆ", "d": "ㅇ", "w": "ㅈ", "W": "ㅉ", "c": "ㅊ", "z": "ㅋ", "x": "ㅌ", "v": "ㅍ", "g": "ㅎ",
    "k": "ㅏ", "o": "ㅐ", "O": "ㅒ", "i": "ㅑ", "j": "ㅓ", "p": "ㅔ", "P": "ㅖ", "u": "ㅕ", "h": "ㅗ", "y": "ㅛ",
    "n": "ㅜ", "b": "ㅠ", "m": "ㅡ", "l": "ㅣ",
}


def is_vowel(jamo: str) -> bool:
    """True for a compatibility-jamo vowel (ㅏ … ㅣ)."""
    return jamo in MEDIALS


def is_consonant(jamo: str) -> bool:
    """True for a compatibility-jamo consonant, double finals (ㄳ, ㄺ …) included."""
    return jamo in INITIALS or jamo in SPLIT_FINALS


def is_jamo(ch: str) -> bool:
    """True for any Hangul compatibility jamo (U+3131–U+3163)."""
    return "\u3131" <= ch <= "\u3163"


def syllable(initial: str, medial: str, final: str = "") -> str:
    """Compose one Hangul syllable from its initial, medial and (optional) final jamo."""
    code = 0xAC00 + (INITIALS.index(initial) * 21 + MEDIALS.index(medial)) * 28 + FINALS.index(final)
    return chr(code)


@dataclass
class Composition:
    """The composed text and how many jamo were left standing alone (not part of a syllable)."""

    text: str
    loose_jamo: int
    syllables: int


def compose(chars: str) -> Composition:
    """Compose runs of compatibility jamo into syllables the way a 두벌식 input method does.

    Handles compound vowels (ㅗ+ㅏ → ㅘ), double finals (ㄹ+ㄱ → ㄺ) and moves a final consonant (or the second
    half of a double final) to the next syllable when a vowel follows. Other characters pass through.
    """
    out: list[str] = []
    loose = 0
    count = 0
    cho = jung = jong = ""

    def flush() -> None:
        nonlocal cho, jung, jong, loose, count
        if cho and jung:
            out.append(syllable(cho, jung, jong))
            count += 1
        else:
            for part in (cho, jung, jong):
                if part:
                    out.append(part)
                    loose += 1
        cho = jung = jong = ""

    for ch in chars:
        if is_vowel(ch):
            if jong:
                first, moved = SPLIT_FINALS.get(jong, ("", jong))
                jong = first
                flush()
                cho, jung = moved, ch
            elif jung:
                compound = COMPOUND_VOWELS.get((jung, ch))
                if compound:
                    jung = compound
                else:
                    flush()
                    jung = ch
            else:
                jung = ch
        elif is_consonant(ch):
            if not jung:
                if cho:
                    flush()
                cho = ch
            elif not jong:
                if cho and ch in FINALS:
                    jong = ch
                else:
                    flush()
                    cho = ch
            else:
                double = DOUBLE_FINALS.get((jong, ch))
                if double:
                    jong = double
                else:
                    flush()
                    cho = ch
        else:
            flush()
            out.append(ch)
    flush()
    return Composition("".join(out), loose, count)

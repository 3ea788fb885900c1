"""The profanity filter: a configurable word list matched robustly, answered with a gentle refusal."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chathuman_hf.skills.hangul import compose, is_jamo
from chathuman_hf.skills.keyboard import convert, looks_mistyped
from chathuman_hf.skills.types import SkillReply

NAME = "profanity"
REFUSAL = "그런 말은 마음이 조금 아파요. 우리 기분 좋은 이야기 해요!"

# Our default list (extend or replace it with ProfanityFilter(words=...) or a file, one word a line).
DEFAULT_WORDS = (
    "시발", "씨발", "씨바", "시바", "씨빨", "씨팔", "시팔", "ㅅㅂ", "ㅆㅂ", "병신", "븅신", "ㅂㅅ", "지랄", "ㅈㄹ",
    "좆", "존나", "졸라", "개새끼", "개색기", "새끼야", "미친놈", "미친년", "닥쳐", "꺼져", "fuck", "shit", "bitch",
)
# Innocent words that contain a listed word once spaces are removed (시발점 "starting point", 시바견 "Shiba dog").
DEFAULT_ALLOW = ("시발점", "시발역", "시바견", "시바이누", "수박씨발라", "존나이트")
KEEP = re.compile(r"[^0-9a-z\uac00-\ud7a3\u3131-\u3163]")


def _nfkc(text: str) -> str:
    """NFKC (full-width letters, ligatures) without turning compatibility jamo into conjoining jamo."""
    return "".join(ch if is_jamo(ch) else unicodedata.normalize("NFKC", ch) for ch in text)


def _letters(text: str, *, keep_jamo: bool) -> str:
    """Lower-case letters only: digits and symbols dropped, jamo runs composed (or dropped)."""
    text = KEEP.sub("", _nfkc(text).lower())
    text = re.sub(r"[0-9]", "", text)
    if keep_jamo:
        return compose(text).text
    return "".join(ch for ch in text if not is_jamo(ch))


def _chunks(text: str) -> list[str]:
    """Whitespace tokens with runs of one-letter tokens joined (``시 발`` → ``시발``, ``이 시 발표`` stays apart)."""
    chunks: list[str] = []
    run = ""
    for token in text.split():
        letters = KEEP.sub("", re.sub(r"[0-9]", "", _nfkc(token).lower()))
        if len(letters) <= 1:
            run += token
            continue
        if run:
            chunks.append(run)
            run = ""
        chunks.append(token)
    if run:
        chunks.append(run)
    return chunks


class ProfanityFilter:
    """Finds listed words even with spaces, digits, symbols or stray jamo inserted between their letters."""

    name = NAME
    title = "욕설 필터"
    example = ""  # no example message: the page must not send a swear word (or this note) for the visitor
    note = "나쁜 말은 정중히 거절해요"

    def __init__(self, words: Iterable[str] = DEFAULT_WORDS, allow: Iterable[str] = DEFAULT_ALLOW,
                 refusal: str = REFUSAL) -> None:
        self.words = sorted({w for w in (_letters(x, keep_jamo=True) for x in words) if w})
        self.allow = sorted({w for w in (_letters(x, keep_jamo=True) for x in allow) if w}, key=len, reverse=True)
        self.refusal = refusal

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> ProfanityFilter:
        """Load the word list from a UTF-8 file, one word a line (``#`` starts a comment)."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return cls(words=[ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()], **kwargs)

    def _views(self, text: str) -> list[str]:
        views = []
        for keep_jamo in (True, False):
            view = " ".join(_letters(chunk, keep_jamo=keep_jamo) for chunk in _chunks(text))
            for ok in self.allow:
                view = view.replace(ok, " ")
            views.append(view)
        return views

    def find(self, text: str) -> str | None:
        """The first listed word found in ``text`` (or its 두벌식 conversion), else ``None``."""
        candidates = [text]
        if looks_mistyped(text):
            candidates.append(convert(text))
        for candidate in candidates:
            jamo_view, syllable_view = self._views(candidate)
            for word in self.words:
                if word in jamo_view or (not any(map(is_jamo, word)) and word in syllable_view):
                    return word
        return None

    def __call__(self, text: str) -> SkillReply | None:
        if self.find(text) is None:
            return None
        return SkillReply(self.refusal, NAME)

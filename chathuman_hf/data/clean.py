"""Korean cleaning rules: pure ``str -> str`` functions, each switchable, applied per utterance.

AIHub masks and what happens to them (``remove_masks``/``replace_names``):

- ``#@시스템#사진#`` and every other ``#@시스템#…#`` marker: the whole utterance is dropped
  (counted as ``photo_utterance`` / ``system_utterance``), as the seed did for photos.
- ``#@이름#``, ``#@이름1#``: a plausible Korean name drawn from a seed; the same index gets the same name
  within one dialogue (an unnumbered ``#@이름#`` is one name per dialogue) and a run is reproducible.
- ``#@전번#`` (phone number): a fake ``010-####-####``; ``#@주소#`` (address): a fake city + district.
- ``#@이모티콘#``, ``#@URL#``, ``@URL``, ``#@계정#`` (account id), ``#@금융#`` (bank/account number),
  ``#@번호#``, ``#@신원#``, ``#@소속#``, ``#@기타#`` and any other ``#@…#`` mask: removed, because a fake
  account number or identity reads worse than nothing in a chit-chat reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .pii import KEPT_WHOLE_RE, ODD_FORMS, WIDTH_TABLE
from .reasoning import join_think, split_think

SYSTEM_MARKER = re.compile(r"#@시스템#([^#\s]*)#")
MASK = re.compile(r"#@([^#\s\d]+)(\d*)#")
BARE_URL_MASK = re.compile(r"@URL\b")
ROUND_PARENTHESIS = re.compile(r"[()]")
KIKI = re.compile(r"키(?:키)+")
REPEATS = re.compile(r"([ㅋㅎㅠㅜ.])\1{2,}")
NOT_ALLOWED = re.compile(r"[^가-힣ㄱ-ㅎㅏ-ㅣa-zA-Z0-9\s.,?!~'\"\-:;%/()^&+=]")
WHITESPACE = re.compile(r"\s+")

FAKE_KINDS = {"이름": "name", "전번": "phone", "주소": "place"}

Namer = Callable[[str, str], str]


@dataclass
class CleaningOptions:
    """Which cleaning rules run (all on by default, as in the seed)."""

    drop_system_utterances: bool = True
    replace_names: bool = True
    remove_masks: bool = True
    remove_parentheses: bool = True
    collapse_repeats: bool = True
    strip_symbols: bool = True
    lowercase: bool = True
    collapse_whitespace: bool = True


def system_marker(text: str) -> str | None:
    """The drop reason for an utterance carrying a ``#@시스템#…#`` marker, else None."""
    match = SYSTEM_MARKER.search(text)
    if match is None:
        return None
    return "photo_utterance" if match.group(1) == "사진" else "system_utterance"


def fill_masks(text: str, namer: Namer, kinds: dict[str, str] | None = None) -> str:
    """Replace ``#@이름#``-style masks whose kind is in ``kinds`` (default names, phones, addresses) with fakes."""
    kinds = FAKE_KINDS if kinds is None else kinds

    def sub(match: re.Match[str]) -> str:
        kind = kinds.get(match.group(1))
        return namer(kind, match.group(2)) if kind else match.group(0)

    return MASK.sub(sub, text)


def remove_masks(text: str) -> str:
    """Remove every remaining ``#@…#`` mask (emoticons, URLs, account numbers, ...) and ``@URL``."""
    text = SYSTEM_MARKER.sub(" ", text)
    text = MASK.sub(" ", text)
    return BARE_URL_MASK.sub(" ", text)


def remove_parentheses(text: str) -> str:
    """Replace each outermost matched ``(...)`` (nested ones inside) with a space; unmatched parentheses stay.

    One linear scan: re-applying ``\\([^()]*\\)`` until nothing changes was quadratic (12 s on an 80 KB line).
    """
    opened: list[int] = []  # positions of "(" not matched yet
    spans: list[tuple[int, int]] = []  # matched pairs that no later pair encloses so far
    for match in ROUND_PARENTHESIS.finditer(text):
        position = match.start()
        if match.group() == "(":
            opened.append(position)
        elif opened:
            start = opened.pop()
            while spans and spans[-1][0] > start:  # pairs nested in this one: each popped once (linear overall)
                spans.pop()
            spans.append((start, position))
    if not spans:
        return text
    parts, end = [], 0
    for start, close in spans:
        parts.append(text[end:start])
        parts.append(" ")
        end = close + 1
    parts.append(text[end:])
    return "".join(parts)


def collapse_repeats(text: str) -> str:
    """Runs of 키키 become ㅋㅋ; runs of ㅋ ㅎ ㅠ ㅜ and ``.`` (``…`` counts as dots) longer than two become two."""
    if "…" in text:
        text = text.replace("…", "...")
    if "키키" in text:
        text = KIKI.sub("ㅋㅋ", text)
    return REPEATS.sub(_twice, text)


def _twice(match: re.Match[str]) -> str:
    return match.group(1) * 2


def strip_symbols(text: str) -> str:
    """Replace characters outside Hangul, Latin letters, digits and basic punctuation with a space.

    Full-width forms (``１２３``, ``ＯＫ``) become ASCII instead of spaces; the PII scrubber's placeholders
    (``[전화번호]``) and e-mail addresses (a fake's ``@``) are kept whole.
    """
    if ODD_FORMS.search(text):
        text = text.translate(WIDTH_TABLE)
    if ("[" in text or "@" in text) and KEPT_WHOLE_RE.search(text):
        parts = KEPT_WHOLE_RE.split(text)
        kept = KEPT_WHOLE_RE.findall(text)
        return "".join(NOT_ALLOWED.sub(" ", part) + (kept[i] if i < len(kept) else "") for i, part in enumerate(parts))
    return NOT_ALLOWED.sub(" ", text)


def lowercase(text: str) -> str:
    """Lower-case English letters (Hangul has no case)."""
    return text.lower()


def collapse_whitespace(text: str) -> str:
    """Collapse runs of whitespace (newlines included) to one space and strip the ends."""
    return " ".join(text.split())  # = WHITESPACE.sub(" ", text).strip(): str.split uses the same \s set


def clean_utterance(text: str, options: CleaningOptions, namer: Namer | None = None) -> tuple[str, str | None]:
    """Apply the enabled rules; returns ``(text, drop_reason)`` with ``drop_reason`` None when the utterance stays."""
    masked = "@" in text
    if masked and options.drop_system_utterances:
        reason = system_marker(text)
        if reason:
            return "", reason
    if masked and options.replace_names and namer is not None:
        text = fill_masks(text, namer)
    if masked and options.remove_masks:
        text = remove_masks(text)
    if options.remove_parentheses and "(" in text:
        text = remove_parentheses(text)
    if options.collapse_repeats:
        text = collapse_repeats(text)
    if options.strip_symbols:
        text = strip_symbols(text)
    if options.lowercase:
        text = lowercase(text)
    text = collapse_whitespace(text) if options.collapse_whitespace else text.strip("\r\n")
    if not text.strip():
        return "", "empty_after_cleaning"
    return text, None


def clean_reply(text: str, options: CleaningOptions, namer: Namer | None = None) -> tuple[str, str | None]:
    """:func:`clean_utterance` for an assistant message: a leading ``<think>…</think>`` block is cleaned apart and
    kept as a block (empty reasoning leaves none); the reply without an answer is dropped like an empty utterance."""
    split = split_think(text)
    if split is None:
        return clean_utterance(text, options, namer)
    reasoning, reply = split
    reply, reason = clean_utterance(reply, options, namer)
    if reason:
        return "", reason
    reasoning = clean_utterance(reasoning, options, namer)[0] if reasoning else ""
    return join_think(reasoning, reply), None

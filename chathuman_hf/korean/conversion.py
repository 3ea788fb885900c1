"""Rewrite an utterance's sentence-final endings to the other speech level with Kiwi: 존댓말 ↔ 반말.

    to_plain("맛있게 드셨어요?")  → "맛있게 먹었어?"      to_polite("밥 먹었어?") → "밥 먹었어요?"
    to_plain("내일 갑니다.")      → "내일 가."            to_polite("나도 좋다") → "저도 좋아요"

Each sentence's final ending (found as ``chathuman_hf.korean.analysis`` finds it) is swapped for its counterpart
(해요체/하십시오체 ↔ 해체: 어요 ↔ 어, 습니다 → 어, 에요 ↔ 야, 죠 ↔ 지, 네요 ↔ 네, 세요 → 어, 어라 → 세요, a trailing
connective gets or loses 요) and the word is rebuilt with ``Kiwi.join``, which conjugates (하+어 → 해, 어떻+어 → 어때).
Going plain, the first person 저/저희 becomes 나/우리, answer words 네/아니요 become 응/아니, and the honorific 시 of
a listener (드셨어요 → 먹었어) is dropped, but kept when the sentence names a third person as its subject with
께서/님/분 (교수님께서 오셨어요 → 교수님께서 오셨어). Going polite, 나 → 저, 응 → 네, and only explicit imperatives
take 세요 (먹어라 → 드세요). The rest of the text is left byte for byte. Limits (measured in bench/RESULTS.md):
너 stays 너, an imperative written as a plain 해 stays a statement (먹어 → 먹어요); Kiwi mis-analyses pass through.
"""

from __future__ import annotations

from typing import Any

from chathuman_hf.korean.analysis import (
    _SKIP_TAGS,
    PLAIN,
    POLITE,
    POLITE_ENDING_SUFFIXES,
    _sentences,
    ending_index,
    kiwi,
)

# Whole phrases Kiwi mis-analyses (드세요 → 드세/VA) or whose counterpart is another word; applied before analysis.
PLAIN_PHRASES = (
    ("안녕히 주무세요", "잘 자"), ("안녕히 계세요", "잘 있어"), ("안녕히 가세요", "잘 가"), ("안녕하세요", "안녕"),
    ("주무세요", "자"), ("드세요", "먹어"), ("계세요", "있어"), ("죄송합니다", "미안해"), ("죄송해요", "미안해"),
)
# With 께서/님 in the text the subject is likely a third person whose honorific stays (할머니께서 주무셔).
THIRD_PERSON_PHRASES = (("안녕하세요", "안녕"), ("주무세요", "주무셔"), ("드세요", "드셔"), ("계세요", "계셔"),
                        ("죄송합니다", "미안해"), ("죄송해요", "미안해"))
POLITE_PHRASES = (("잘 자", "안녕히 주무세요"), ("미안해", "죄송해요"))
# Final endings (Kiwi EF forms, after 요 is stripped where that is the whole rule) and their counterparts.
TO_PLAIN = {
    "세요": "어", "으세요": "어", "에요": "야", "예요": "야", "ᆸ니다": "어", "습니다": "어", "ᆸ니까": "어",
    "습니까": "어", "ᆸ시오": "어", "으십시오": "어", "십시오": "어", "ᆸ시다": "자", "읍시다": "자", "죠": "지",
    "지요": "지", "군요": "구나", "나요": "어", "ᆫ가요": "어", "은가요": "어", "는가요": "어", "답니다": "어",
    "ᆫ답니다": "어", "는답니다": "어", "랍니다": "야",
}
TO_POLITE = {
    "어": "어요", "아": "어요", "여": "어요", "다": "어요", "ᆫ다": "어요", "는다": "어요", "니": "어요",
    "냐": "어요", "느냐": "어요", "으냐": "어요", "나": "어요", "자": "어요", "지": "죠", "네": "네요",
    "구나": "군요", "군": "군요", "ᆷ": "어요", "음": "어요",
    "어라": "세요", "아라": "세요", "거라": "세요", "렴": "세요", "으렴": "세요",
}
COPULA_POLITE = "에요"  # 이다/아니다 + a plain declarative or question: 학생이야 → 학생이에요, 거야 → 거예요
PLAIN_PRONOUNS = {"저": "나", "저희": "우리"}
POLITE_PRONOUNS = {"나": "저"}
PLAIN_ANSWERS = {"네": "응", "넵": "응", "예": "응", "아니요": "아니", "아뇨": "아니"}
POLITE_ANSWERS = {"응": "네", "웅": "네", "엉": "네", "어": "네", "아니": "아니요", "안녕": "안녕하세요",
                  "그래": "그래요"}
PLAIN_STEMS = {"드시": "먹", "잡수시": "먹", "주무시": "자", "계시": "있"}  # when the listener's 시 goes
POLITE_IMPERATIVE_STEMS = {"먹": "드", "있": "계시"}  # 먹어라 → 드세요
THIRD_PERSON = {("께서", "JKS"), ("님", "XSN"), ("분", "NNB"), ("분", "NNG")}


def to_plain(text: str) -> str:
    """``text`` with every sentence-final ending in 반말 (해체)."""
    return convert(text, PLAIN)


def to_polite(text: str) -> str:
    """``text`` with every sentence-final ending in 존댓말 (해요체)."""
    return convert(text, POLITE)


def convert(text: str, level: str) -> str:
    """``text`` rewritten at ``level`` (``plain`` or ``polite``); text already at that level comes back unchanged."""
    if level not in (PLAIN, POLITE):
        raise ValueError(f"level must be {PLAIN!r} or {POLITE!r}, got {level!r}")
    phrases = POLITE_PHRASES if level == POLITE else THIRD_PERSON_PHRASES if any(
        marker in text for marker in ("께서", "님")) else PLAIN_PHRASES
    for before, after in phrases:
        text = _swap_phrase(text, before, after)
    if not text.strip():
        return text
    edits: list[tuple[int, int, str]] = []
    for sentence in _sentences(kiwi().tokenize(text)):
        edits.extend(_sentence_edits(sentence, level))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _swap_phrase(text: str, before: str, after: str) -> str:
    """Replace ``before`` where it stands as whole words (not inside a longer word)."""
    out, i = [], 0
    while (j := text.find(before, i)) >= 0:
        k = j + len(before)
        left_ok = j == 0 or not text[j - 1].isalnum()
        right_ok = k == len(text) or not text[k].isalnum() or text[k] in "요"
        if left_ok and right_ok and not (text[k:k + 1] == "요" and before.endswith("요")):
            out.append(text[i:j] + after)
        else:
            out.append(text[i:k])
        i = k
    return "".join(out) + text[i:]


def _has_coda(syllable: str) -> bool:
    return "가" <= syllable <= "힣" and (ord(syllable) - 0xAC00) % 28 != 0


def _sentence_edits(sentence: list[Any], level: str) -> list[tuple[int, int, str]]:
    """``(start, end, replacement)`` text edits for one sentence, one per rewritten word."""
    words = [t for t in sentence if not t.tag.startswith(_SKIP_TAGS)]
    morphs: list[list[tuple[str, str]]] = [[(t.form, t.tag)] for t in words]
    changed = [False] * len(words)

    def put(i: int, form: str | None, extra: tuple[str, str] | None = None,
            before: tuple[str, str] | None = None) -> None:
        """Morpheme ``i`` becomes ``form`` (same tag; ``None``: removed), between ``before`` and ``extra``."""
        morphs[i] = ([before] if before else []) + ([(form, words[i].tag)] if form is not None else []) + (
            [extra] if extra else [])
        changed[i] = True

    pronouns, answers = (PLAIN_PRONOUNS, PLAIN_ANSWERS) if level == PLAIN else (POLITE_PRONOUNS, POLITE_ANSWERS)
    for i, t in enumerate(words):
        if t.tag == "NP" and t.form in pronouns:
            put(i, pronouns[t.form])
        elif t.tag == "IC" and t.form in answers:
            put(i, answers[t.form])
    e = ending_index(words)
    if e is not None:
        (_plain_ending if level == PLAIN else _polite_ending)(words, e, put)
    elif level == POLITE and words and words[-1].tag.startswith(("N", "J", "MAG")) and not changed[-1]:
        put(len(words) - 1, words[-1].form, ("요", "JX"))  # a phrase without an ending: 나도 → 저도요, 진짜? → 진짜요?
    edits = []
    for wp in sorted({words[i].word_position for i in range(len(words)) if changed[i]}):
        idx = [i for i in range(len(words)) if words[i].word_position == wp]
        start, end = min(words[i].start for i in idx), max(words[i].end for i in idx)
        parts = [(form, tag, False) for i in idx for form, tag in morphs[i]]  # one word: no space inside
        edits.append((start, end, kiwi().join(parts) if parts else ""))
    return edits


def _plain_ending(words: list[Any], e: int, put: Any) -> None:
    """Polite → plain at ending ``e``: strip 요 or swap the ending; drop the listener's honorific 시."""
    form, tag = words[e].form, words[e].tag
    if form == "요" and tag in ("JX", "EF", "MM"):
        put(e, None)
        return
    third_person = any((t.form, t.tag) in THIRD_PERSON for t in words[:e])
    if form in ("세요", "으세요") and third_person:
        put(e, "어", before=("시", "EP"))  # 선생님께서 오세요 → 선생님께서 오셔: the 시 folded into 세요 stays
    elif form in TO_PLAIN:
        plain = TO_PLAIN[form]
        copula = e > 0 and words[e - 1].tag in ("VCP", "VCN") and plain == "어"
        put(e, "야" if copula else plain)  # 신뢰입니다 → 신뢰야, not 신뢰어
    elif form.endswith("요") and len(form) > 1:
        put(e, form[:-1])
    elif tag == "EF" and form.endswith(("니다", "니까")):
        put(e, "어")
    else:
        return  # already plain
    if third_person:
        return  # 교수님께서 오셨어요: the 시 honours a third person, not the listener
    for i in range(e - 1, -1, -1):
        t = words[i]
        if t.tag == "EP" and t.form in ("시", "으시"):
            put(i, None)
        elif t.tag.startswith("V") and t.form in PLAIN_STEMS:
            put(i, PLAIN_STEMS[t.form])
        if t.word_position != words[e].word_position:
            break


def _polite_ending(words: list[Any], e: int, put: Any) -> None:
    """Plain → polite at ending ``e``: 어 → 어요, 야 → 에요, 지 → 죠, 어라 → 세요, a connective + 요, …"""
    form, tag = words[e].form, words[e].tag
    if (form == "요" and tag in ("JX", "EF", "MM")) or (
            form.endswith(POLITE_ENDING_SUFFIXES) and form not in ("니까", "으니까")):
        return  # already polite
    before = words[e - 1] if e > 0 else None
    if before is not None and before.tag in ("VCP", "VCN") and form in ("야", "다", "니", "냐", "어", "지", "ᆷ"):
        noun = words[e - 2].form if e > 1 and before.tag == "VCP" else ""
        put(e, "예요" if noun and not _has_coda(noun[-1]) else COPULA_POLITE)
    elif form in TO_POLITE and (tag == "EF" or form in ("다", "니", "냐")):
        polite = TO_POLITE[form]
        put(e, polite)
        if polite == "세요" and before is not None and before.form in POLITE_IMPERATIVE_STEMS:
            put(e - 1, POLITE_IMPERATIVE_STEMS[before.form])
    elif tag == "EC":
        put(e, form, ("요", "JX"))  # 했는데 → 했는데요, 배고파서 → 배고파서요
    elif tag == "EF":
        put(e, form + "요")

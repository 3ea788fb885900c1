"""Kiwi-based speech-level conversion (chathuman_hf.korean.conversion): literal before/after pairs and traps."""

from __future__ import annotations

import pytest

pytest.importorskip("kiwipiepy")

from chathuman_hf.korean.analysis import speech_level  # noqa: E402
from chathuman_hf.korean.conversion import convert, to_plain, to_polite  # noqa: E402

TO_PLAIN = [
    ("먹었어요.", "먹었어."),
    ("내일 갑니다", "내일 가"),
    ("드세요", "먹어"),
    ("맛있게 드셨어요?", "맛있게 먹었어?"),  # honorific verb of the listener
    ("학생이에요", "학생이야"),
    ("좋을 거예요", "좋을 거야"),
    ("좋죠", "좋지"),
    ("좋네요", "좋네"),
    ("했는데요", "했는데"),
    ("하십시오", "해"),
    ("갑시다", "가자"),
    ("감사합니다", "감사해"),
    ("저는 괜찮아요. 당신은 어때요?", "나는 괜찮아. 당신은 어때?"),
    ("제가 할게요", "내가 할게"),
    ("네 맞아요", "응 맞아"),
    ("안녕하세요", "안녕"),
    ("안녕히 주무세요", "잘 자"),
    ("할까요?", "할까?"),
    ("좋아하세요?", "좋아해?"),
    ("좋은 하루 보내세요!", "좋은 하루 보내!"),
    ("신뢰입니다.", "신뢰야."),
    ("저도 그럴 때가 있답니다.", "나도 그럴 때가 있어."),
    ("이별이 새로운 시작이 되기도 하니까요.", "이별이 새로운 시작이 되기도 하니까."),
]
TO_POLITE = [
    ("먹었어", "먹었어요"),
    ("학생이야", "학생이에요"),
    ("거야", "거예요"),
    ("좋다", "좋아요"),
    ("간다", "가요"),
    ("먹는다", "먹어요"),
    ("먹어라", "드세요"),  # an explicit imperative takes 세요 and the honorific verb
    ("먹었니?", "먹었어요?"),
    ("좋지", "좋죠"),
    ("좋구나", "좋군요"),
    ("했는데", "했는데요"),
    ("내가 할게", "제가 할게요"),
    ("응 맞아", "네 맞아요"),
    ("나도", "저도요"),
    ("어디야?", "어디예요?"),
    ("괜찮아. 힘내", "괜찮아요. 힘내요"),
    ("오늘 날씨 좋네. 산책 가자!", "오늘 날씨 좋네요. 산책 가요!"),
    ("베프랑 싸움", "베프랑 싸워요"),
    ("장난 아님", "장난 아니에요"),
]


@pytest.mark.parametrize(("before", "after"), TO_PLAIN)
def test_polite_to_plain(before, after):
    assert to_plain(before) == after


@pytest.mark.parametrize(("before", "after"), TO_POLITE)
def test_plain_to_polite(before, after):
    assert to_polite(before) == after


def test_third_person_honorific_is_kept():
    # 께서/님: the 시 honours the professor, not the listener, so it stays in 반말
    assert to_plain("교수님께서 오셨어요") == "교수님께서 오셨어"
    assert to_plain("할머니께서 주무세요") == "할머니께서 주무셔"
    assert to_plain("선생님께서 오세요") == "선생님께서 오셔"
    # the listener's 시 goes: 가셨어요 → 갔어
    assert to_plain("어제 어디 가셨어요?") == "어제 어디 갔어?"


def test_questions_keep_their_mark_and_become_the_other_level():
    for before, after in [("밥 드셨어요?", "밥 먹었어?"), ("뭐 하세요?", "뭐 해?"), ("어디 가세요?", "어디 가?")]:
        assert to_plain(before) == after
    assert [speech_level(t) for t in ("밥 먹었어?", "뭐 해?")] == ["plain", "plain"]
    assert to_plain("가나요?") == "가?"  # right, though the classifier reads a bare 가 as a noun (undetermined)
    for before, after in [("밥 먹었어?", "밥 먹었어요?"), ("뭐 해?", "뭐 해요?"), ("할까?", "할까요?")]:
        assert to_polite(before) == after
        assert speech_level(after) == "polite"


def test_text_at_the_target_level_and_text_without_endings_are_unchanged():
    for text in ("밥 먹었어?", "ㅋㅋㅋ", "헐", "", "  "):
        assert to_plain(text) == text
    for text in ("밥 드셨어요?", "감사합니다.", "ㅋㅋ", "저도요"):
        assert to_polite(text) == text


def test_the_rest_of_the_text_is_kept_byte_for_byte():
    assert to_plain("음… 그건 (아마) 괜찮을 거예요~ ㅎㅎ") == "음… 그건 (아마) 괜찮을 거야~ ㅎㅎ"


def test_bad_level_is_an_error():
    with pytest.raises(ValueError, match="level must be"):
        convert("먹었어", "undetermined")

"""Each cleaning rule on real-looking Korean lines, with literal expected outputs."""

from __future__ import annotations

import pytest

from chathuman_hf.data import clean
from chathuman_hf.data.clean import CleaningOptions, clean_utterance
from chathuman_hf.data.names import GIVEN_NAMES, SURNAMES, FakeNamer, korean_name


def fixed_namer(kind: str, index: str = "") -> str:
    return {"name": f"민수{index}", "phone": "010-0000-0000", "place": "서울 마포구"}[kind]


def test_system_marker_reasons() -> None:
    lines = ["아직 ㅠㅠㅠㅠ #@시스템#사진#", "#@시스템#동영상# 이거 봐", "점심 먹었어?"]
    assert [clean.system_marker(line) for line in lines] == ["photo_utterance", "system_utterance", None]


def test_fill_masks_names_phone_address() -> None:
    text = "#@이름# 주말에 뭐해? #@이름1#랑 #@이름2#도 와 번호는 #@전번# 집은 #@주소#"
    assert (
        clean.fill_masks(text, fixed_namer)
        == "민수 주말에 뭐해? 민수1랑 민수2도 와 번호는 010-0000-0000 집은 서울 마포구"
    )


def test_fill_masks_leaves_other_masks() -> None:
    assert clean.fill_masks("계좌 #@금융# 로 보내 #@이모티콘#", fixed_namer) == "계좌 #@금융# 로 보내 #@이모티콘#"


def test_remove_masks() -> None:
    lines = [
        "ㅋㅋ 귀엽다 #@이모티콘#",
        "여기 봐 #@URL# 진짜 웃김",
        "링크 @URL 참고",
        "계좌는 #@금융# 이야",
        "#@계정# 팔로우해",
    ]
    assert [clean.collapse_whitespace(clean.remove_masks(line)) for line in lines] == [
        "ㅋㅋ 귀엽다",
        "여기 봐 진짜 웃김",
        "링크 참고",
        "계좌는 이야",
        "팔로우해",
    ]


def test_remove_parentheses_nested() -> None:
    lines = ["떡볶이 (매운 거) 먹자", "오늘 회의(진짜 (길었음)) 끝", "(웃음) 알겠어"]
    assert [clean.collapse_whitespace(clean.remove_parentheses(line)) for line in lines] == [
        "떡볶이 먹자",
        "오늘 회의 끝",
        "알겠어",
    ]


def test_collapse_repeats() -> None:
    lines = [
        "나 부산 가 ㅋㅋㅋㅋㅋ",
        "배고파 ㅠㅠㅠㅠㅠ ㅜㅜㅜ",
        "음.....그래",
        "ㅎㅎㅎ 좋아",
        "드라마 정주행 중 키키키키",
        "ㅋㅋ 딱 두 개",
        "뭘 받은 건지…",
        "나는 좋은데 ….",
    ]
    assert [clean.collapse_repeats(line) for line in lines] == [
        "나 부산 가 ㅋㅋ",
        "배고파 ㅠㅠ ㅜㅜ",
        "음..그래",
        "ㅎㅎ 좋아",
        "드라마 정주행 중 ㅋㅋ",
        "ㅋㅋ 딱 두 개",
        "뭘 받은 건지..",
        "나는 좋은데 ..",
    ]


def test_single_ki_is_kept() -> None:
    assert clean.collapse_repeats("키 큰 사람") == "키 큰 사람"


def test_strip_symbols() -> None:
    lines = ["좋아♥♥ 내일 봐😀", "가격은 3,000원! 괜찮지?", "헐…대박★", "오케이~ ^^"]
    assert [clean.collapse_whitespace(clean.strip_symbols(line)) for line in lines] == [
        "좋아 내일 봐",
        "가격은 3,000원! 괜찮지?",
        "헐 대박",
        "오케이~ ^^",
    ]


def test_lowercase_only_changes_latin() -> None:
    assert clean.lowercase("오늘 NETFLIX 볼래? OK") == "오늘 netflix 볼래? ok"


def test_collapse_whitespace() -> None:
    assert clean.collapse_whitespace("  그니까   손 얼었어\n두 번째 줄\t ") == "그니까 손 얼었어 두 번째 줄"


def test_clean_utterance_all_rules() -> None:
    options = CleaningOptions()
    lines = [
        "#@이름# 주말에 뭐해?",
        "나 부산 가 ㅋㅋㅋㅋㅋ",
        "#@이모티콘#",
        "아직 ㅠㅠㅠㅠ #@시스템#사진#",
        "오늘 (진짜) Netflix 봄 😀.....",
    ]
    assert [clean_utterance(line, options, fixed_namer) for line in lines] == [
        ("민수 주말에 뭐해?", None),
        ("나 부산 가 ㅋㅋ", None),
        ("", "empty_after_cleaning"),
        ("", "photo_utterance"),
        ("오늘 netflix 봄 ..", None),
    ]


@pytest.mark.parametrize(
    ("switch", "expected"),
    [
        ("drop_system_utterances", "아직 ㅠㅠ"),
        ("remove_parentheses", "떡볶이 (매운 거) netflix ㅋㅋ 민수"),
        ("collapse_repeats", "떡볶이 netflix ㅋㅋㅋㅋ 민수"),
        ("lowercase", "떡볶이 Netflix ㅋㅋ 민수"),
        ("replace_names", "떡볶이 netflix ㅋㅋ"),
        ("strip_symbols", "떡볶이 netflix ㅋㅋ 민수 ★"),
    ],
)
def test_each_rule_can_be_switched_off(switch: str, expected: str) -> None:
    options = CleaningOptions(**{switch: False})
    line = (
        "아직 ㅠㅠㅠ #@시스템#사진#"
        if switch == "drop_system_utterances"
        else "떡볶이 (매운 거) Netflix ㅋㅋㅋㅋ #@이름# ★"
    )
    assert clean_utterance(line, options, fixed_namer) == (expected, None)


def test_masks_kept_when_removal_off() -> None:
    options = CleaningOptions(remove_masks=False, strip_symbols=False)
    assert clean_utterance("귀엽다 #@이모티콘#", options, fixed_namer) == ("귀엽다 #@이모티콘#", None)


def test_names_are_seeded_and_consistent_within_a_dialogue() -> None:
    namer = FakeNamer(7, "sum-1")
    first = clean.fill_masks("#@이름1# 안녕 #@이름2# #@이름1#", namer).split()
    assert first[0] == first[3]
    assert clean.fill_masks("#@이름1#", FakeNamer(7, "sum-1")) == first[0]
    name = korean_name(7, "sum-1", "1")
    assert name == first[0]
    assert name[-2:] in GIVEN_NAMES and (len(name) == 2 or name[0] in SURNAMES)
    names = {korean_name(seed, "sum-1", "1") for seed in range(30)}
    assert len(names) > 5

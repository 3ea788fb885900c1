"""Preference data: every format's fixture → the expected rows and drop counts (kept + dropped = read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chathuman_hf.data import DataArguments, DataFormatError, DataReport
from chathuman_hf.data.preferences import load_preferences

FIXTURES = Path(__file__).parent / "fixtures" / "preference"


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def bot(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def load(*names: str, **options: object) -> tuple[list[dict], list[dict], dict]:
    report = DataReport()
    data = load_preferences(DataArguments(data=[str(FIXTURES / n) for n in names], **options), report)
    summary = report.to_dict()
    records = summary["records"]
    assert records["kept"] + sum(records["dropped"].values()) == records["read"]
    return data.pairs.to_list(), data.ratings.to_list(), summary


def test_trl_conversational_pairs() -> None:
    pairs, ratings, report = load("trl_pairs.jsonl")
    assert ratings == []
    assert pairs == [
        {"prompt": [user("하늘은 무슨 색이야?")], "chosen": [bot("파란색이야.")], "rejected": [bot("초록색이야.")]},
        {
            "prompt": [{"role": "system", "content": "친절하게 대답해."}, user("배고파"), bot("뭐 먹을래?"),
                       user("라면 어때?")],
            "chosen": [bot("좋지! 계란 넣어서 먹자.")],
            "rejected": [bot("몰라.")],
        },
        {"prompt": [user("내 번호는 [전화번호]이야. 연락해 줘")], "chosen": [bot("알겠어, [전화번호]로 연락할게.")],
         "rejected": [bot("싫어.")]},
        {"prompt": [user("안녕")], "chosen": [bot("안녕!")], "rejected": [bot("안녕!!!")]},
        # the implicit-prompt form: the shared opening of chosen and rejected is the prompt
        {"prompt": [user("오늘 날씨 어때?")], "chosen": [bot("맑아서 산책하기 좋아.")],
         "rejected": [bot("날씨는 날씨지.")]},
    ]  # fmt: skip
    assert report["records"] == {
        "read": 10,
        "kept": 5,
        "dropped": {
            "duplicate_pair": 1,
            "empty_reply": 1,
            "malformed_record": 1,
            "not_one_reply": 1,
            "prompt_not_ending_with_user": 1,
        },
    }
    source = str(FIXTURES / "trl_pairs.jsonl")
    assert report["files"] == {source: {"format": "trl_preference", "encoding": "utf-8", "records": 10}}
    assert report["drop_examples"]["not_one_reply"] == [
        f"{source}: line 9: rejected holds roles ['user'], expected one assistant message"
    ]
    assert report["preferences"]["pairs"] == 5 and report["pii"]["total"] == {"phone": 2}


def test_trl_unpaired_ratings() -> None:
    pairs, ratings, report = load("trl_ratings.jsonl")
    assert pairs == []
    assert ratings == [
        {"prompt": [user("영화 추천해 줘")], "completion": [bot("인터스텔라 어때?")], "label": True},
        {"prompt": [user("영화 추천해 줘")], "completion": [bot("몰라.")], "label": False},
        {"prompt": [user("커피 마실까?")], "completion": [bot("좋아, 라떼 어때?")], "label": True},  # standard form
        {"prompt": [user("메일 보내 줘")], "completion": [bot("[이메일] 으로 보낼게.")], "label": False},
    ]
    assert report["records"]["dropped"] == {"conflicting_rating": 1, "duplicate_rating": 1, "malformed_record": 1}
    assert report["drop_examples"]["malformed_record"] == [
        f"{FIXTURES / 'trl_ratings.jsonl'}: line 7: label is 'yes', expected true or false"
    ]


def test_nothing_loaded_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps({"messages": [user("안녕"), bot("반가워")]}, ensure_ascii=False) + "\n", "utf-8")
    report = DataReport()
    with pytest.raises(DataFormatError) as err:
        load_preferences(DataArguments(data=[str(data)]), report)
    assert str(err.value).startswith("no preference pairs or ratings loaded (dropped records: {})")
    assert report.skipped == {
        str(data): "dialogues, not preference data (--rejected other|self builds pairs from them)"
    }

"""Preference data: every format's fixture → the expected rows and drop counts (kept + dropped = read)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chathuman_hf.data import DataArguments, DataFormatError, DataReport, load_dialogues
from chathuman_hf.data.detect import detect_format, normalize_format
from chathuman_hf.data.io import read_text
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


def test_llamafactory_ranking_sharegpt_and_alpaca() -> None:
    pairs, _, report = load("llamafactory_sharegpt.json", "llamafactory_alpaca.json")
    assert pairs == [
        {"prompt": [user("주말에 뭐 할까?"), bot("날씨가 좋으면 한강 어때?"), user("좋아, 누구랑 가지?")],
         "chosen": [bot("친구들한테 연락해 보자!")], "rejected": [bot("혼자 가.")]},
        {"prompt": [{"role": "system", "content": "너는 친절한 비서야."}, user("김민준 계좌 [계좌번호]로 보내 줘")],
         "chosen": [bot("송금은 직접 앱에서 해 줘.")], "rejected": [bot("[계좌번호]로 보냈어.")]},
        # Alpaca style: instruction and input joined by a newline (cleaning makes it a space), history before
        {"prompt": [user("다음 문장을 존댓말로 바꿔 줘. 밥 먹었어?")], "chosen": [bot("식사하셨어요?")],
         "rejected": [bot("밥 먹었냐?")]},
        {"prompt": [{"role": "system", "content": "날씨 도우미"}, user("오늘 날씨 어때?"), bot("맑아요."),
                    user("그럼 내일은?")],
         "chosen": [bot("내일은 비가 온대요.")], "rejected": [bot("몰라요.")]},
    ]  # fmt: skip
    assert report["records"] == {
        "read": 7,
        "kept": 4,
        "dropped": {"chosen_equals_rejected": 1, "empty_reply": 1, "tool_message": 1},
    }
    assert {info["format"] for info in report["files"].values()} == {"llamafactory"}


def test_llamafactory_kto_tags_are_ratings() -> None:
    pairs, ratings, report = load("llamafactory_kto.json")
    assert pairs == []
    assert ratings == [
        {"prompt": [user("심심해")], "completion": [bot("같이 게임할래?")], "label": True},
        {"prompt": [user("심심해")], "completion": [bot("그래서?")], "label": False},
        {"prompt": [user("배고파")], "completion": [bot("치킨 시킬까?")], "label": True},
    ]
    assert report["records"] == {"read": 3, "kept": 3, "dropped": {}}


def test_ultrafeedback_best_against_worst() -> None:
    pairs, _, report = load("ultrafeedback.jsonl")
    assert pairs == [
        # overall_score 8.5 / 3.0 / 7.0: the best against the worst
        {"prompt": [user("서울에서 가볼 만한 곳 추천해 줘")], "chosen": [bot("경복궁과 북촌 한옥마을을 추천해.")],
         "rejected": [bot("서울은 도시야.")]},
        # no overall_score: the mean of the aspect ratings ("N/A" left out)
        {"prompt": [user("산책 갈까?")], "chosen": [bot("좋아, 공원 가자!")], "rejected": [bot("아니.")]},
    ]  # fmt: skip
    assert report["records"]["dropped"] == {"tied_scores": 1, "too_few_completions": 1}
    assert report["drop_examples"]["tied_scores"] == [
        f"{FIXTURES / 'ultrafeedback.jsonl'}: line 2: every completion scores 6: no preference"
    ]


def test_parquet_as_the_hub_stores_ultrafeedback_binarized(tmp_path: Path) -> None:
    from datasets import Dataset

    rows = [
        {"prompt": "점심 뭐 먹지?", "prompt_id": "a1", "chosen": [user("점심 뭐 먹지?"), bot("김치찌개 어때?")],
         "rejected": [user("점심 뭐 먹지?"), bot("굶어.")], "messages": [user("점심 뭐 먹지?"), bot("김치찌개 어때?")],
         "score_chosen": 8.0, "score_rejected": 4.0},
        {"prompt": "안녕?", "prompt_id": "a2", "chosen": [user("안녕?"), bot("안녕!")],
         "rejected": [user("안녕?"), bot("응.")], "messages": [user("안녕?"), bot("안녕!")],
         "score_chosen": 5.0, "score_rejected": 5.0},
    ]  # fmt: skip
    path = tmp_path / "train-00000-of-00001.parquet"
    Dataset.from_list(rows).to_parquet(str(path))
    report = DataReport()
    data = load_preferences(DataArguments(data=[str(tmp_path)]), report)
    assert data.pairs.to_list() == [
        {"prompt": [user("점심 뭐 먹지?")], "chosen": [bot("김치찌개 어때?")], "rejected": [bot("굶어.")]}
    ]
    assert report.records_summary() == {"read": 2, "kept": 1, "dropped": {"tied_scores": 1}}
    assert report.files[str(path)] == {"format": "trl_preference", "encoding": "parquet", "records": 2}


def test_distilabel_generations_and_ratings(tmp_path: Path) -> None:
    path = tmp_path / "distilabel.jsonl"
    row = {"instruction": "인사해 줘", "generations": ["안녕하세요!", "뭐.", "반가워요."], "ratings": ["5", "1", None]}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    data = load_preferences(DataArguments(data=[str(path)]))
    assert data.pairs.to_list() == [{"prompt": [user("인사해 줘")], "chosen": [bot("안녕하세요!")],
                                     "rejected": [bot("뭐.")]}]  # fmt: skip


def test_every_preference_fixture_detected() -> None:
    found = {p.name: detect_format(read_text(p)[0], str(p)) for p in sorted(FIXTURES.iterdir())}
    assert found == {
        "llamafactory_alpaca.json": "llamafactory",
        "llamafactory_kto.json": "llamafactory",
        "llamafactory_sharegpt.json": "llamafactory",
        "trl_pairs.jsonl": "trl_preference",
        "trl_ratings.jsonl": "trl_unpaired",
        "ultrafeedback.jsonl": "ultrafeedback",
    }
    assert [normalize_format(n) for n in ("dpo", "kto", "ranking", "llamafactory_ranking")] == [
        "trl_preference", "trl_unpaired", "llamafactory", "llamafactory"
    ]  # fmt: skip


def test_large_preference_files_detected_from_their_opening(monkeypatch: pytest.MonkeyPatch) -> None:
    from chathuman_hf.data import detect

    monkeypatch.setattr(detect, "LARGE_JSON_CHARS", 10)
    sharegpt = (FIXTURES / "llamafactory_sharegpt.json").read_text(encoding="utf-8")
    # an array whose records open with "conversations", as plain ShareGPT does: chosen/rejected decide
    assert detect_format(sharegpt[: len(sharegpt) // 2], "cut.json") == "llamafactory"
    jsonl = (FIXTURES / "trl_ratings.jsonl").read_text(encoding="utf-8")
    assert detect_format(jsonl, "big.jsonl") == "trl_unpaired"
    ultra = (FIXTURES / "ultrafeedback.jsonl").read_text(encoding="utf-8")
    assert detect_format("[\n" + ultra.replace("\n", ",\n", 1), "array.json") == "ultrafeedback"


def test_the_dialogue_pipeline_leaves_preference_files_out(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "trl_pairs.jsonl", tmp_path / "pairs.jsonl")
    (tmp_path / "chat.jsonl").write_text(
        json.dumps({"messages": [user("안녕"), bot("반가워")]}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    report = DataReport()
    dialogues = load_dialogues(tmp_path, report=report)
    assert [row["messages"] for row in dialogues] == [[user("안녕"), bot("반가워")]]
    assert report.skipped == {
        str(tmp_path / "pairs.jsonl"): "preference data (trl_preference): read into preferences.jsonl"
    }
    assert report.records_summary() == {"read": 1, "kept": 1, "dropped": {}}


def test_bad_parquet_files_are_counted_or_stop_strict_runs(tmp_path: Path) -> None:
    from datasets import Dataset

    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    Dataset.from_list([{"messages": [user("안녕"), bot("반가워")]}]).to_parquet(str(tmp_path / "sft.parquet"))
    rating = {"prompt": "안녕", "completion": "반가워", "label": True}
    Dataset.from_list([rating]).to_parquet(str(tmp_path / "ok.parquet"))
    report = DataReport()
    data = load_preferences(DataArguments(data=[str(tmp_path)]), report)
    assert data.ratings.to_list() == [{"prompt": [user("안녕")], "completion": [bot("반가워")], "label": True}]
    assert report.records_summary() == {"read": 3, "kept": 1, "dropped": {"malformed_file": 1, "unknown_format": 1}}
    assert report.examples["unknown_format"] == [
        f"{tmp_path / 'sft.parquet'}: Parquet columns ['messages'] are no preference format (expected prompt/chosen/"
        "rejected, prompt/completion/label, conversations+chosen+rejected or completions)"
    ]
    assert report.examples["malformed_file"][0].startswith(f"{tmp_path / 'broken.parquet'}: cannot read as Parquet")
    with pytest.raises(DataFormatError, match=r"broken\.parquet: cannot read as Parquet .*\(strict mode\)$"):
        load_preferences(DataArguments(data=[str(tmp_path)], strict=True))


def test_standard_strings_and_the_openai_style_ranking(tmp_path: Path) -> None:
    rows = [
        {"prompt": "밥 먹었어?", "chosen": " 응, 방금 먹었어.", "rejected": " 몰라."},  # TRL standard
        {"chosen": "밥 먹었어? 응", "rejected": "밥 먹었어? 아니"},  # standard implicit: no turn boundary
        {"messages": [{"role": "user", "content": "뭐 해?"}], "chosen": {"role": "assistant", "content": "공부해."},
         "rejected": {"role": "assistant", "content": "왜?"}},  # LLaMA-Factory, OpenAI style
    ]  # fmt: skip
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    report = DataReport()
    data = load_preferences(DataArguments(data=[str(path)], format="dpo"), report)
    assert data.pairs.to_list() == [
        {"prompt": [user("밥 먹었어?")], "chosen": [bot("응, 방금 먹었어.")], "rejected": [bot("몰라.")]}
    ]
    assert report.records_summary()["dropped"] == {"malformed_record": 1, "missing_prompt": 1}
    ranking = load_preferences(DataArguments(data=[str(path)], format="llamafactory"))
    assert ranking.pairs.to_list()[-1] == {"prompt": [user("뭐 해?")], "chosen": [bot("공부해.")],
                                           "rejected": [bot("왜?")]}  # fmt: skip

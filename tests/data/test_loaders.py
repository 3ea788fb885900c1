"""Each loader end to end through ``load_dialogues`` on small real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chathuman_hf.data import DataReport, load_dialogues

FIXTURES = Path(__file__).parent / "fixtures" / "every_format"


def turns(dataset) -> list[list[tuple[str, str]]]:
    return [[(m["role"][0], m["content"]) for m in row["messages"]] for row in dataset]


def load(path: Path, **options):
    report = DataReport()
    return load_dialogues(path, report=report, **options), report


def test_aihub_summary_with_bom() -> None:
    dataset, report = load(FIXTURES / "aihub_summary.json", name_seed=3)
    assert dataset["dialogue_id"] == ["sum-1", "sum-2"]
    name = dataset[0]["messages"][0]["content"].split()[0]
    assert turns(dataset) == [
        [("u", f"{name} 주말에 뭐해?"), ("a", "나 부산 가 ㅋㅋ")],
        [
            ("u", "오늘 저녁 뭐 먹어?"),
            ("a", "떡볶이"),
            ("u", "좋아 같이 먹자"),
            ("a", dataset[1]["messages"][3]["content"]),
        ],
    ]
    assert "#@" not in dataset[1]["messages"][3]["content"]
    assert report.files[str(FIXTURES / "aihub_summary.json")] == {
        "format": "aihub_summary",
        "encoding": "utf-8-sig",
        "records": 2,
    }
    assert report.dropped == {"empty_after_cleaning": 1, "trailing_user_turn": 1}


def test_names_reproducible_and_seeded() -> None:
    first, _ = load(FIXTURES / "aihub_summary.json", name_seed=3)
    again, _ = load(FIXTURES / "aihub_summary.json", name_seed=3)
    assert first[0]["messages"] == again[0]["messages"]
    names = {load(FIXTURES / "aihub_summary.json", name_seed=s)[0][0]["messages"][0]["content"] for s in range(6)}
    assert len(names) > 1


def test_aihub_sns_drops_photo_utterance() -> None:
    dataset, report = load(FIXTURES / "aihub_sns.json")
    assert turns(dataset) == [[("u", "점심 먹었어?"), ("a", "김밥 먹을까 해")]]
    assert report.dropped == {"photo_utterance": 1}


def test_aihub_topic_folder_prefers_norm_text() -> None:
    dataset, report = load(FIXTURES / "aihub_topic")
    assert turns(dataset) == [
        [("u", "요즘 뭐 봐?"), ("a", "드라마 하나 정주행 중 ㅋㅋ"), ("u", "뭔데 뭔데"), ("a", "의사 나오는 거 ㅎㅎ")],
        [("u", "운동 다녀왔어"), ("a", "오 몇 킬로 뛰었어?")],
    ]
    assert dataset["source"] == [str(FIXTURES / "aihub_topic" / f"topic-{i}.json") for i in (1, 2)]


def test_chat_jsonl_keeps_system() -> None:
    dataset, report = load(FIXTURES / "chat.jsonl")
    assert turns(dataset) == [
        [("s", "너는 다정한 친구야."), ("u", "오늘 좀 피곤해"), ("a", "푹 쉬어. 따뜻한 차 한 잔 어때?")],
        [("u", "비 온대?"), ("a", "오후에 온대요. 우산 챙기세요!")],
    ]
    assert report.dropped == {"trailing_user_turn": 1}


def test_sharegpt() -> None:
    dataset, _ = load(FIXTURES / "sharegpt.json")
    assert dataset["dialogue_id"] == ["sg-1"]
    assert turns(dataset) == [
        [("u", "주말에 등산 갈래?"), ("a", "좋아요! 어느 산이요?"), ("u", "북한산"), ("a", "아침 일찍 출발해요.")]
    ]


def test_qa_tsv_question_answer_columns() -> None:
    dataset, report = load(FIXTURES / "qa.tsv")
    assert turns(dataset) == [[("u", "배고파"), ("a", "뭐라도 좀 드세요.")], [("u", "심심해"), ("a", "산책 어때요?")]]
    assert report.files[str(FIXTURES / "qa.tsv")]["format"] == "qa_table"


@pytest.mark.parametrize(("q", "a"), [("Q", "A"), ("prompt", "response"), ("input", "output"), ("질문", "답변")])
def test_qa_column_pairs_detected(tmp_path: Path, q: str, a: str) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(f"id,{q},{a}\n1,안녕,반가워요\n", encoding="utf-8")
    dataset, _ = load(path)
    assert turns(dataset) == [[("u", "안녕"), ("a", "반가워요")]]


def test_qa_column_override(tmp_path: Path) -> None:
    path = tmp_path / "custom.csv"
    path.write_text("질문,답변,내_질문,내_답변\n무시,무시,오늘 뭐해,집에서 쉬어요\n", encoding="utf-8")
    dataset, _ = load(path, question_column="내_질문", answer_column="내_답변")
    assert turns(dataset) == [[("u", "오늘 뭐해"), ("a", "집에서 쉬어요")]]


def test_cp949_csv(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    path.write_bytes("Q,A\n점심 뭐 먹지,김치찌개 어때요\n".encode("cp949"))
    dataset, report = load(path)
    assert turns(dataset) == [[("u", "점심 뭐 먹지"), ("a", "김치찌개 어때요")]]
    assert report.files[str(path)]["encoding"] == "cp949"


def test_conversation_csv_markers_and_newlines() -> None:
    dataset, report = load(FIXTURES / "conversation.csv")
    assert dataset["dialogue_id"] == ["c1", "c2"]
    assert turns(dataset) == [
        [("u", "안녕"), ("a", "안녕하세요 반가워요"), ("u", "뭐 해?"), ("a", "음악 듣고 있어요")],
        [("u", "오늘 날씨 좋다"), ("a", "그러게 산책 가자")],
    ]
    assert report.dropped == {"trailing_user_turn": 1}


def test_kakao_pc_multiline_system_lines_and_silence() -> None:
    dataset, report = load(FIXTURES / "kakao_pc.txt", assistant="이랑")
    assert turns(dataset) == [
        [
            ("u", "오늘 진짜 춥다"),
            ("a", "그니까 손 얼었어 두 번째 줄도 같은 메시지"),
            ("u", "핫초코 마시자"),
            ("a", "좋아 ㅋㅋ"),
        ],
        [("u", "자?"), ("a", "아니 아직")],
    ]
    assert report.dropped == {"kakao_system_line": 2}


def test_kakao_silence_option() -> None:
    dataset, _ = load(FIXTURES / "kakao_pc.txt", assistant="이랑", silence_minutes=0)
    assert len(dataset) == 1 and len(dataset[0]["messages"]) == 6


def test_kakao_assistant_choice_swaps_roles() -> None:
    dataset, report = load(FIXTURES / "kakao_pc.txt", assistant="지수")
    assert turns(dataset) == [[("u", "그니까 손 얼었어 두 번째 줄도 같은 메시지"), ("a", "핫초코 마시자")]]
    assert report.dropped == {
        "kakao_system_line": 2,
        "leading_assistant_turn": 2,
        "trailing_user_turn": 2,
        "no_user_assistant_pair": 1,
    }


def test_kakao_android_and_ios() -> None:
    android, report = load(FIXTURES / "kakao_android.txt", assistant="이랑")
    assert turns(android) == [[("u", "내일 몇 시에 만나?"), ("a", "11시 어때"), ("u", "좋아"), ("a", "늦지 마")]]
    assert report.dropped == {"kakao_system_line": 2}
    ios, _ = load(FIXTURES / "kakao_ios.txt", assistant="이랑")
    assert turns(ios) == [[("u", "퇴근했어?"), ("a", "방금!"), ("u", "고생했어 푹 쉬어"), ("a", "고마워 너도")]]


def test_kakao_csv_export(tmp_path: Path) -> None:
    path = tmp_path / "KakaoTalk_Chat.csv"
    path.write_text(
        "Date,User,Message\n"
        '2024-03-01 21:15:00,"지수","오늘 진짜 춥다"\n'
        '2024-03-01 21:16:00,"이랑","그니까\n손 얼었어"\n'
        '2024-03-01 21:16:30,"이랑","이모티콘"\n'
        '2024-03-01 23:30:00,"지수","자?"\n'
        '2024-03-01 23:31:00,"이랑","아니 아직 ㅋㅋㅋ"\n',
        encoding="utf-8-sig",
    )
    dataset, report = load(path, assistant="이랑")
    assert turns(dataset) == [
        [("u", "오늘 진짜 춥다"), ("a", "그니까 손 얼었어")],
        [("u", "자?"), ("a", "아니 아직 ㅋㅋ")],
    ]
    assert report.files[str(path)] == {"format": "kakao", "encoding": "utf-8-sig", "records": 2}
    assert report.dropped == {"kakao_system_line": 1}


def test_kakao_without_assistant_warns_and_uses_second_speaker(tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    shutil.copy(FIXTURES / "kakao_ios.txt", path)
    with pytest.warns(UserWarning, match="second speaker"):
        dataset, report = load(path)
    assert turns(dataset)[0][:2] == [("u", "퇴근했어?"), ("a", "방금!")]
    assert report.warnings and "--assistant" in report.warnings[0]


def test_group_chat_everyone_else_is_user(tmp_path: Path) -> None:
    path = tmp_path / "group.txt"
    path.write_text(
        "[민지] [오후 1:00] 점심 뭐 먹지\n[철수] [오후 1:01] 국밥\n[이랑] [오후 1:02] 국밥 좋다\n", encoding="utf-8"
    )
    dataset, _ = load(path, assistant="이랑")
    assert turns(dataset) == [[("u", "점심 뭐 먹지 국밥"), ("a", "국밥 좋다")]]


def test_role_swap_and_max_turns(tmp_path: Path) -> None:
    swapped, _ = load(FIXTURES / "sharegpt.json", role_swap=True)
    assert swapped["dialogue_id"] == ["sg-1", "sg-1#swap"]
    assert turns(swapped)[1] == [("u", "좋아요! 어느 산이요?"), ("a", "북한산")]
    chat, _ = load(FIXTURES / "chat.jsonl", role_swap=True)
    assert chat["dialogue_id"] == ["chat:1", "chat:2"]  # single exchanges have no other side
    split, _ = load(FIXTURES / "sharegpt.json", max_dialogue_turns=2)
    assert split["dialogue_id"] == ["sg-1#0", "sg-1#1"]
    assert turns(split) == [
        [("u", "주말에 등산 갈래?"), ("a", "좋아요! 어느 산이요?")],
        [("u", "북한산"), ("a", "아침 일찍 출발해요.")],
    ]


def test_num_proc_two_counts_match(tmp_path: Path) -> None:
    single, report1 = load(FIXTURES)
    double, report2 = load(FIXTURES, preprocessing_num_proc=2)
    assert sorted(double["dialogue_id"]) == sorted(single["dialogue_id"])
    assert report2.dropped == report1.dropped
    assert report2.sources == report1.sources


def test_many_small_files_stream(tmp_path: Path) -> None:
    folder = tmp_path / "topic"
    folder.mkdir()
    line = {"speaker": {"id": "1"}, "norm_text": "안녕"}
    for i in range(300):
        lines = [dict(line, id="1"), {"speaker": {"id": "2"}, "norm_text": f"반가워 {i}", "id": "2"}]
        doc = {"info": [{"id": f"t{i}", "annotations": {"lines": lines}}]}
        (folder / f"{i:04d}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    dataset, report = load(folder)
    assert len(dataset) == 300 and len(report.sources) == 300
    assert dataset[299]["messages"][1]["content"] == "반가워 299"

"""Our feedback log read back as preference data: pairs, ratings, re-ratings, opposite ratings, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chathuman_hf.data import DataArguments, DataFormatError, DataReport
from chathuman_hf.data.detect import detect_format
from chathuman_hf.data.feedback_log import FeedbackLog
from chathuman_hf.data.preferences import load_preferences

REPO = Path(__file__).resolve().parents[2]


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def bot(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


HUNGRY = [user("배고파")]
BORED = [user("심심해")]
CHAT = [user("안녕"), bot("안녕!"), user("뭐해?")]


def write_log(path: Path) -> None:
    """A log as the page, the terminal and the API write it (the real writer), then a crash's half line."""
    page = FeedbackLog(path, model="chatbot", revision="r1", source="page")
    page.rating(HUNGRY, "라면 먹자", 1, conversation="c1", reply_id="1")  # line 1: pairs with line 2
    page.rating(HUNGRY, "몰라", -1, conversation="c2", reply_id="1")  # line 2
    page.rating(BORED, "영화 볼래?", -1, conversation="c3", reply_id="2")  # line 3: rated again on line 4
    page.rating(BORED, "영화 볼래?", 1, conversation="c3", reply_id="2")  # line 4
    page.pair(CHAT, "그냥 쉬고 있어.", "몰라", how="retry", conversation="c4", reply_id="3")  # line 5
    page.rating(CHAT, "그냥 쉬고 있어.", 1, conversation="c4", reply_id="3")  # line 6: the pair holds it
    FeedbackLog(path, model="other", source="api").rating(HUNGRY, "밥 먹어", 1, reply_id="x")  # line 7
    FeedbackLog(path, model="chatbot", source="terminal").rating(
        [user("내 번호 010-2345-6789로 연락해")], "알겠어", 1, conversation="c5", reply_id="4"
    )  # line 8: the number never reached the file
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"schema": "chathuman_hf.feedback/1", "event": "vote", "messages": HUNGRY}) + "\n")
        handle.write('{"schema": "chathuman_hf.feedback/1", "event": "rating", "messa')  # line 10: cut by a crash


def load(path: Path, **options: object) -> tuple[list[dict], list[dict], dict]:
    report = DataReport()
    data = load_preferences(DataArguments(data=[str(path)], **options), report)
    summary = report.to_dict()
    records = summary["records"]
    assert records["kept"] + sum(records["dropped"].values()) == records["read"]
    return data.pairs.to_list(), data.ratings.to_list(), summary


def test_log_to_pairs_and_ratings(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    write_log(log)
    assert detect_format(log.read_text(encoding="utf-8"), str(log)) == "feedback_log"
    pairs, ratings, report = load(log, feedback_model=["chatbot"])
    assert pairs == [
        {"prompt": HUNGRY, "chosen": [bot("라면 먹자")], "rejected": [bot("몰라")]},  # lines 1 + 2
        {"prompt": CHAT, "chosen": [bot("그냥 쉬고 있어.")], "rejected": [bot("몰라")]},
    ]
    assert ratings == [
        {"prompt": BORED, "completion": [bot("영화 볼래?")], "label": True},  # the last rating counts
        {"prompt": [user("내 번호 [전화번호]로 연락해")], "completion": [bot("알겠어")], "label": True},
    ]
    assert report["records"] == {
        "read": 10,
        "kept": 5,
        "dropped": {"malformed_record": 2, "other_model": 1, "rating_in_pair": 1, "re_rated": 1},
    }
    assert report["files"] == {str(log): {"format": "feedback_log", "encoding": "utf-8", "records": 10}}
    assert report["drop_examples"]["re_rated"] == [f"{log}: line 3: rated again at line 4; the last rating counts"]
    assert report["drop_examples"]["malformed_record"] == [
        f"{log}: line 9: event is 'vote', expected 'rating' or 'pair'",
        f"{log}: line 10: invalid JSON (Unterminated string starting at at column 58)",
    ]
    assert report["preferences"]["sources"] == {str(log): {"pairs": 2, "ratings": 2, "paired_ratings": 2}}


def test_every_model_without_feedback_model(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    write_log(log)
    pairs, ratings, report = load(log)
    # the other model's 👍 on 배고파 is a third rating of that context: 라면 먹자 already paired with 몰라
    assert {"prompt": HUNGRY, "completion": [bot("밥 먹어")], "label": True} in ratings
    assert len(pairs) == 2 and len(ratings) == 3
    assert report["records"]["dropped"] == {"malformed_record": 2, "rating_in_pair": 1, "re_rated": 1}


def test_strict_stops_on_bad_lines_not_on_counted_rules(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    page = FeedbackLog(log, model="chatbot", source="page")
    page.rating(BORED, "영화 볼래?", -1, conversation="c", reply_id="1")
    page.rating(BORED, "영화 볼래?", 1, conversation="c", reply_id="1")
    _, ratings, report = load(log, strict=True)
    assert len(ratings) == 1 and report["records"]["dropped"] == {"re_rated": 1}
    with log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"schema": "chathuman_hf.feedback/1", "event": "rating", "messages": BORED,
                                 "reply": "응", "rating": 5}) + "\n")  # fmt: skip
    with pytest.raises(DataFormatError, match=r"line 3: rating is 5, expected 1 or -1 \(strict mode\)$"):
        load(log, strict=True)


def test_an_unknown_schema_is_one_line(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    FeedbackLog(log, model="chatbot").rating(HUNGRY, "라면 먹자", 1)
    newer = {"schema": "chathuman_hf.feedback/2", "event": "rating", "messages": HUNGRY, "reply": "응", "rating": 1}
    with log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(newer, ensure_ascii=False) + "\n")
    with pytest.raises(DataFormatError, match="line 2: schema 'chathuman_hf.feedback/2' is not one this version"):
        load(log)  # not a counted drop: a whole log of a newer version would vanish
    command = [sys.executable, str(REPO / "recipes" / "prepare.py"), "--data", str(log), "--output",
               str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {log}: line 2: schema 'chathuman_hf.feedback/2' is not one this version reads "
        "(chathuman_hf.feedback/1); upgrade chathuman_hf to read this log"
    )
    assert "Traceback" not in result.stderr


OPENWEBUI = Path(__file__).parent / "fixtures" / "feedback" / "openwebui-feedback-export.json"


def test_openwebui_export_to_pairs_and_ratings() -> None:
    assert detect_format(OPENWEBUI.read_text(encoding="utf-8"), str(OPENWEBUI)) == "openwebui_feedback"
    pairs, ratings, report = load(OPENWEBUI, feedback_model=["chatbot"])
    system = {"role": "system", "content": "친절하게 대답해."}
    assert pairs == [
        {"prompt": [system, user("배고파")], "chosen": [bot("라면 먹자")], "rejected": [bot("몰라")]},
    ]
    assert ratings == [
        {"prompt": [user("내 번호 [전화번호]야, 연락해 줘")], "completion": [bot("싫어.")], "label": False},
        {"prompt": [user("안녕")], "completion": [bot("뭐.")], "label": False},
        {"prompt": [system, user("배고파"), bot("라면 먹자"), user("뭐 넣을까?")], "completion": [bot("계란 넣자")],
         "label": True},
    ]  # fmt: skip
    assert report["records"] == {
        "read": 10,
        "kept": 5,
        "dropped": {"arena_other_models": 1, "duplicate_feedback": 1, "missing_message": 2, "other_model": 1},
    }
    assert report["files"] == {str(OPENWEBUI): {"format": "openwebui_feedback", "encoding": "utf-8", "records": 10}}
    assert report["drop_examples"]["missing_message"] == [
        f"{OPENWEBUI}: record 0: no snapshot.chat.history.messages: the rated message cannot be found",
        f"{OPENWEBUI}: record 3: message 'd-r1' is not in the snapshot's history",
    ]
    assert report["drop_examples"]["duplicate_feedback"] == [
        f"{OPENWEBUI}: record 9: record 7 rates the same message and was updated later"
    ]
    assert report["drop_examples"]["arena_other_models"] == [
        f"{OPENWEBUI}: record 5: an arena vote between ['gpt-4o'], none of them in --feedback_model"
    ]
    assert report["pii"]["total"] == {"phone": 1}
    assert report["preferences"]["sources"][str(OPENWEBUI)] == {"pairs": 1, "ratings": 3, "paired_ratings": 2}


def test_openwebui_every_model_and_bad_records(tmp_path: Path) -> None:
    records = json.loads(OPENWEBUI.read_text(encoding="utf-8"))
    records[2]["data"]["rating"] = "-1"  # llama3's 천만에! as a string 👎
    records[5]["data"]["rating"] = None  # a rating cleared in the page
    records.append({"type": "rating", "data": {"rating": 1}})  # meta lost
    export = tmp_path / "feedback-history-export-1765000000000.json"
    export.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    pairs, ratings, report = load(export)
    assert len(pairs) == 1
    assert {"prompt": [user("고마워")], "completion": [bot("천만에!")], "label": False} in ratings
    assert len(ratings) == 4
    assert report["records"] == {"read": 11, "kept": 6,
                                 "dropped": {"duplicate_feedback": 1, "malformed_record": 2, "missing_message": 2}}
    assert report["drop_examples"]["malformed_record"] == [
        f"{export}: record 5: data.rating is None, expected 1 or -1",
        f"{export}: record 10: expected an Open WebUI feedback: "
        '{"type": "rating", "data": {…}, "meta": {…}, "snapshot": {"chat": …}}',
    ]


def test_large_openwebui_export_detected_from_its_opening(monkeypatch: pytest.MonkeyPatch) -> None:
    from chathuman_hf.data import detect

    monkeypatch.setattr(detect, "LARGE_JSON_CHARS", 10)  # its chats hold "messages": [ ... ], not chat_json
    assert detect_format(OPENWEBUI.read_text(encoding="utf-8"), "big.json") == "openwebui_feedback"


def test_prepare_reads_a_log_and_an_export_together(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    write_log(log)
    command = [sys.executable, str(REPO / "recipes" / "prepare.py"), "--data", str(log), str(OPENWEBUI),
               "--feedback_model", "chatbot", "--output", str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["preferences.jsonl", "ratings.jsonl", "report.json"]
    assert len((out / "preferences.jsonl").read_text(encoding="utf-8").splitlines()) == 2 + 1
    assert len((out / "ratings.jsonl").read_text(encoding="utf-8").splitlines()) == 2 + 3
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["records"]["read"] == 20 and report["records"]["kept"] == 10
    assert "010-2345-6789" not in (out / "ratings.jsonl").read_text(encoding="utf-8")

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
    assert report["preferences"]["sources"] == {str(log): {"pairs": 2, "ratings": 2}}


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

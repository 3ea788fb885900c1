"""bench.feedback_loop's simulated person: the rating rule, the edit it makes, and the log it leaves as TRL rows."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("kiwipiepy")

from bench.feedback_person import edited, judge, log_to_rows  # noqa: E402
from chathuman_hf.data.feedback_log import FeedbackLog  # noqa: E402


@pytest.mark.parametrize(
    ("user", "reply", "expected"),
    [
        ("밥 먹었어?", "응 먹었어.", (True, "ok")),
        ("밥 먹었어?", "네 먹었어요.", (False, "polite_to_plain")),
        ("식사하셨어요?", "응 먹었어.", (False, "plain_to_polite")),
        ("식사하셨어요?", "네 먹었어요.", (True, "ok")),
        ("ㅋㅋㅋ", "좋아요.", (True, "ok")),  # a user message with no level accepts either
        ("ㅋㅋㅋ", "좋아.", (True, "ok")),
        ("배고파", "배고파", (False, "repeat")),
        ("배고파", "밥 밥 먹어", (False, "repeat")),
        ("배고파", "ㅋㅋ", (False, "no_level")),
        ("배고파", " ", (False, "empty")),
    ],
)
def test_rule(user, reply, expected):
    assert judge(user, reply) == expected


def test_edit_rewrites_the_level_only_when_that_was_the_fault():
    assert edited("배고파", "뭐 좀 드세요.") == "뭐 좀 먹어."
    assert edited("식사하셨어요?", "응 먹었어.") == "네 먹었어요."
    assert edited("밥 먹었어?", "응 먹었어.") is None  # passes already
    assert edited("배고파", "ㅋㅋ") is None  # no level to rewrite
    assert edited("ㅋㅋㅋ", "좋아요.") is None  # the user has no level


def test_log_to_rows(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl", model="sft")
    hungry, hello = [{"role": "user", "content": "배고파"}], [{"role": "user", "content": "안녕"}]
    log.rating(hungry, "뭐 좀 드세요.", -1, reply_id="a")
    log.rating(hungry, "뭐 좀 먹어.", 1, reply_id="b")  # the regeneration: a 👍 and a 👎 of one context
    log.rating(hello, "안녕하세요.", -1, reply_id="c")
    page = FeedbackLog(tmp_path / "feedback.jsonl", model="sft", source="page")
    page.pair(hello, "안녕.", "안녕하세요.", how="edit")
    assert log_to_rows(tmp_path / "feedback.jsonl", tmp_path / "rows") == {"ratings": 3, "pairs": 2}
    ratings = [json.loads(line) for line in (tmp_path / "rows" / "ratings.jsonl").read_text().splitlines()]
    assert [(r["completion"][0]["content"], r["label"]) for r in ratings] == [
        ("뭐 좀 드세요.", False), ("뭐 좀 먹어.", True), ("안녕하세요.", False)]
    pairs = [json.loads(line) for line in (tmp_path / "rows" / "pairs.jsonl").read_text().splitlines()]
    assert [(p["prompt"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [
        (hello, "안녕.", "안녕하세요."), (hungry, "뭐 좀 먹어.", "뭐 좀 드세요.")]

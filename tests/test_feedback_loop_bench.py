"""bench.feedback_loop's simulated person: the rating rule, and the edit it makes."""

from __future__ import annotations

import pytest

pytest.importorskip("kiwipiepy")

from bench.feedback_person import edited, judge  # noqa: E402


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

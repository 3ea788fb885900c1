"""ChatSession's replies as people rate them: 다시 siblings, keeping one, edits and 👍/👎 in the feedback log."""

from __future__ import annotations

import json

import pytest

from chathuman_hf.chat import ChatEngine, ChatSession
from chathuman_hf.chat.reply_turns import FeedbackOff
from chathuman_hf.data.feedback_log import FeedbackLog
from chathuman_hf.skills import SkillsConfig, build_router


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir)


def chat(engine, log=None, **kwargs):
    router = build_router(SkillsConfig(disabled=["weather", "stock"]))
    return ChatSession(engine, preset="greedy", router=router, max_new_tokens=6, feedback=log, **kwargs)


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_retry_adds_a_sibling_and_going_on_keeps_the_shown_one(engine, tmp_path):
    path = tmp_path / "feedback.jsonl"
    session = chat(engine, FeedbackLog(path, model="tiny", source="terminal"))
    first = session.reply("안녕")
    assert first.index == 0
    retry = session.regenerate(0)  # greedy samples for 다시: a different reply
    assert retry.index == 0 and retry.text != first.text
    assert session.turns.get(0).replies == [first.text, retry.text]
    assert session.history[-1]["content"] == retry.text  # the conversation goes on from the new sibling
    assert session.select(0, 0) == first.text
    assert session.history[-1]["content"] == first.text
    assert lines(path) == []  # nothing is chosen yet

    second = session.reply("뭐 해?")
    assert second.index == 1
    [pair] = lines(path)
    assert pair["event"] == "pair" and pair["how"] == "retry" and pair["source"] == "terminal"
    assert (pair["chosen"], pair["rejected"]) == (first.text, retry.text)
    assert pair["messages"] == [{"role": "user", "content": "안녕"}]
    assert pair["reply_id"] == f"{session.turns.conversation}-0-0"
    with pytest.raises(ValueError, match="newest reply only"):
        session.regenerate(0)
    session.reply("또 뭐 해?")
    assert len(lines(path)) == 1  # kept once
    before = [dict(m) for m in session.history]
    assert session.turns.rate(0, 1, sibling=1) == 1  # those two versions were paired already: only the rating
    assert session.history == before and session.turns.get(0).shown == 0  # an older reply's version stays


def test_thumbs_up_on_a_sibling_keeps_it_and_ratings_carry_the_context(engine, tmp_path):
    path = tmp_path / "feedback.jsonl"
    session = chat(engine, FeedbackLog(path, model="tiny", source="page"))
    a = session.reply("점심 뭐 먹을까")
    assert session.turns.rate(0, -1, comment="너무 짧아") == 1
    b = session.regenerate(0)
    assert session.turns.rate(0, 1) == 2  # the rating and the pair
    assert session.turns.rate(0, 1) == 1  # the pair is written once
    down, up, pair, again = lines(path)
    assert (down["event"], down["rating"], down["reply"], down["comment"]) == ("rating", -1, a.text, "너무 짧아")
    assert (up["rating"], up["reply"], up["reply_id"]) == (1, b.text, f"{session.turns.conversation}-0-1")
    assert (pair["how"], pair["chosen"], pair["rejected"]) == ("retry", b.text, a.text)
    assert again["event"] == "rating"
    assert all(line["messages"] == [{"role": "user", "content": "점심 뭐 먹을까"}] for line in (down, up, pair))

    session.reply("고마워")
    session.turns.rate(1, 1)
    assert lines(path)[-1]["messages"] == [{"role": "user", "content": "점심 뭐 먹을까"},
                                           {"role": "assistant", "content": b.text},
                                           {"role": "user", "content": "고마워"}]


def test_an_edit_replaces_the_reply_in_the_history_and_is_preferred(engine, tmp_path):
    path = tmp_path / "feedback.jsonl"
    session = chat(engine, FeedbackLog(path, model="tiny", source="page"))
    a = session.reply("주말에 뭐 해")
    assert session.turns.edit(0, "  친구랑 영화 보려고!  ") == 1
    assert session.history[-1] == {"role": "assistant", "content": "친구랑 영화 보려고!"}
    [edit] = lines(path)
    assert (edit["event"], edit["how"], edit["rejected"]) == ("pair", "edit", a.text)
    assert edit["chosen"] == "친구랑 영화 보려고!"
    with pytest.raises(ValueError, match="corrected"):
        session.regenerate(0)
    with pytest.raises(ValueError, match="empty"):
        session.turns.edit(0, "   ")
    with pytest.raises(ValueError, match="same as the reply"):
        session.turns.edit(0, "친구랑 영화 보려고!")
    session.reply("좋겠다")
    assert len(lines(path)) == 1  # an edited reply is not a retry choice


def test_without_a_log_retry_and_edit_work_and_ratings_say_how_to_keep_them(engine):
    session = chat(engine)
    session.reply("안녕")
    session.regenerate(0)
    session.turns.edit(0, "반가워!")
    assert session.history[-1]["content"] == "반가워!"
    with pytest.raises(FeedbackOff, match="--feedback_log PATH"):
        session.turns.rate(0, 1)


def test_skills_have_no_index_and_a_reset_forgets_the_replies(engine, tmp_path):
    session = chat(engine, FeedbackLog(tmp_path / "f.jsonl", model="tiny", source="page"))
    assert session.reply("지금 몇 시야").index is None
    assert session.reply("안녕").index == 0
    session.reply("초기화")
    with pytest.raises(LookupError, match="no reply #0"):
        session.turns.rate(0, 1)
    assert session.reply("안녕").index == 1  # indices are never reused: an old page button cannot rate it


def test_one_turn_window_can_retry(engine):
    session = chat(engine, max_turns=1)
    first = session.reply("안녕")
    assert session.history == []
    assert session.regenerate(first.index).index == 0

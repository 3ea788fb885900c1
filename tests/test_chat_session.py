"""ChatSession over the tiny model: chat template prompts, window, position limit, stops, presets, skills,
streaming.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone

import pytest
import torch

from chathuman_hf.chat import EMPTY_REPLY, ChatEngine, ChatSession, get_preset
from chathuman_hf.chat.presets import build_generation_config
from chathuman_hf.skills import SkillsConfig, build_router
from chathuman_hf.tokens.tokenizer import USER_TOKEN

FIXED = datetime(2026, 11, 25, 10, 7, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir)


def offline_router():
    return build_router(SkillsConfig(disabled=["weather", "stock"]), clock=lambda: FIXED)


def session(engine, **kwargs):
    kwargs.setdefault("max_new_tokens", 6)
    return ChatSession(engine, preset=kwargs.pop("preset", "greedy"), router=offline_router(), **kwargs)


def boost(engine, token_ids, amount=1.0e4):
    """Push the given token ids to the top of every next-token distribution (a forward hook on the LM head)."""
    def hook(_module, _inputs, output):
        output[..., token_ids] += amount
        return output
    return engine.model.lm_head.register_forward_hook(hook)


def test_prompt_is_the_saved_chat_template(engine):
    messages = [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "안녕! 반가워"},
                {"role": "user", "content": "점심 뭐 먹을까"}]
    ids = engine.prompt_ids(messages, max_new_tokens=8)
    expected = engine.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                    return_dict=False)
    assert ids == list(expected)
    text = engine.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == "</s><usr>안녕<sys>안녕! 반가워</s><usr>점심 뭐 먹을까<sys>"


def test_history_keeps_last_n_exchanges(engine):
    chat = session(engine, max_turns=3)  # the new message's exchange and the 2 before it, as in training
    for text in ["라면 이야기", "커피 이야기", "영화 이야기", "여행 이야기"]:
        assert chat.reply(text).skill is None
    users = [m["content"] for m in chat.history if m["role"] == "user"]
    assert users == ["영화 이야기", "여행 이야기"]
    prompt = engine.tokenizer.decode(engine.prompt_ids(chat.messages_for("고양이"), max_new_tokens=6,
                                                       max_turns=chat.max_turns))
    assert "영화" in prompt and "여행" in prompt and "고양이" in prompt and "커피" not in prompt


def test_window_default_comes_from_chat_window_json(tiny_model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    (copy / "chat_window.json").write_text(json.dumps({"max_turns": 2, "max_length": 256}), encoding="utf-8")
    assert ChatSession.from_pretrained(copy, use_skills=False).max_turns == 2
    (copy / "chat_window.json").unlink()
    assert ChatSession.from_pretrained(copy, use_skills=False).max_turns == 3
    with pytest.raises(ValueError, match="at least the new message"):
        ChatSession.from_pretrained(tiny_model_dir, use_skills=False, max_turns=0)


def test_a_model_trained_on_single_exchanges_sees_no_history(tiny_model_dir, tmp_path):
    """chat_window.json max_turns=1 (recipes/configs/chatbotdata.yaml): each prompt holds the new message alone."""
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    (copy / "chat_window.json").write_text(json.dumps({"max_turns": 1, "max_length": 256}), encoding="utf-8")
    chat = ChatSession.from_pretrained(copy, preset="greedy", use_skills=False, max_new_tokens=4)
    chat.reply("라면 이야기")
    assert chat.history == []
    seen = []
    original = chat.engine.prompt_ids

    def spy(messages, **kwargs):
        ids = original(messages, **kwargs)
        seen.append(chat.engine.tokenizer.decode(ids))
        return ids

    chat.engine.prompt_ids = spy
    chat.reply("커피 이야기")
    assert len(seen) == 1 and "커피" in seen[0] and "라면" not in seen[0]


def test_prompt_never_exceeds_position_limit(engine):
    limit = engine.model.config.n_positions
    chat = session(engine, max_new_tokens=10)
    chat.history = [{"role": "user", "content": "아주 긴 이야기 " * 40},
                    {"role": "assistant", "content": "그렇구나 " * 40}] * 3
    ids = engine.prompt_ids(chat.messages_for("그래서?"), max_new_tokens=10, max_turns=4)
    assert len(ids) + 10 <= limit
    assert "그래서?" in engine.tokenizer.decode(ids)
    with pytest.warns(UserWarning, match="keeping its last"):
        ids = engine.prompt_ids([{"role": "user", "content": "가나다라 " * 400}], max_new_tokens=10)
    assert len(ids) + 10 <= limit and ids[0] == engine.tokenizer.bos_token_id
    with pytest.warns(UserWarning, match="keeping its last"):
        assert chat.reply("가나다라 " * 400).text  # generation itself stays inside the positions


@pytest.mark.parametrize("stop", ["usr", "eos"])
def test_generation_stops_at_user_token_or_eos(engine, stop):
    tok = engine.tokenizer
    stop_id = tok.convert_tokens_to_ids(USER_TOKEN) if stop == "usr" else tok.eos_token_id
    handle = boost(engine, [stop_id])
    try:
        generation = engine.generate([{"role": "user", "content": "안녕"}], get_preset("greedy", max_new_tokens=20))
        chat = ChatSession(engine, preset="greedy", use_skills=False)
        shown, streamed = chat.reply("안녕").text, "".join(chat.stream("안녕"))
    finally:
        handle.remove()
    # the engine reports what the model generated (nothing: the API answers ""), the page and terminal say so
    assert (generation.completion_tokens, generation.finish_reason, generation.text) == (1, "stop", "")
    assert shown == streamed == EMPTY_REPLY


def test_banned_words_are_never_generated(engine):
    word_ids = engine.tokenizer.encode("엄마", add_special_tokens=False)
    handle = boost(engine, word_ids, amount=50.0)
    try:
        free = engine.generate([{"role": "user", "content": "안녕"}],
                               get_preset("greedy", max_new_tokens=8, banned_words=()))
        banned = engine.generate([{"role": "user", "content": "안녕"}],
                                 get_preset("greedy", max_new_tokens=8, banned_words=("엄마",)))
    finally:
        handle.remove()
    assert "엄마" in free.text
    assert "엄마" not in banned.text


def test_seed_preset_matches_the_seed_settings(engine):
    config = build_generation_config(engine.base_config, get_preset("seed"), engine.tokenizer)
    assert (config.num_beams, config.do_sample, config.temperature, config.top_p) == (3, True, 0.8, 0.92)
    assert (config.repetition_penalty, config.no_repeat_ngram_size, config.max_new_tokens) == (1.25, 3, 25)
    assert config.bad_words_ids and config.use_cache
    usr = engine.tokenizer.convert_tokens_to_ids(USER_TOKEN)
    assert sorted(config.eos_token_id) == sorted([engine.tokenizer.eos_token_id, usr])
    torch.manual_seed(0)
    chat = ChatSession(engine, preset="seed", use_skills=False, max_new_tokens=6)
    assert chat.reply("안녕").skill is None and len(chat.history) == 2
    assert "".join(chat.stream("고마워")) == chat.last_reply.text  # beams: the whole reply in one piece
    with pytest.raises(ValueError, match="Unknown generation preset"):
        get_preset("turbo")


def test_streaming_gives_the_same_reply_as_reply(engine):
    streamed, whole = session(engine, max_new_tokens=12), session(engine, max_new_tokens=12)
    pieces = list(streamed.stream("오늘 너무 피곤하다"))
    answer = whole.reply("오늘 너무 피곤하다")
    assert len(pieces) > 1
    assert "".join(pieces).replace(" ", "") == answer.text.replace(" ", "")
    assert streamed.last_reply.text == answer.text and streamed.history == whole.history


def test_stream_error_is_raised_and_lock_released(engine):
    handle = engine.model.lm_head.register_forward_hook(lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    try:
        with pytest.raises(RuntimeError, match="boom"):
            list(session(engine).stream("안녕"))
    finally:
        handle.remove()
    assert not engine.lock.locked()
    assert session(engine).reply("안녕").text


def test_skills_answer_before_the_model(engine):
    calls = []
    handle = engine.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        chat = session(engine)
        assert chat.reply("지금 몇 시야").text == "지금은 한국 시간으로 2026년 11월 25일 수요일 오후 7시 7분이에요."
        assert chat.reply("씨 발 진짜").skill == "profanity"
        assert chat.reply("dkssud").skill == "keyboard"
        assert calls == [] and chat.history == []
        assert chat.reply("안녕").skill is None and calls
        assert len(chat.history) == 2
        assert chat.reply("초기화").skill == "reset" and chat.history == []
        assert "".join(chat.stream("로또 번호 뽑아줘")).startswith("행운의 번호를 뽑았어요")
    finally:
        handle.remove()


def test_sessions_are_isolated(engine):
    alice, bob = session(engine, max_turns=4), session(engine, max_turns=4)
    for a, b in [
        ("나는 민수야", "나는 지영이야"), ("사과 좋아해", "바나나 좋아해"), ("내일 시험이야", "내일 여행 가")
    ]:
        alice.reply(a)
        bob.reply(b)
    alice_text = " ".join(m["content"] for m in alice.history if m["role"] == "user")
    bob_text = " ".join(m["content"] for m in bob.history if m["role"] == "user")
    assert alice_text == "나는 민수야 사과 좋아해 내일 시험이야"
    assert bob_text == "나는 지영이야 바나나 좋아해 내일 여행 가"
    prompt = engine.tokenizer.decode(engine.prompt_ids(bob.messages_for("뭐해"), max_new_tokens=6, max_turns=4))
    assert "민수" not in prompt and "사과" not in prompt and "지영" in prompt
    alice.reset()
    assert alice.history == [] and len(bob.history) == 6


def test_empty_message_is_refused(engine):
    with pytest.raises(ValueError, match="empty"):
        session(engine).reply("   ")

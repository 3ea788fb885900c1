"""What the server answers is what the model may say (issue 34): a speech level the chat template cannot take is a
400 before any stream; no reasoning block is shown; what is streamed is what is returned, on the page, /api/chat,
/v1 and in ChatSession (chat.py). The real server (uvicorn on loopback), tiny models on real chat templates, made to
write a given reply (tests/helpers/scripted.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from chathuman_hf.chat import EMPTY_REPLY, ChatEngine, ChatSession, get_preset
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.skills import SkillsConfig
from tests.helpers.real_templates import make_real_template_model_dir
from tests.helpers.scripted import scripted

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def sse(text: str) -> list:
    return [b[6:] if b[6:] == "[DONE]" else json.loads(b[6:]) for b in text.split("\n\n") if b.startswith("data: ")]


@pytest.fixture(scope="module")
def gemma2_engine(tmp_path_factory):
    model_dir = make_real_template_model_dir(tmp_path_factory.mktemp("gemma2") / "gemma2", "gemma2")
    return ChatEngine.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def gemma2(gemma2_engine):
    app = create_app(engine=gemma2_engine, preset="greedy", preset_overrides={"max_new_tokens": 3},
                     skills=SkillsConfig(disabled=["weather", "stock"]))
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield app, client


@pytest.mark.parametrize("path", ["/page/api/chat", "/page/api/chat/stream"])
@pytest.mark.parametrize("level, message", [("polite", "안녕"), ("plain", "뭐 해?"), ("mirror", "안녕하세요")])
def test_a_speech_level_the_template_cannot_take_is_a_400_before_any_stream(gemma2, path, level, message):
    """Gemma 2's template raises on a system message, which is how a speech level is asked for."""
    app, client = gemma2
    session = f"refused-{level}-{path.count('/')}"
    response = client.post(path, json={"session_id": session, "message": message, "speech_level": level})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")  # not a started event stream
    error = response.json()["error"]
    assert error["message"] == ("The model's chat template refuses this conversation: System role not supported "
                                '(speech_level adds a system message: send "speech_level": "none")')
    assert error["param"] == "speech_level" and error["type"] == "invalid_request_error"
    assert app.state.store.get(session).session.history == []  # nothing was generated or remembered


@pytest.mark.parametrize("path", ["/page/api/chat", "/page/api/chat/stream"])
@pytest.mark.parametrize("level, message", [
    ("none", "안녕"), (None, "안녕"), ("mirror", "ㅋㅋ"), ("polite", "몇 시야?")])
def test_what_needs_no_system_message_is_answered(gemma2, path, level, message):
    """No level, a mirror with nothing to mirror, or a skill's answer (no model, no template): 200."""
    _, client = gemma2
    response = client.post(path, json={"session_id": f"ok-{level}", "message": message, "speech_level": level})
    assert response.status_code == 200, response.text
    if path.endswith("stream"):
        events = sse(response.text)
        assert events[-1]["type"] == "done" and not any(e["type"] == "error" for e in events)


def test_a_server_speech_level_the_template_cannot_take_stops_at_start(gemma2_engine):
    with pytest.raises(ValueError, match=r"^--speech_level polite: The model's chat template refuses this "
                                         r"conversation: System role not supported \(the level is asked for"):
        create_app(engine=gemma2_engine, speech_level="polite")
    create_app(engine=gemma2_engine, speech_level="none")


# Qwen3's tokenizer as the model ships it: <think> and </think> are added tokens that decoding keeps.
@pytest.fixture(scope="module")
def qwen3_engine(tmp_path_factory):
    model_dir = make_real_template_model_dir(tmp_path_factory.mktemp("qwen3") / "qwen3", "qwen3")
    return ChatEngine.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def qwen3(qwen3_engine):
    app = create_app(engine=qwen3_engine, preset="greedy",
                     preset_overrides={"max_new_tokens": 24, "no_repeat_ngram_size": 0}, use_skills=False)
    with scripted(qwen3_engine.model) as script, serve_in_thread(app) as base, \
            httpx.Client(base_url=base, timeout=60) as client:
        yield qwen3_engine, client, script


def reply_ids(tokenizer, text: str, *, end: bool = True) -> list[int]:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids + [tokenizer.convert_tokens_to_ids("<|im_end|>")] if end else ids


def everywhere(client, **v1) -> dict[str, str]:
    """The reply as each front end streams it and returns it (fresh sessions, the same message)."""
    ask = {"messages": [{"role": "user", "content": "안녕"}], **v1}
    page = sse(client.post("/page/api/chat/stream", json={"message": "안녕"}).text)
    chunks = [c for c in sse(client.post("/v1/chat/completions", json={**ask, "stream": True}).text)[:-1]
              if c["choices"]]
    return {
        "page": client.post("/page/api/chat", json={"message": "안녕"}).json()["reply"],
        "page stream": "".join(e["text"] for e in page if e["type"] == "delta"),
        "page stream done": page[-1]["reply"],
        "v1": client.post("/v1/chat/completions", json=ask).json()["choices"][0]["message"]["content"],
        "v1 stream": "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks),
    }


@pytest.mark.parametrize("written, shown", [
    ("<think>\n\n</think>\n\n반가워요 안녕하세요", "반가워요 안녕하세요"),  # Qwen3's empty block before every reply
    ("<think>\n밥 먹을 생각\n</think>\n\n반가워요", "반가워요"),
    ("<think></think>반가워요", "반가워요"),
    ("\n<think>\n\n</think>\n\n\n반가워요 <think> 안녕", "반가워요 <think> 안녕"),  # only a leading block is reasoning
    ("<3 반가워요", "<3 반가워요"),  # held back while it may begin a tag, then shown
    ("<thin 반가워요", "<thin 반가워요"),
])
def test_a_reasoning_block_is_never_shown_and_the_stream_is_the_reply(qwen3, written, shown):
    engine, client, script = qwen3
    script[0] = reply_ids(engine.tokenizer, written)
    assert everywhere(client) == dict.fromkeys(["page", "page stream", "page stream done", "v1", "v1 stream"], shown)


def test_a_reply_still_thinking_shows_none_of_its_thoughts(qwen3):
    engine, client, script = qwen3
    script[0] = reply_ids(engine.tokenizer, "<think>\n밥 먹을 생각", end=False)  # cut by max_new_tokens
    seen = everywhere(client)  # nothing shown: the page says so in words, the API returns the empty text
    assert seen == {"page": EMPTY_REPLY, "page stream": EMPTY_REPLY, "page stream done": EMPTY_REPLY,
                    "v1": "", "v1 stream": ""}


def test_the_session_and_engine_split_the_reasoning_off(qwen3_engine):
    """What chat.py streams and ChatSession remembers; Generation.reasoning keeps the block's text."""
    session = ChatSession(qwen3_engine, preset="greedy", use_skills=False, no_repeat_ngram_size=0)
    with scripted(qwen3_engine.model, reply_ids(qwen3_engine.tokenizer, "<think>\n밥 생각\n</think>\n\n반가워요")):
        pieces = list(session.stream("안녕"))
        assert "".join(pieces) == session.last_reply.text == "반가워요"
        assert session.last_generation.reasoning == "밥 생각"
        assert session.history[-1] == {"role": "assistant", "content": "반가워요"}
        assert session.reply("또 안녕").text == "반가워요"


def test_a_block_the_prompt_opened_is_reasoning_too(tmp_path):
    """DeepSeek-R1's template ends the prompt with <think>: the reply is "…</think>answer" (a template saved models
    refuse to train on, but a ChatEngine built in Python takes)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = make_real_template_model_dir(tmp_path / "r1", "deepseek_r1_distill")
    engine = ChatEngine(AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir))
    end = engine.tokenizer.convert_tokens_to_ids("<｜end▁of▁sentence｜>")
    preset = get_preset("greedy", no_repeat_ngram_size=0)
    with scripted(engine.model, engine.tokenizer.encode("밥 생각\n</think>\n\n반가워요", add_special_tokens=False)
                  + [end]):
        stream = engine.stream([{"role": "user", "content": "안녕"}], preset)
        pieces = []
        with pytest.raises(StopIteration) as stop:
            while True:
                pieces.append(next(stream))
        result = stop.value.value
        assert "".join(pieces) == result.text == engine.generate([{"role": "user", "content": "안녕"}], preset).text
    assert (result.text, result.reasoning) == ("반가워요", "밥 생각")


# 반가워요 안녕하세요 in Qwen3's byte-level pieces: ë° ĺ ê°Ģ ìĽĮ ìļĶ Ġìķ Īë ħ ķ íķĺ ìĦ¸ìļĶ (the 7th, Īë, ends 안 and
# begins 녕: a reply that stops there ends mid-syllable).
@pytest.mark.parametrize("tokens, cut, shown", [
    (7, False, "반가워요 안"), (7, True, "반가워요 안"), (8, False, "반가워요 안"), (6, False, "반가워요"),
    (10, True, "반가워요 안녕하"), (11, False, "반가워요 안녕하세요"),
])
def test_a_reply_ending_mid_syllable_streams_what_it_returns(qwen3, tokens, cut, shown):
    """It ends there (end of turn), or /v1's max_tokens cuts it there (the page's replies end at the end of turn)."""
    engine, client, script = qwen3
    written = reply_ids(engine.tokenizer, "반가워요 안녕하세요", end=False)
    script[0] = written[:tokens] + reply_ids(engine.tokenizer, "")
    seen = everywhere(client, **({"max_tokens": tokens} if cut else {}))
    assert seen == dict.fromkeys(seen, shown)


@pytest.mark.parametrize("batch", [1, 2], ids=["one-at-a-time", "batched"])
@pytest.mark.parametrize("text, tokens, shown", [
    ("반가워요 안녕하세요", 7, "반가워요 안"), ("<think>\n\n</think>\n\n반가워요 안녕하세요", 13, "반가워요 안")])
def test_streamed_is_returned_one_at_a_time_and_batched(qwen3_engine, batch, text, tokens, shown):
    engine = ChatEngine(qwen3_engine.model, qwen3_engine.tokenizer, max_batch_size=batch, name="qwen3")
    preset = get_preset("greedy", no_repeat_ngram_size=0, max_new_tokens=tokens)
    ask = [{"role": "user", "content": "안녕"}]
    with scripted(engine.model, reply_ids(engine.tokenizer, text, end=False)):
        stream = engine.stream(ask, preset)
        pieces = []
        with pytest.raises(StopIteration) as stop:
            while True:
                pieces.append(next(stream))
        assert "".join(pieces) == stop.value.value.text == engine.generate(ask, preset).text == shown
        assert stop.value.value.finish_reason == "length"


@pytest.mark.parametrize("name", ["qwen3", "exaone4", "gemma2", "byte-fallback"])
def test_what_is_shown_of_every_prefix_begins_what_is_returned(name, request):
    """The rule behind the stream: for every token prefix of a reply, what may be shown is a prefix of the final text
    (real templates' byte-level tokenizers, our byte-fallback one; emoji, Hanja, a reasoning block, a '<' that is not
    a tag)."""
    from functools import partial

    from transformers import AutoTokenizer

    from chathuman_hf.chat.reply_text import final_text, split_reply
    from tests.helpers.real_templates import real_template_tokenizer

    if name == "byte-fallback":
        tokenizer = AutoTokenizer.from_pretrained(request.getfixturevalue("tiny_model_dir"))
    else:
        tokenizer = real_template_tokenizer(name)
    decode = partial(tokenizer.decode, skip_special_tokens=True)
    texts = ("<think>\n생각\n</think>\n\n밥 😀 먹었어 漢字 좋아👍🇰🇷", "<3 반가워요  안녕하세요\n\n ",
             "ㅋㅋ <thought>아</thought>")
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        for k in range(len(ids) + 1):
            final = final_text(decode, ids[:k])[1]
            for j in range(k + 1):
                assert final.startswith(split_reply(decode(ids[:j]), final=False)[1]), (text, j, k)

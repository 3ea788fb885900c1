"""Every OpenAI request field honoured or refused (docs/serving.md's field table, one test per row), driven over
loopback with the real ``openai`` and ``langchain-openai`` clients against the tiny model (issues 31, 34)."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import torch

from chathuman_hf.chat import ChatEngine, get_preset
from chathuman_hf.chat.penalties import LogitBias, PresenceFrequencyPenalty
from chathuman_hf.chat.reply_options import ReplyOptions
from chathuman_hf.korean.analysis import with_level_instruction
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.skills import SkillsConfig

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SKILLS = SkillsConfig(disabled=["weather", "stock"])
HELLO = [{"role": "user", "content": "안녕 오늘 뭐 했어"}]
MAX_NEW = 8


@pytest.fixture(scope="module")
def alone(tiny_model_dir):
    """One reply at a time (``model.generate``)."""
    return ChatEngine.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def servers(alone):
    """Base URLs: ``batched`` (continuous batching), ``alone`` (one at a time), ``skills`` (``--skills_on_api`` and
    ``--speech_level polite``); all greedy by default, replies of at most 8 tokens."""
    batched = ChatEngine(alone.model, alone.tokenizer, generation_config=alone.base_config, window=alone.window,
                         name=alone.name, max_batch_size=4)
    common = {"preset": "greedy", "preset_overrides": {"max_new_tokens": MAX_NEW}, "skills": SKILLS}
    apps = {"batched": create_app(engine=batched, **common), "alone": create_app(engine=alone, **common),
            "skills": create_app(engine=alone, skills_on_api=True, speech_level="polite", **common)}
    with serve_in_thread(apps["batched"]) as b, serve_in_thread(apps["alone"]) as a, \
            serve_in_thread(apps["skills"]) as s:
        yield {"batched": b, "alone": a, "skills": s}


def client(servers, which: str = "batched") -> openai.OpenAI:
    return openai.OpenAI(base_url=servers[which] + "/v1", api_key="unused", max_retries=0, timeout=120)


def ask(servers, which: str = "batched", messages=HELLO, **fields):
    return client(servers, which).chat.completions.create(model=None, messages=messages, **fields)


def refused(servers, param: str, **fields) -> str:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(servers, **fields)
    error = caught.value.body
    assert caught.value.status_code == 400 and error["param"] == param and error["type"] == "invalid_request_error"
    return error["message"]


def greedy_ids(engine: ChatEngine, messages=HELLO, max_new: int = MAX_NEW, **overrides) -> tuple[list[int], list[int]]:
    """(prompt ids, reply ids) of ``model.generate`` with the server's greedy preset (the reference)."""
    config = engine.generation_config(get_preset("greedy", max_new_tokens=max_new, **overrides))
    ids = engine.prompt_ids(messages, max_new_tokens=max_new)
    out = engine.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                generation_config=config)
    return ids, out[0, len(ids):].tolist()


def text_of(engine: ChatEngine, ids: list[int]) -> str:
    return engine.tokenizer.decode(ids, skip_special_tokens=True).rstrip("\ufffd").strip()


# --- messages, max_tokens, usage ---

def test_messages_image_part_is_refused_not_dropped(servers):
    parts = [{"type": "text", "text": "이거 뭐야"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    message = refused(servers, "messages[0].content", messages=[{"role": "user", "content": parts}])
    assert "'image_url' content part" in message


@pytest.mark.parametrize("which", ["batched", "alone"])
def test_max_tokens_1_is_the_models_one_token(servers, alone, which):
    """Issue 34 item 12: max_tokens 1 answered a canned sentence the model never generated."""
    prompt, ids = greedy_ids(alone, max_new=1)
    reply = ask(servers, which, max_tokens=1, temperature=0)
    assert reply.choices[0].message.content == text_of(alone, ids) and reply.choices[0].finish_reason == "length"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (len(prompt), 1)
    byte = next(i for i in range(len(alone.tokenizer)) if alone.tokenizer.decode([i]) == "\ufffd")  # a lone byte
    cut = ask(servers, which, max_tokens=1, temperature=0, logit_bias={str(byte): 100})
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("", "length")  # not a canned sentence
    eos = ask(servers, which, temperature=0, logit_bias={str(alone.tokenizer.eos_token_id): 100})
    assert (eos.choices[0].message.content, eos.choices[0].finish_reason) == ("", "stop")


def test_max_completion_tokens_too_large_is_a_400_naming_both_numbers(servers, alone):
    prompt = len(alone.prompt_ids(HELLO, max_new_tokens=1))
    message = refused(servers, "max_tokens", max_completion_tokens=300)
    assert message == (f"'max_tokens' or 'max_completion_tokens' is too large: 300. This model's maximum context "
                       f"length is 256 tokens and your request has {prompt} input tokens (300 > 256 - {prompt}).")
    exact = ask(servers, max_completion_tokens=256 - prompt, temperature=0)  # every position used is fine
    assert exact.usage.prompt_tokens == prompt


def test_history_drops_whole_older_exchanges_and_usage_is_what_the_model_saw(servers, alone):
    old = [{"role": "user", "content": "아주 긴 이야기 " * 30}, {"role": "assistant", "content": "그렇구나 " * 30}]
    messages = [*old, *old, {"role": "user", "content": "그래서?"}]
    reply = ask(servers, messages=messages, max_tokens=100, temperature=0)
    seen = alone.prompt_ids(messages, max_new_tokens=100, max_turns=3, cut_newest=False)
    assert reply.usage.prompt_tokens == len(seen) <= 256 - 100
    assert alone.tokenizer.decode(seen).count("아주 긴 이야기") in (0, 30)  # whole exchanges, never a cut one


# --- sampling fields ---

@pytest.mark.parametrize("which", ["batched", "alone"])
def test_temperature_0_is_model_generate_greedy(servers, alone, which):
    _, ids = greedy_ids(alone)
    assert ask(servers, which, temperature=0).choices[0].message.content == text_of(alone, ids)


@pytest.mark.parametrize("fields", [{"top_p": 1e-9}, {"extra_body": {"top_k": 1}}, {"extra_body": {"min_p": 1.0}}],
                         ids=["top_p", "top_k", "min_p"])
def test_sampling_cut_to_one_token_is_greedy(servers, alone, fields):
    """top_p, vLLM's top_k and min_p: sampling at temperature 1 keeping only the best token gives the greedy reply."""
    _, ids = greedy_ids(alone)
    replies = {ask(servers, temperature=1.0, **fields).choices[0].message.content for _ in range(3)}
    assert replies == {text_of(alone, ids)}


@pytest.mark.parametrize("which", ["batched", "alone"])
def test_seed_same_reply_also_inside_a_batch(servers, which):
    sampled = {"temperature": 1.0, "max_tokens": 12}
    first = ask(servers, which, seed=7, **sampled).choices[0].message.content
    with ThreadPoolExecutor(4) as pool:  # four at once: in one batch on the batched server
        together = list(pool.map(lambda _: ask(servers, which, seed=7, **sampled).choices[0].message.content,
                                 range(4)))
    assert together == [first] * 4
    others = {ask(servers, which, seed=s, **sampled).choices[0].message.content for s in (1, 2, 3)}
    assert len(others | {first}) > 1


def test_seed_gives_the_same_reply_batched_and_alone(servers):
    sampled = {"temperature": 1.0, "max_tokens": 12, "seed": 123}
    assert ask(servers, "batched", **sampled).choices[0].message.content == \
        ask(servers, "alone", **sampled).choices[0].message.content


@pytest.mark.parametrize("which", ["batched", "alone"])
def test_n_choices(servers, which):
    reply = ask(servers, which, n=3, seed=5, temperature=1.0, max_tokens=12)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert reply.choices[0].message.content == ask(servers, which, seed=5, temperature=1.0, max_tokens=12).choices[0] \
        .message.content  # choice i is seeded with seed + i
    assert reply.usage.completion_tokens == sum(
        ask(servers, which, seed=5 + i, temperature=1.0, max_tokens=12).usage.completion_tokens for i in range(3))
    greedy = ask(servers, which, n=2, temperature=0)
    assert greedy.choices[0].message.content == greedy.choices[1].message.content
    chunks = list(ask(servers, which, n=3, seed=5, temperature=1.0, max_tokens=12, stream=True,
                      stream_options={"include_usage": True}))
    streamed = ["".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
                for i in range(3)]
    assert [t.replace(" ", "") for t in streamed] == [c.message.content.replace(" ", "") for c in reply.choices]
    finals = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert sorted(f.index for f in finals) == [0, 1, 2] and chunks[-1].usage.completion_tokens == \
        reply.usage.completion_tokens


@pytest.mark.parametrize("which", ["batched", "alone"])
def test_logprobs_and_top_logprobs_are_the_models(servers, alone, which):
    prompt, ids = greedy_ids(alone)
    reply = ask(servers, which, temperature=0, logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens == len(ids)
    with torch.no_grad():
        logits = alone.model(torch.tensor([prompt])).logits[0, -1]
    expected = torch.log_softmax(logits, -1)
    assert math.isclose(content[0].logprob, float(expected[ids[0]]), abs_tol=1e-4)
    top = torch.topk(expected, 3)
    assert [t.logprob for t in content[0].top_logprobs] == pytest.approx(top.values.tolist(), abs=1e-4)
    assert [t.token for t in content[0].top_logprobs] == [alone.tokenizer.decode([i]) for i in top.indices.tolist()]
    assert all(t.bytes == list(t.token.encode()) and t.logprob <= 0 for t in content)
    plain = ask(servers, which, temperature=0, logprobs=True)
    assert plain.choices[0].logprobs.content[0].top_logprobs == []
    assert ask(servers, which, temperature=0).choices[0].logprobs is None


@pytest.mark.parametrize("which", ["batched", "alone"])
def test_logprobs_streamed_are_the_non_streamed_ones(servers, which):
    whole = ask(servers, which, temperature=0, logprobs=True, top_logprobs=2).choices[0].logprobs.content
    chunks = list(ask(servers, which, temperature=0, logprobs=True, top_logprobs=2, stream=True))
    streamed = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert [(t.token, round(t.logprob, 4)) for t in streamed] == [(t.token, round(t.logprob, 4)) for t in whole]


def test_top_logprobs_without_logprobs_is_refused(servers):
    assert refused(servers, "top_logprobs", top_logprobs=2) == "top_logprobs needs logprobs: true."


def test_presence_and_frequency_penalties_are_openais_additive_ones(servers, alone):
    scores = torch.zeros(1, 5)
    penalty = PresenceFrequencyPenalty(presence=0.5, frequency=2.0)
    assert penalty(torch.tensor([[4, 4]]), scores).tolist() == [[0.0] * 5]  # the prompt is not counted
    assert penalty(torch.tensor([[4, 4, 1, 1, 2]]), scores).tolist() == [[0.0, -4.5, -2.5, 0.0, 0.0]]
    options = ReplyOptions(processors=lambda: [PresenceFrequencyPenalty(1.0, 1.5)])
    expected = alone.generate(HELLO, get_preset("greedy", max_new_tokens=MAX_NEW), options=options).text
    reply = ask(servers, temperature=0, presence_penalty=1.0, frequency_penalty=1.5)
    assert reply.choices[0].message.content == expected


def test_replies_with_their_own_processors_share_a_batch_with_plain_ones(servers):
    """A reply with penalties or a bias decodes beside plain replies of the same preset, each as it would alone."""
    asks = [{"temperature": 0}, {"temperature": 0, "frequency_penalty": 2.0}, {"temperature": 0},
            {"temperature": 0, "logit_bias": {"30": 5}}]
    alone_replies = [ask(servers, **a).choices[0].message.content for a in asks]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda a: ask(servers, **a).choices[0].message.content, asks))
    assert together == alone_replies


def test_logit_bias(servers, alone):
    assert LogitBias({1: 5.0, 3: -100.0})(None, torch.zeros(1, 4)).tolist() == [[0.0, 5.0, 0.0, -100.0]]
    token = alone.tokenizer.convert_tokens_to_ids("밥") if "밥" in alone.tokenizer.get_vocab() else 500
    reply = ask(servers, temperature=0, max_tokens=1, logprobs=True, logit_bias={str(token): 100})
    assert reply.choices[0].logprobs.content[0].token == alone.tokenizer.decode([token])
    _, ids = greedy_ids(alone, max_new=1)
    banned = ask(servers, temperature=0, max_tokens=1, logprobs=True, logit_bias={str(ids[0]): -100})
    assert banned.choices[0].logprobs.content[0].token != alone.tokenizer.decode(ids)
    assert "not a token id" in refused(servers, "logit_bias", logit_bias={"999999": 1})


def test_min_tokens_holds_the_end_of_turn_back(servers, alone):
    eos = {str(alone.tokenizer.eos_token_id): 100}
    assert ask(servers, temperature=0, logit_bias=eos).usage.completion_tokens == 1
    held = ask(servers, temperature=0, logit_bias=eos, max_tokens=8, extra_body={"min_tokens": 5})
    assert held.usage.completion_tokens == 5 + 1 and held.choices[0].finish_reason == "stop"  # then the end of turn


def test_repetition_penalty_is_generates(servers, alone):
    _, ids = greedy_ids(alone, repetition_penalty=3.0)
    reply = ask(servers, temperature=0, extra_body={"repetition_penalty": 3.0})
    assert reply.choices[0].message.content == text_of(alone, ids)


def test_stream_options_without_stream_is_refused(servers):
    assert "stream is true" in refused(servers, "stream_options", stream_options={"include_usage": True})


def test_tool_choice_without_tools_is_refused(servers):
    assert "tools" in refused(servers, "tool_choice", tool_choice="required")


@pytest.mark.parametrize(("field", "value"), [("audio", {"voice": "alloy", "format": "wav"}),
                                              ("modalities", ["text", "audio"]),
                                              ("prediction", {"type": "content", "content": "x"})])
def test_unavailable_fields_are_refused(servers, field, value):
    assert "not" in refused(servers, field, **{field: value}).lower()


# --- speech level and skills (issue 34 items 13-14, issue 31 item 5) ---

def test_speech_level_field_and_server_option_reach_the_prompt(servers, alone):
    def prompt_tokens(level):
        return len(alone.prompt_ids(with_level_instruction(HELLO, level), max_new_tokens=MAX_NEW))

    assert prompt_tokens("plain") > prompt_tokens(None)
    assert ask(servers, temperature=0).usage.prompt_tokens == prompt_tokens(None)
    assert ask(servers, temperature=0, extra_body={"speech_level": "plain"}).usage.prompt_tokens == \
        prompt_tokens("plain")
    assert ask(servers, "skills", temperature=0).usage.prompt_tokens == prompt_tokens("polite")  # --speech_level
    assert ask(servers, "skills", temperature=0, extra_body={"speech_level": "none"}).usage.prompt_tokens == \
        prompt_tokens(None)


def test_skills_only_with_skills_on_api_within_max_tokens_and_counting_the_whole_prompt(servers, alone):
    typed = [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "반가워"},
             {"role": "user", "content": "dk rkqwkrl gksrmfdl dkscuwu"}]
    off = ask(servers, messages=typed, temperature=0).choices[0].message.content
    assert "한글이 안쳐져" not in off
    on = ask(servers, "skills", messages=typed, max_tokens=100, extra_body={"speech_level": "none"})
    assert "아 갑자기 한글이 안쳐져" in on.choices[0].message.content
    assert on.usage.prompt_tokens == len(alone.prompt_ids(typed, max_new_tokens=100))
    one = ask(servers, "skills", messages=typed, max_tokens=1)
    assert one.usage.completion_tokens == 1 and one.choices[0].finish_reason == "length"
    assert len(alone.tokenizer.encode(one.choices[0].message.content, add_special_tokens=False)) <= 1


# --- langchain-openai ------------------------------------------------------------------------------------------------

def test_langchain_chat_openai_with_seed_and_logprobs(servers):
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=servers["batched"] + "/v1", api_key="unused", model="x", temperature=1.0, seed=3,
                      max_tokens=10, max_retries=0, logprobs=True)
    chat.model_name = None  # the served model answers when the client names none
    first = chat.invoke("안녕 오늘 뭐 했어")
    assert first.content == chat.invoke("안녕 오늘 뭐 했어").content
    assert len(first.response_metadata["logprobs"]["content"]) == first.usage_metadata["output_tokens"]
    assert "".join(c.content for c in chat.stream("안녕 오늘 뭐 했어")) .replace(" ", "") == \
        first.content.replace(" ", "")


# --- /v1/completions ---

def test_completions_echo_logprobs_are_the_models_prompt_logprobs(servers, alone):
    ids = alone.tokenizer.encode("안녕 오늘 뭐 했어", add_special_tokens=False)
    done = client(servers).completions.create(model=alone.name, prompt=[ids, "비 온다"], max_tokens=0, echo=True,
                                              logprobs=2)
    first = done.choices[0].logprobs
    with torch.no_grad():
        expected = torch.log_softmax(alone.model(torch.tensor([ids])).logits[0], -1)
    assert first.token_logprobs[0] is None and len(first.token_logprobs) == len(ids)
    assert first.token_logprobs[1:] == pytest.approx([float(expected[i - 1, t]) for i, t in enumerate(ids) if i],
                                                     abs=1e-4)
    assert first.tokens == [alone.tokenizer.decode([t]) for t in ids] and len(first.top_logprobs[1]) == 2
    assert done.choices[0].text == alone.tokenizer.decode(ids) and done.usage.completion_tokens == 0
    assert [c.index for c in done.choices] == [0, 1]
    greedy = client(servers).completions.create(model=alone.name, prompt="안녕 오늘", max_tokens=4, temperature=0,
                                                logprobs=0)
    out = alone.model.generate(torch.tensor([alone.tokenizer.encode("안녕 오늘", add_special_tokens=False)]),
                               generation_config=alone.generation_config(get_preset("greedy", max_new_tokens=4)))
    assert greedy.choices[0].logprobs.tokens == [alone.tokenizer.decode([t]) for t in out[0, -4:].tolist()]
    with pytest.raises(openai.BadRequestError, match="maximum context length is 256"):
        client(servers).completions.create(model=alone.name, prompt="안녕", max_tokens=300)


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/chat/completions", {"messages": HELLO, "seed": 2**70}, "seed"),
    ("/v1/chat/completions", {"messages": HELLO, "logit_bias": {"12": 101}}, "logit_bias"),
    ("/v1/completions", {"prompt": [[-1, 5]]}, "prompt"),
    ("/v1/completions", {"prompt": "안녕", "logprobs": 6}, "logprobs"),
    ("/v1/completions", {"prompt": "안녕", "max_tokens": 0}, "max_tokens"),
    ("/v1/completions", {"prompt": "안녕", "stream": True, "logprobs": 1}, "logprobs"),
    ("/v1/completions", {"prompt": "안녕", "stream": True, "max_tokens": 0, "echo": True}, "max_tokens"),
    ("/v1/completions", {"prompt": "안녕", "suffix": "요"}, "suffix"),
    ("/v1/completions", {"prompt": []}, "prompt"),
])
def test_bad_sampling_and_completion_fields_are_400s(servers, path, body, param):
    import httpx

    response = httpx.post(servers["batched"] + path, json=body, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text

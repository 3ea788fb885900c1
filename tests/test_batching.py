"""Continuous batching in the chat engine: the tiny model, real threads, a real server on loopback."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from chathuman_hf.chat import ChatEngine, EngineBusy, get_preset
from chathuman_hf.chat.decoding import Job
from chathuman_hf.chat.one_at_a_time import model_inputs
from chathuman_hf.chat.presets import bad_words_ids
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PROMPTS = ["안녕", "점심 뭐 먹을까", "오늘 하루 너무 길었어 정말 너무 힘들었다 그치?", "비 온다", "주말에 뭐 하지",
           "친구랑 영화 보기로 했어 근데 무슨 영화를 볼지 모르겠어"]


@pytest.fixture(scope="module")
def solo(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir)


def batched(solo: ChatEngine, **limits) -> ChatEngine:
    """A batching engine over the same model (its own lock: use it while ``solo`` is idle)."""
    return ChatEngine(solo.model, solo.tokenizer, generation_config=solo.base_config, window=solo.window,
                      name=solo.name, **{"max_batch_size": 4, **limits})


class Slow:
    """Forward hook on the LM head: ``delay`` s per step, never the stop tokens (``endless``), batch sizes seen."""

    def __init__(self, engine: ChatEngine, delay: float = 0.02, endless: bool = True) -> None:
        tok = engine.tokenizer
        self.stops = [tok.eos_token_id, tok.convert_tokens_to_ids("<usr>")]
        self.delay, self.endless, self.sizes = delay, endless, []
        self.handle = engine.model.lm_head.register_forward_hook(self)

    def __call__(self, _module, _inputs, output):
        self.sizes.append(output.shape[0])
        time.sleep(self.delay)
        if self.endless:
            output[..., self.stops] -= 1.0e4
        return output

    def __enter__(self) -> Slow:
        return self

    def __exit__(self, *_exc) -> None:
        self.handle.remove()


def messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_greedy_replies_equal_generate_token_for_token_when_joining_mid_generation(solo):
    """Prompts of different lengths join a running batch one by one; each reply is generate's, token for token."""
    engine = batched(solo, max_batch_size=4)
    config = solo.generation_config(get_preset("greedy", max_new_tokens=24))
    prompts = [solo.prompt_ids(messages(text), max_new_tokens=24) for text in PROMPTS]
    expected = []
    with torch.inference_mode():
        for ids in prompts:
            out = solo.model.generate(**model_inputs(solo.model, ids), generation_config=config)
            expected.append(out[0, len(ids):].tolist())
    with Slow(solo, delay=0.01, endless=False) as slow:
        jobs = []
        for ids in prompts:  # 6 replies, 4 slots: later ones wait for a slot, earlier ones join a running batch
            jobs.append(engine.scheduler.submit(Job(ids, config, time.monotonic() + 60)))
            time.sleep(0.05)
        for job in jobs:
            assert job.done.wait(60) and job.error is None
    assert [job.tokens for job in jobs] == expected
    assert max(slow.sizes) == 4 and len(slow.sizes) < sum(map(len, expected))  # batched, fewer forwards
    assert engine.load()["running"] == 0 and engine.scheduler.cache is None  # everyone left, cache freed


def test_replies_through_the_engine_equal_the_one_at_a_time_engine(solo):
    engine = batched(solo, max_batch_size=3)
    preset = get_preset("greedy", max_new_tokens=16)
    expected = [solo.generate(messages(text), preset) for text in PROMPTS]
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        replies = list(pool.map(lambda text: engine.generate(messages(text), preset), PROMPTS))
        streamed = list(pool.map(lambda text: "".join(engine.stream(messages(text), preset)), PROMPTS))
    assert replies == expected
    assert [s.replace(" ", "") for s in streamed] == [g.text.replace(" ", "") for g in expected]


def test_per_request_settings_are_honoured_inside_one_batch(solo):
    """Banned words, reply lengths and sampling differ per request while the requests share forward passes."""
    engine = batched(solo, max_batch_size=4)
    plain = get_preset("greedy", max_new_tokens=10, banned_words=())
    ids = solo.prompt_ids(messages("안녕"), max_new_tokens=10)
    with torch.inference_mode():
        reply = solo.model.generate(**model_inputs(solo.model, ids), generation_config=solo.generation_config(plain))
    words = [(t, solo.tokenizer.decode([t], skip_special_tokens=True).strip()) for t in reply[0, len(ids):].tolist()]
    first = next(w for t, w in words if w and [t] in bad_words_ids(solo.tokenizer, [w]))  # a token that is a word
    banning = plain.replace(banned_words=(first,))
    short = plain.replace(max_new_tokens=3)
    sampled = get_preset("fast", max_new_tokens=6, temperature=1.5)
    cases = [plain, banning, short, sampled]
    with Slow(solo, delay=0.03, endless=True):  # the stop tokens never win: every reply runs to its length
        expected = [solo.generate(messages("안녕"), p) for p in (plain, banning, short)]
    with Slow(solo, delay=0.03, endless=True) as slow, ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda p: engine.generate(messages("안녕"), p), cases))
    assert max(slow.sizes) == 4  # all four shared the batch
    assert got[:3] == expected and got[0] != got[1]  # the ban applied to its own request only
    assert first in got[0].text
    assert [g.completion_tokens for g in got] == [10, 10, 3, 6]


def test_a_queued_request_past_its_deadline_is_refused_and_a_running_one_is_cut(solo):
    engine = batched(solo, max_batch_size=2, request_timeout=1.0)
    config = solo.generation_config(get_preset("greedy", max_new_tokens=5))
    late = engine.scheduler.submit(Job([2, 5, 6], config, time.monotonic() - 1))
    assert late.done.wait(10) and isinstance(late.error, EngineBusy) and late.error.retry_after >= 1
    with Slow(solo, delay=0.05, endless=True):
        start = time.monotonic()
        cut = engine.generate(messages("안녕"), get_preset("greedy", max_new_tokens=200))
    assert time.monotonic() - start < 5 and 0 < cut.completion_tokens < 200 and cut.finish_reason == "length"


@pytest.fixture()
def small_server(solo):
    engine = batched(solo, max_batch_size=2, max_queue=0)
    app = create_app(engine=engine, preset="greedy", preset_overrides={"max_new_tokens": 5})
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def wait_for(client: httpx.Client, **wanted: int) -> dict:
    deadline = time.monotonic() + 10
    while True:
        health = client.get("/healthz").json()
        if all(health[k] == v for k, v in wanted.items()) or time.monotonic() > deadline:
            return health
        time.sleep(0.02)


ENDLESS = {"messages": messages("안녕"), "stream": True, "max_tokens": 200, "temperature": 0}


def test_a_full_server_answers_503_with_retry_after_and_a_leaving_client_frees_its_slot(solo, small_server):
    client = small_server
    with Slow(solo, delay=0.02, endless=True):
        with client.stream("POST", "/v1/chat/completions", json=ENDLESS) as first:
            first_lines = first.iter_lines()
            assert next(first_lines).startswith("data: ")
            with client.stream("POST", "/v1/chat/completions", json=ENDLESS) as second:
                second_lines = second.iter_lines()
                assert next(second_lines).startswith("data: ")
                health = wait_for(client, batch_occupancy=2)
                assert (health["batch_occupancy"], health["queue_depth"], health["max_batch_size"]) == (2, 0, 2)
                for path, body in [("/v1/chat/completions", {"messages": messages("안녕")}),
                                   ("/v1/chat/completions", ENDLESS),
                                   ("/page/api/chat", {"message": "안녕"}),
                                   ("/page/api/chat/stream", {"message": "안녕"})]:
                    refused = client.post(path, json=body)
                    assert refused.status_code == 503, (path, refused.text)
                    assert int(refused.headers["Retry-After"]) >= 1
                    assert refused.json()["error"]["type"] == "server_busy"
                assert client.post("/page/api/chat", json={"message": "몇시야?"}).json()["skill"] == "time"  # no model
                first.close()  # the first client goes away mid-reply
                assert wait_for(client, batch_occupancy=1)["batch_occupancy"] == 1
                reply = client.post("/v1/chat/completions", json={"messages": messages("안녕"), "max_tokens": 3})
                assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 3
                assert next(x for x in second_lines if x.startswith("data: "))  # the other reply kept going
    assert wait_for(client, batch_occupancy=0, queue_depth=0)["refused"] == 4


def test_a_request_joins_the_running_batch_mid_reply(solo, small_server):
    """A short request sent while a long reply streams is answered before the long reply ends."""
    client = small_server
    with Slow(solo, delay=0.02, endless=True) as slow:
        with client.stream("POST", "/v1/chat/completions", json={**ENDLESS, "max_tokens": 60}) as long:
            lines = long.iter_lines()
            chunks = []
            for line in lines:
                chunks += [line] if line.startswith("data: ") else []
                if len(chunks) >= 4:
                    break
            short = client.post("/v1/chat/completions", json={"messages": messages("비 온다"), "max_tokens": 4})
            assert short.status_code == 200 and short.json()["usage"]["completion_tokens"] == 4
            rest = [line for line in lines if line.startswith("data: ")]
    assert rest[-1] == "data: [DONE]" and len(chunks) + len(rest) > 8  # the long reply went on after the short one
    assert 2 in slow.sizes  # the two replies shared forward passes


def test_one_at_a_time_engine_refuses_past_its_queue(solo):
    engine = ChatEngine(solo.model, solo.tokenizer, generation_config=solo.base_config, window=solo.window,
                        max_batch_size=1, max_queue=0)
    pieces = engine.stream(messages("안녕"), get_preset("greedy", max_new_tokens=200))
    with Slow(solo, delay=0.02, endless=True):
        next(pieces)  # holds the model
        with pytest.raises(EngineBusy, match="limit 1"):
            engine.generate(messages("안녕"), get_preset("greedy", max_new_tokens=3))
        pieces.close()
    assert not engine.lock.locked() and engine.load()["queued"] == 0
    assert engine.generate(messages("안녕"), get_preset("greedy", max_new_tokens=3)).completion_tokens <= 3


def test_batched_generation_failure_fails_its_replies_and_keeps_serving(solo):
    engine = batched(solo, max_batch_size=2)

    def boom(*_args):
        raise RuntimeError("simulated failure")

    handle = solo.model.lm_head.register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="simulated failure"):
            engine.generate(messages("안녕"), get_preset("greedy", max_new_tokens=3))
        with pytest.raises(RuntimeError, match="generation failed: simulated failure"):
            "".join(engine.stream(messages("안녕"), get_preset("greedy", max_new_tokens=3)))
    finally:
        handle.remove()
    assert engine.generate(messages("안녕"), get_preset("greedy", max_new_tokens=3)).completion_tokens <= 3
    assert threading.active_count() < 50


def test_sliding_window_models_fall_back_to_one_at_a_time(solo):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("gemma3_text", vocab_size=len(solo.tokenizer), hidden_size=16, intermediate_size=32,
                                  num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=8)
    with pytest.warns(UserWarning, match="sliding-window cache layers"):
        engine = ChatEngine(AutoModelForCausalLM.from_config(config), solo.tokenizer, max_batch_size=8)
    assert engine.scheduler is None and engine.load()["max_batch_size"] == 1

"""The batch's slot cache: joining and leaving copy nothing, freed slots are reused, every full-attention family
(GPT-2, Llama, Qwen2/3, EXAONE 4 without sliding layers) decodes in slots with replies equal to ``generate``."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

from chathuman_hf.chat import ChatEngine, get_preset
from chathuman_hf.chat.batching import BatchScheduler, supports_batching
from chathuman_hf.chat.decoding import Job
from chathuman_hf.chat.one_at_a_time import model_inputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def solo(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir)


def wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_joining_and_leaving_rows_copy_nothing_and_freed_slots_are_reused(solo):
    engine = ChatEngine(solo.model, solo.tokenizer, generation_config=solo.base_config, window=solo.window,
                        max_batch_size=4)
    sched = engine.scheduler
    config = solo.generation_config(get_preset("greedy", max_new_tokens=24))
    ids = solo.prompt_ids([{"role": "user", "content": "안녕"}], max_new_tokens=24)
    stops = [solo.tokenizer.eos_token_id, solo.tokenizer.convert_tokens_to_ids("<usr>")]

    def slow(_module, _inputs, output):  # a step takes 10 ms and the stop tokens never win: replies run to 24
        time.sleep(0.01)
        output[..., stops] -= 1.0e4
        return output

    handle = solo.model.lm_head.register_forward_hook(slow)
    try:
        first = sched.submit(Job(ids, config, time.monotonic() + 60))
        wait_for(lambda: sched.cache is not None and len(first.tokens) >= 3)
        cache = sched.cache
        storage = [(layer.keys.data_ptr(), layer.values.data_ptr()) for layer in cache.layers]
        second = sched.submit(Job(ids, config, time.monotonic() + 60))
        wait_for(lambda: len(second.tokens) >= 2)
        assert sched.slots == [first, second]
        first.cancel.set()  # the first reply leaves mid-reply: its slot is freed, the second keeps its own
        wait_for(lambda: first.done.is_set())
        wait_for(lambda: sched.slots == [None, second])
        third = sched.submit(Job(ids, config, time.monotonic() + 60))
        wait_for(lambda: len(third.tokens) >= 2)
        assert sched.slots == [third, second]  # the freed slot is taken, not a new one
        assert sched.cache is cache and cache.grows == 0
        assert [(layer.keys.data_ptr(), layer.values.data_ptr()) for layer in cache.layers] == storage
        assert third.done.wait(30) and second.done.wait(30)
    finally:
        handle.remove()
    assert len(second.tokens) == len(third.tokens) == 24 and third.tokens == second.tokens  # same prompt, greedy
    assert sched.cache is None and engine.load()["running"] == 0


FAMILIES = {
    "llama": {},
    "qwen2": {},
    "qwen3": {"head_dim": 8},
    "exaone4": {"head_dim": 8, "sliding_window": None, "layer_types": ["full_attention"] * 2},
}


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_every_full_attention_family_decodes_in_slots_as_generate_does(solo, model_type):
    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, vocab_size=len(solo.tokenizer), hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  **FAMILIES[model_type])
    model = AutoModelForCausalLM.from_config(config).eval()
    assert supports_batching(model)
    gen = GenerationConfig(do_sample=False, max_new_tokens=12, eos_token_id=solo.tokenizer.eos_token_id,
                           pad_token_id=solo.tokenizer.pad_token_id)
    prompts = [solo.prompt_ids([{"role": "user", "content": text}], max_new_tokens=12)
               for text in ("안녕", "오늘 하루 너무 길었어 정말", "비 온다", "주말에 영화 보러 갈래 아니면 집에")]
    with torch.inference_mode():
        expected = [model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                   generation_config=gen)[0, len(ids):].tolist() for ids in prompts]
    sched = BatchScheduler(model, threading.Lock(), max_batch_size=3, on_expired=lambda: RuntimeError("late"))
    sizes = []
    handle = model.lm_head.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape[0]) or time.sleep(0.005))
    jobs = []
    try:
        for ids in prompts:  # later prompts join a running batch; the fourth waits for a free slot
            jobs.append(sched.submit(Job(ids, gen, time.monotonic() + 60)))
            time.sleep(0.02)
        for job in jobs:
            assert job.done.wait(60) and job.error is None
    finally:
        handle.remove()
    assert [job.tokens for job in jobs] == expected
    assert max(sizes) == 3 and len(sizes) < sum(map(len, expected))  # rows shared forwards


def test_streamers_are_fed_in_order_beside_the_step_loop(solo):
    """Detokenising is off the step's critical path: puts and the end run on the pump thread, in order."""
    engine = ChatEngine(solo.model, solo.tokenizer, generation_config=solo.base_config, window=solo.window,
                        max_batch_size=4)
    seen: list[tuple[str, object]] = []

    class Recorder:
        def put(self, value):
            seen.append((threading.current_thread().name, int(value[0])))

        def end(self):
            seen.append((threading.current_thread().name, "end"))

    config = solo.generation_config(get_preset("greedy", max_new_tokens=8))
    ids = solo.prompt_ids([{"role": "user", "content": "안녕"}], max_new_tokens=8)
    job = engine.scheduler.submit(Job(ids, config, time.monotonic() + 60, streamer=Recorder()))
    assert job.done.wait(30) and job.error is None
    wait_for(lambda: seen and seen[-1][1] == "end")
    assert {name for name, _ in seen} == {"chat-stream"}
    assert [value for _, value in seen] == [*job.tokens, "end"]


def test_the_cache_grows_when_a_reply_outruns_its_reserved_columns(solo):
    """A reply that needs more columns than its joiner reserved grows the buffers once and stays token-exact."""
    engine = ChatEngine(solo.model, solo.tokenizer, generation_config=solo.base_config, window=solo.window,
                        max_batch_size=2)
    config = solo.generation_config(get_preset("greedy", max_new_tokens=30))
    ids = solo.prompt_ids([{"role": "user", "content": "안녕"}], max_new_tokens=30)
    with torch.inference_mode():
        output = solo.model.generate(**model_inputs(solo.model, ids), generation_config=config)
        expected = output[0, len(ids):].tolist()
    sched, made = engine.scheduler, []
    place = sched._place

    def short(prefilled, last, jobs):  # the slot reserved as if the reply were 2 tokens long
        place(prefilled, last, jobs)
        sched.cache = type(sched.cache)(prefilled, sched.cache.slots, len(ids) + 3)
        sched.cache.put(0, prefilled, 0, len(ids))
        made.append((sched.cache, sched.cache.capacity))

    sched._place = short
    job = sched.submit(Job(ids, config, time.monotonic() + 60))
    assert job.done.wait(60) and job.error is None
    assert job.tokens == expected and len(expected) == 30
    cache, reserved = made[0]
    assert reserved < len(ids) + 30 <= cache.capacity and cache.grows >= 1

"""``/v1/completions`` with ``stream: true`` (issue 31): OpenAI's completion chunks read by the real ``openai``
client on loopback, each choice's streamed text the same as the answer without streaming (greedy), ``n`` and several
prompts tagged by index, ``echo``, stop strings and the usage chunk."""

from __future__ import annotations

import httpx
import openai
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    engine = ChatEngine.from_pretrained(tiny_model_dir, max_batch_size=4)
    app = create_app(engine=engine, preset="greedy", preset_overrides={"max_new_tokens": 8}, use_skills=False)
    with serve_in_thread(app) as url:
        yield url, openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)


def _collect(chunks) -> tuple[dict[int, str], dict[int, str], list]:
    texts, finishes, usage = {}, {}, []
    for chunk in chunks:
        assert chunk.object == "text_completion"
        if chunk.usage is not None:
            usage.append(chunk.usage)
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason is not None:
                finishes[choice.index] = choice.finish_reason
    return texts, finishes, usage


def test_streamed_completions_are_the_same_replies_as_unstreamed(server):
    _, client = server
    prompts = ["안녕 오늘", "밥 먹었어"]
    whole = client.completions.create(model="", prompt=prompts, max_tokens=6, temperature=0, n=2)
    chunks = list(client.completions.create(model="", prompt=prompts, max_tokens=6, temperature=0, n=2, stream=True,
                                            stream_options={"include_usage": True}))
    texts, finishes, usage = _collect(chunks)
    assert texts == {c.index: c.text for c in whole.choices} and sorted(texts) == [0, 1, 2, 3]
    assert finishes == {c.index: c.finish_reason for c in whole.choices}
    assert len(usage) == 1 and usage[0].model_dump() == whole.usage.model_dump()
    assert chunks[-1].usage is not None and chunks[-1].choices == []


def test_streamed_echo_and_stop_strings(server):
    _, client = server
    whole = client.completions.create(model="", prompt="안녕 오늘", max_tokens=8, temperature=0)
    echoed, _, _ = _collect(client.completions.create(model="", prompt="안녕 오늘", max_tokens=8, temperature=0,
                                                      echo=True, stream=True))
    assert echoed == {0: "안녕 오늘" + whole.choices[0].text}
    stop = whole.choices[0].text.strip()[1:3]  # a stop string inside the greedy reply
    cut = client.completions.create(model="", prompt="안녕 오늘", max_tokens=8, temperature=0, stop=[stop])
    texts, finishes, _ = _collect(client.completions.create(model="", prompt="안녕 오늘", max_tokens=8, temperature=0,
                                                            stop=[stop], stream=True))
    assert stop not in texts[0] and texts == {0: cut.choices[0].text} and finishes == {0: "stop"}


def test_the_stream_is_server_sent_events_ending_with_done(server):
    url, _ = server
    with httpx.stream("POST", f"{url}/v1/completions", json={"prompt": "안녕", "max_tokens": 3, "stream": True},
                      timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"

"""Two models on one server (``--model A --model B``): the ``model`` field picks one on ``/v1/chat/completions``,
``/v1/completions`` and Ollama's ``/api/*``, both are listed, an unknown one is OpenAI's 404 ``model_not_found``, and
each model's ratings carry its own name and revision (issue 30). Real ``openai`` and ``ollama`` clients."""

from __future__ import annotations

import json
import shutil

import httpx
import ollama
import openai
import pytest

from chathuman_hf.serving import create_app
from chathuman_hf.serving.models import distinct_names
from chathuman_hf.serving.runner import serve_in_thread

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
HELLO = [{"role": "user", "content": "안녕 오늘 뭐 했어"}]


@pytest.fixture(scope="module")
def served(tiny_model_dir, tmp_path_factory):
    """(URL, feedback log, the app) of a server with ``runs/sft/final`` (the tiny model) and ``runs/kto/final`` (the
    same tokenizer, other weights)."""
    from tests.helpers.tiny_models import make_tiny_model_dir

    root = tmp_path_factory.mktemp("two_models")
    shutil.copytree(tiny_model_dir, root / "runs" / "sft" / "final")
    make_tiny_model_dir(root / "runs" / "kto" / "final", seed=1)
    app = create_app(root / "runs" / "sft" / "final", more_models=[root / "runs" / "kto" / "final"],
                     preset="greedy", preset_overrides={"max_new_tokens": 6}, use_skills=False,
                     feedback_log=root / "feedback.jsonl")
    with serve_in_thread(app) as url:
        yield url, root / "feedback.jsonl", app


def test_the_model_field_picks_a_model_and_each_rating_carries_its_name_and_revision(served):
    url, log, app = served
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
    assert [m.id for m in client.models.list()] == ["sft/final", "kto/final"]
    replies = {}
    for name in (None, "sft/final", "kto/final"):
        done = client.chat.completions.create(model=name, messages=HELLO)
        assert done.model == (name or "sft/final")
        replies[name] = done
    assert replies[None].choices[0].message.content == replies["sft/final"].choices[0].message.content
    assert replies["kto/final"].choices[0].message.content != replies["sft/final"].choices[0].message.content
    for name, rating in (("kto/final", 1), ("sft/final", -1)):
        client.post("/feedback", cast_to=object, body={"id": replies[name].id, "rating": rating})
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    revisions = {m.name: m.engine.revision for m in app.state.models}
    assert [(e["model"], e["revision"], e["rating"], e["reply"]) for e in lines] == [
        ("kto/final", revisions["kto/final"], 1, replies["kto/final"].choices[0].message.content),
        ("sft/final", revisions["sft/final"], -1, replies["sft/final"].choices[0].message.content)]
    assert revisions["kto/final"] != revisions["sft/final"] and None not in revisions.values()
    legacy = client.completions.create(model="kto/final", prompt="안녕", max_tokens=2)
    assert legacy.model == "kto/final"
    assert httpx.get(url + "/healthz").json()["model"] == "sft/final"  # the page's model


def test_an_unknown_model_is_openais_404_model_not_found(served):
    url, _, _ = served
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
    for call in (lambda: client.chat.completions.create(model="gpt-4o", messages=HELLO),
                 lambda: client.completions.create(model="gpt-4o", prompt="안녕", max_tokens=2)):
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        error = caught.value.body
        assert (error["code"], error["param"]) == ("model_not_found", "model")
        assert error["message"] == ("The model 'gpt-4o' does not exist here; this server serves 'sft/final', "
                                    "'kto/final' (GET /v1/models).")


def test_ollama_lists_both_and_answers_with_the_one_asked_for(served):
    url, _, _ = served
    client = ollama.Client(host=url, timeout=120)
    assert [m.model for m in client.list().models] == ["sft/final:latest", "kto/final:latest"]
    said = client.chat(model="kto/final:latest", messages=HELLO, stream=False)
    assert said.model == "kto/final"
    assert client.generate(model="kto/final", prompt="안녕").model == "kto/final"
    assert client.show("kto/final").modelinfo["gpt2.context_length"] == 256
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="llama3", messages=HELLO)
    assert caught.value.status_code == 404 and "serves 'sft/final', 'kto/final'" in caught.value.error


def test_model_directories_are_named_apart_by_their_parents(tmp_path):
    assert distinct_names(["runs/sft/final", "runs/kto/final"]) == ["sft/final", "kto/final"]
    assert distinct_names(["runs/sft", "out/kto"]) == ["sft", "kto"]
    assert distinct_names([tmp_path / "a" / "final", tmp_path / "b" / "c" / "final"]) == ["a/final", "c/final"]
    with pytest.raises(ValueError, match="the same model directory is given twice"):
        distinct_names(["runs/sft", "runs/sft/"])

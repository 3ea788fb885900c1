"""What the server answers is what the model may say (issue 34): a speech level the chat template cannot take is a
400 before any stream; the real server (uvicorn on loopback) with tiny models on real chat templates."""

from __future__ import annotations

import json

import httpx
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.skills import SkillsConfig
from tests.helpers.real_templates import make_real_template_model_dir

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


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/stream"])
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


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/stream"])
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

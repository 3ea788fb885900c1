"""The page's feedback endpoints over HTTP (a real server on loopback): what each writes, and each refusal."""

from __future__ import annotations

import json

import httpx
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.skills import SkillsConfig

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir)


def serve(engine, feedback_log=None):
    app = create_app(engine=engine, preset="greedy", preset_overrides={"max_new_tokens": 5},
                     skills=SkillsConfig(disabled=["weather", "stock"]), feedback_log=feedback_log)
    return serve_in_thread(app)


def events(text: str) -> list[dict]:
    return [json.loads(block[6:]) for block in text.split("\n\n") if block.startswith("data: ")]


def test_rate_retry_select_edit_write_the_log(engine, tmp_path):
    path = tmp_path / "feedback.jsonl"
    with serve(engine, path) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert "평가는 학습 데이터로 저장돼요" in client.get("/").text
        first = client.post("/page/api/chat", json={"session_id": "s1", "message": "내 번호는 010-1234-5678이야"})
        assert first.json()["index"] == 0
        skill = client.post("/page/api/chat", json={"session_id": "s1", "message": "지금 몇 시야"})
        assert skill.json()["index"] is None
        rated = client.post("/page/api/rate", json={"session_id": "s1", "index": 0, "rating": -1, "comment": "별로"})
        assert rated.status_code == 200 and rated.json()["events"] == 1

        stream = client.post("/page/api/regenerate/stream", json={"session_id": "s1", "index": 0})
        done = events(stream.text)[-1]
        assert (done["type"], done["index"], done["sibling"], done["siblings"]) == ("done", 0, 1, 2)
        chosen = client.post("/page/api/select", json={"session_id": "s1", "index": 0, "sibling": 0}).json()
        assert chosen["reply"] == first.json()["reply"] and chosen["siblings"] == 2
        up = client.post("/page/api/rate", json={"session_id": "s1", "index": 0, "rating": 1, "sibling": 1})
        assert up.json()["events"] == 2  # 👍 on the other version keeps it: a rating and a pair
        edited = client.post("/page/api/edit", json={"session_id": "s1", "index": 0, "text": "반가워요!"})
        assert edited.json() == {"ok": True, "index": 0, "reply": "반가워요!", "events": 1}

    text = path.read_text(encoding="utf-8")
    assert "010-1234-5678" not in text
    down, up_line, pair, edit = [json.loads(line) for line in text.splitlines()]
    assert {line["source"] for line in (down, up_line, pair, edit)} == {"page"}
    assert (down["rating"], down["comment"], down["reply"]) == (-1, "별로", first.json()["reply"])
    assert down["messages"][0]["role"] == "user" and "010-" not in down["messages"][0]["content"]
    assert (pair["how"], pair["chosen"], pair["rejected"]) == ("retry", done["reply"], first.json()["reply"])
    assert (edit["how"], edit["chosen"], edit["rejected"]) == ("edit", "반가워요!", done["reply"])
    assert up_line["reply_id"] != down["reply_id"] and up_line["conversation"] == down["conversation"]
    assert "s1" not in {down["conversation"], down["reply_id"]}


def test_refusals_are_4xx_with_the_fix(engine):
    with serve(engine) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert "평가는 저장되지 않아요" in client.get("/").text
        client.post("/page/api/chat", json={"session_id": "s2", "message": "안녕"})
        client.post("/page/api/chat", json={"session_id": "s2", "message": "뭐 해"})

        off = client.post("/page/api/rate", json={"session_id": "s2", "index": 1, "rating": 1})
        assert off.status_code == 403 and "--feedback_log PATH" in off.json()["error"]["message"]
        old = client.post("/page/api/regenerate/stream", json={"session_id": "s2", "index": 0})
        assert old.status_code == 409 and "newest reply only" in old.json()["error"]["message"]
        missing = client.post("/page/api/edit", json={"session_id": "s2", "index": 7, "text": "x"})
        assert missing.status_code == 404 and "no reply #7" in missing.json()["error"]["message"]
        bad = client.post("/page/api/rate", json={"session_id": "s2", "index": 1, "rating": 5})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "rating"
        far = client.post("/page/api/select", json={"session_id": "s2", "index": 1, "sibling": 3})
        assert far.status_code == 400 and far.json()["error"]["param"] == "sibling"
        empty = client.post("/page/api/edit", json={"session_id": "s2", "index": 1, "text": "  "})
        assert empty.status_code == 400 and empty.json()["error"]["param"] == "text"
        weird = client.post("/page/api/rate", json={"session_id": "a b", "index": 0, "rating": 1})
        assert weird.status_code == 400 and weird.json()["error"]["param"] == "session_id"
        # 다시 and edits work without the log
        edited = client.post("/page/api/edit", json={"session_id": "s2", "index": 1, "text": "쉬는 중"})
        assert edited.status_code == 200 and edited.json()["events"] == 0
        assert client.post("/page/api/chat", json={"session_id": "s2", "message": "좋네"}).status_code == 200

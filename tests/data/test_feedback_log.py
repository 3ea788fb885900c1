"""The feedback log writer: scrubbed lines, whole lines from concurrent processes, refusals."""

import json
import multiprocessing

import pytest

from chathuman_hf.data.feedback_log import FEEDBACK_SCHEMA, FeedbackLog

CONTEXT = [{"role": "user", "content": "내 번호 010-2345-6789로 연락 줘"}]


def _write_many(path: str, worker: int) -> None:
    log = FeedbackLog(path, model="m", source="api")
    for index in range(40):
        log.rating(
            CONTEXT, f"워커 {worker} 답 {index} " + "가" * 3000, 1 if index % 2 else -1, reply_id=f"{worker}-{index}"
        )


def test_rating_line_is_scrubbed_and_complete(tmp_path):
    log = FeedbackLog(tmp_path / "logs" / "feedback.jsonl", model="chatbot", revision="abc", source="page")
    log.rating(CONTEXT, "메일은 minjun@example.com 으로 보낼게요", -1, comment="카드 4111-1111-1111-1111 노출",
               conversation="s1", reply_id="r1")  # fmt: skip
    log.pair(CONTEXT, "네, 알겠어요.", "몰라", how="edit", conversation="s1", reply_id="r1")
    text = (tmp_path / "logs" / "feedback.jsonl").read_text(encoding="utf-8")
    for raw in ("010-2345-6789", "minjun@example.com", "4111-1111-1111-1111"):
        assert raw not in text
    first, second = [json.loads(line) for line in text.splitlines()]
    assert first["schema"] == FEEDBACK_SCHEMA
    assert (first["event"], first["rating"], first["source"], first["model"], first["revision"]) == (
        "rating",
        -1,
        "page",
        "chatbot",
        "abc",
    )
    assert first["messages"][0]["role"] == "user"
    assert second == {**second, "event": "pair", "chosen": "네, 알겠어요.", "rejected": "몰라", "how": "edit"}


def test_processes_never_interleave(tmp_path):
    path = str(tmp_path / "feedback.jsonl")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_write_many, args=(path, worker)) for worker in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    lines = open(path, encoding="utf-8").read().splitlines()
    ids = sorted(json.loads(line)["reply_id"] for line in lines)
    assert len(ids) == 120 and len(set(ids)) == 120


@pytest.mark.parametrize(
    ("messages", "rating", "message"),
    [([], 1, "ending with a user message"), (CONTEXT, 0, "rating must be 1 or -1"), (CONTEXT, True, "rating must")],
)
def test_refusals(tmp_path, messages, rating, message):
    with pytest.raises(ValueError, match=message):
        FeedbackLog(tmp_path / "f.jsonl", model="m").rating(messages, "답", rating)

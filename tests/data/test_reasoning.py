"""Reasoning in chat data (issue 34, items 18-19): ``reasoning_content`` is kept as a ``<think>…</think>`` block at
the start of the reply, and such a block survives cleaning intact, so a template that renders reasoning (Qwen3)
trains it; bad reasoning fields are counted drops, never silent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chathuman_hf.data import DataReport, load_dialogues
from chathuman_hf.data.clean import CleaningOptions, clean_reply

USER = {"role": "user", "content": "안녕 뭐해?"}


def _load(tmp_path: Path, rows: list[dict], **options):
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    report = DataReport()
    dataset = load_dialogues(path, report=report, data_cache_dir=str(tmp_path / "cache"), **options)
    return [row["messages"] for row in dataset], report


def test_reasoning_content_is_kept_as_the_replys_think_block(tmp_path):
    rows = [{"messages": [USER, {"role": "assistant", "content": "그냥 쉬고 있어.",
                                  "reasoning_content": "사용자가 인사를 했다.\n가볍게 답하자."}]},
            {"messages": [USER, {"role": "assistant", "content": "쉬는 중!", "reasoning_content": None}]},
            {"messages": [USER, {"role": "assistant", "content": "쉬는 중!", "reasoning_content": ""}]}]
    dialogues, report = _load(tmp_path, rows)
    assert [d[1]["content"] for d in dialogues] == [
        "<think>\n사용자가 인사를 했다. 가볍게 답하자.\n</think>\n\n그냥 쉬고 있어.", "쉬는 중!", "쉬는 중!"]
    assert not report.dropped


@pytest.mark.parametrize("text, expected", [
    ("<think>\n점심 추천을 원한다.\n</think>\n\n김밥 어때?", "<think>\n점심 추천을 원한다.\n</think>\n\n김밥 어때?"),
    ("<think>짧게</think>응!", "<think>\n짧게\n</think>\n\n응!"),
    ("  <think>\nA 😀 (메모) ㅋㅋㅋㅋ\n</think>\n\nOK 😀", "<think>\na ㅋㅋ\n</think>\n\nok"),
    ("<think>\n\n</think>\n\n김밥 어때?", "김밥 어때?"),  # an empty block is no reasoning
    ("<think>😀</think>김밥!", "김밥!"),  # nothing of the reasoning survives cleaning
    ("김밥 <think>x</think> 어때", "김밥 think x /think 어때"),  # not at the start: ordinary text
])
def test_a_leading_think_block_survives_cleaning(text, expected):
    assert clean_reply(text, CleaningOptions()) == (expected, None)


def test_a_reply_with_reasoning_but_no_answer_is_a_counted_drop():
    assert clean_reply("<think>생각만</think>😀", CleaningOptions()) == ("", "empty_after_cleaning")


def test_think_blocks_in_chat_json_reach_the_dialogues_and_read_back_the_same(tmp_path):
    rows = [{"messages": [USER, {"role": "assistant", "content": "<think>\n인사다.\n</think>\n\n응, 쉬어!"},
                          {"role": "user", "content": "<think>유저</think>나는?"},
                          {"role": "assistant", "content": "너도 쉬어.", "reasoning_content": "  묻는다  "}]}]
    dialogues, _ = _load(tmp_path, rows)
    assert [m["content"] for m in dialogues[0]] == [
        "안녕 뭐해?", "<think>\n인사다.\n</think>\n\n응, 쉬어!", "think 유저 /think 나는?",
        "<think>\n묻는다\n</think>\n\n너도 쉬어."]
    (tmp_path / "again").mkdir()
    again, _ = _load(tmp_path / "again", [{"messages": dialogues[0]}])
    assert again == dialogues  # prepare.py's dialogues.jsonl read back by train.py


@pytest.mark.parametrize("message, why", [
    ({"role": "assistant", "content": "응", "reasoning_content": 3}, "messages[1].reasoning_content is int"),
    ({"role": "assistant", "content": "<think>a</think>응", "reasoning_content": "b"}, "both"),
    ({"role": "user", "content": "응", "reasoning_content": "b"}, "messages[1].reasoning_content on a user message"),
])
def test_bad_reasoning_fields_are_counted_drops(tmp_path, message, why):
    rows = [{"messages": [USER, message, {"role": "assistant", "content": "응"}]},
            {"messages": [USER, {"role": "assistant", "content": "좋아"}]}]
    dialogues, report = _load(tmp_path, rows)
    assert len(dialogues) == 1 and report.dropped == {"malformed_record": 1}, report.dropped
    assert why in " ".join(report.warnings + [json.dumps(report.to_dict(), ensure_ascii=False)])


def test_reasoning_is_scrubbed_like_the_reply(tmp_path):
    rows = [{"messages": [USER, {"role": "assistant", "content": "응 알겠어",
                                  "reasoning_content": "번호는 010-4321-8765 라고 했다"}]}]
    dialogues, report = _load(tmp_path, rows, scrub_pii="on")
    assert dialogues[0][1]["content"] == "<think>\n번호는 [전화번호] 라고 했다\n</think>\n\n응 알겠어"
    assert report.pii["total"] == {"phone": 1}


def test_qwen3_trains_the_reasoning_of_chat_json_data(tmp_path):
    from chathuman_hf.tokens.features import tokenize_dialogues
    from chathuman_hf.tokens.labels import target_mask
    from chathuman_hf.tokens.template_choice import apply_template_choice
    from tests.helpers.real_templates import real_template_tokenizer

    rows = [{"messages": [USER, {"role": "assistant", "content": "그냥 쉬고 있어.", "reasoning_content": "인사다."}]}]
    dialogues, _ = _load(tmp_path, rows)
    tok = apply_template_choice(real_template_tokenizer("qwen3"), "model")
    row = tokenize_dialogues(dialogues, tok, max_length=512, label_mode="-100+sys")[-1]
    mask = target_mask(row["roles"], row["last_turn"], "-100+sys")
    trained = tok.decode([t for t, keep in zip(row["input_ids"], mask, strict=True) if keep])
    assert trained == "<think>\n인사다.\n</think>\n\n그냥 쉬고 있어.<|im_end|>"

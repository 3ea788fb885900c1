"""Training data with tool calls (issue 31, item 4): records in TRL's/OpenAI's message form with a ``tools`` list
load, render through the real chat templates (tests/chat_templates), the assistant's call turns train like replies
(each as the model generates it after the generation prompt) and tool results train in no mode; a template without
tool support is a one-line error naming the record."""

from __future__ import annotations

import json
import runpy

import pytest

from chathuman_hf.data import DataReport, load_dialogues
from chathuman_hf.tokens.features import tokenize_dialogues
from chathuman_hf.tokens.labels import ASSISTANT, HISTORY, TOOL, target_mask
from chathuman_hf.tokens.rendering import TemplateError
from chathuman_hf.tokens.template_choice import apply_template_choice
from tests.helpers.real_templates import real_template_tokenizer

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
# TRL's documented tool-calling row: the call's arguments as a dict, no content on the calling message
RECORD = {"messages": [
    {"role": "user", "content": "Weather in Seoul?"},
    {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                                            "arguments": {"city": "Seoul"}}}]},
    {"role": "tool", "name": "get_weather", "content": "sunny 20C"},
    {"role": "assistant", "content": "It is sunny."}], "tools": TOOLS}
# OpenAI's form: arguments as a JSON string, the result tied by tool_call_id, tools as TRL's JSON-string column
OPENAI_RECORD = {"messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Busan?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": "{\"city\": \"Busan\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
    {"role": "assistant", "content": "It rains."}], "tools": json.dumps(TOOLS)}
CALL = '{"name": "get_weather", "arguments": {"city": "Seoul"}}'
# What trains under -100+sys (every assistant turn) and what is a tool result, per template: literal text spans
SPANS = {
    "qwen2_5": ([f"<tool_call>\n{CALL}\n</tool_call><|im_end|>", "It is sunny.<|im_end|>"],
                ["<|im_start|>user\n<tool_response>\nsunny 20C\n</tool_response><|im_end|>\n"]),
    "llama3_1": (['{"name": "get_weather", "parameters": {"city": "Seoul"}}<|eot_id|>', "It is sunny.<|eot_id|>"],
                 ['<|start_header_id|>ipython<|end_header_id|>\n\n"sunny 20C"<|eot_id|>']),
    "exaone4": ([f"<tool_call>{CALL}</tool_call>[|endofturn|]", "It is sunny.[|endofturn|]"],
                ['[|tool|]\n<tool_result>{"result": "sunny 20C"}</tool_result>[|endofturn|]\n']),
}


def _tokenizer(name: str):
    return apply_template_choice(real_template_tokenizer(name), "model")


def _write(tmp_path, *records) -> str:
    path = tmp_path / "tools.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return str(path)


def _spans(tok, row, keep) -> list[str]:
    """The text of each run of consecutive tokens ``keep(t)`` selects."""
    runs, run = [], []
    for t, tid in enumerate(row["input_ids"]):
        if keep(t):
            run.append(tid)
        elif run:
            runs.append(run)
            run = []
    return [tok.decode(r, skip_special_tokens=False) for r in [*runs, run] if r]


def test_trl_and_openai_tool_records_load_with_their_tools_and_calls(tmp_path):
    report = DataReport()
    dialogues = load_dialogues(_write(tmp_path, RECORD, OPENAI_RECORD, {"messages": [
        {"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"function": {
            "name": "get_weather", "arguments": "{city"}}]}]}), report=report)
    assert len(dialogues) == 2 and dict(report.dropped) == {"malformed_record": 1}
    assert [m["role"] for m in dialogues[0]["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert [m["role"] for m in dialogues[1]["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    tok = _tokenizer("qwen2_5")
    # text turns are cleaned as usual (English lower-cased by default); tool data is kept verbatim ("Busan")
    text = tok.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "weather in busan?"},
         {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {
             "name": "get_weather", "arguments": {"city": "Busan"}}}]},
         {"role": "tool", "tool_call_id": "call_1", "content": "rain"}, {"role": "assistant", "content": "it rains."}],
        tools=TOOLS, tokenize=False)
    row = tokenize_dialogues(dialogues.select([1]), tok, max_length=1024)[0]
    assert row["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("name", sorted(SPANS))
def test_calls_train_like_replies_and_tool_results_never(name):
    tok = _tokenizer(name)
    dialogues = [RECORD["messages"]]
    from chathuman_hf.data.tool_turns import pack, with_tools

    roles = [m["role"] for m in RECORD["messages"]]
    texts = ["Weather in Seoul?", pack("", {"tool_calls": RECORD["messages"][1]["tool_calls"]}),
             pack("sunny 20C", {"name": "get_weather"}), "It is sunny."]
    roles, texts = with_tools(roles, texts, TOOLS)
    dialogues = [[{"role": r, "content": t} for r, t in zip(roles, texts, strict=True)]]
    rows = tokenize_dialogues(dialogues, tok, max_length=4096, label_mode="-100+sys")
    assert len(rows) == 1
    row = rows[0]
    trained, tool = SPANS[name]
    for mode in ("-100+sys", "-100"):  # both assistant turns answer the last user message: -100 trains both
        mask = target_mask(row["roles"], row["last_turn"], mode)
        assert _spans(tok, row, lambda t, m=mask: m[t]) == trained
    assert _spans(tok, row, lambda t: row["roles"][t] == TOOL) == tool
    input_mask = target_mask(row["roles"], row["last_turn"], "input")
    assert not any(m for m, r in zip(input_mask, row["roles"], strict=True) if r == TOOL)
    assert sum(input_mask) == len(row["input_ids"]) - 1 - row["roles"].count(TOOL)


def test_qwen3_call_trains_in_its_own_row_with_its_empty_think_block():
    """Qwen3 renders a call that is not the newest message without the empty think block it is generated with."""
    tok = _tokenizer("qwen3")
    from chathuman_hf.data.tool_turns import pack, with_tools

    roles, texts = with_tools(["user", "assistant", "tool", "assistant"], [
        "Weather in Seoul?", pack("", {"tool_calls": RECORD["messages"][1]["tool_calls"]}),
        pack("sunny 20C", {"name": "get_weather"}), "It is sunny."], TOOLS)
    rows = tokenize_dialogues([[{"role": r, "content": t} for r, t in zip(roles, texts, strict=True)]], tok,
                              max_length=1024, label_mode="-100")
    assert len(rows) == 2
    whole, call = rows[0], rows[1]
    assert _spans(tok, whole, lambda t: target_mask(whole["roles"], whole["last_turn"], "-100")[t]) == [
        "<think>\n\n</think>\n\nIt is sunny.<|im_end|>"]
    history = _spans(tok, whole, lambda t: whole["roles"][t] == HISTORY)
    assert history == [f"<|im_start|>assistant\n<tool_call>\n{CALL}\n</tool_call><|im_end|>"]
    assert _spans(tok, call, lambda t: target_mask(call["roles"], call["last_turn"], "input")[t]) == [
        f"<|im_start|>assistant\n<think>\n\n</think>\n\n<tool_call>\n{CALL}\n</tool_call><|im_end|>\n"]
    assert _spans(tok, call, lambda t: call["roles"][t] == ASSISTANT) == [
        f"<think>\n\n</think>\n\n<tool_call>\n{CALL}\n</tool_call><|im_end|>"]
    generated = tok.apply_chat_template(RECORD["messages"][:1], tools=TOOLS, tokenize=False,
                                        add_generation_prompt=True)
    assert tok.decode(call["input_ids"]).startswith(generated)


@pytest.mark.parametrize("name", ["gemma3", "chathuman"])
def test_a_template_without_tool_support_is_a_one_line_error_naming_the_record(tmp_path, name):
    tok = _tokenizer("gemma3") if name == "gemma3" else apply_template_choice(_tokenizer("qwen2_5"), "chathuman")
    dialogues = load_dialogues(_write(tmp_path, RECORD))
    refusal = r"tools.jsonl record tools:1 has tool calling, and .* does not render tools.*; train a base"
    with pytest.raises(TemplateError, match=refusal) as err:
        tokenize_dialogues(dialogues, tok, max_length=1024)
    assert "\n" not in str(err.value)


def test_inspect_labels_shows_the_call_and_reply_spans(repo_root, tmp_path, capsys):
    real_template_tokenizer("qwen2_5").save_pretrained(tmp_path / "tok")
    main = runpy.run_path(str(repo_root / "recipes" / "inspect_labels.py"), run_name="inspect_recipe")["main"]
    main(["--model", str(tmp_path / "tok"), "--chat_template", "model", "--data", _write(tmp_path, RECORD),
          "--label-mode", "-100", "--max_length", "1024", "--data_cache_dir", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert "[<tool_call>]" in out and "[<|im_end|>]\\n<|im_start|>user\\n<tool_response>" in out
    assert "sunny 20C" in out.replace("][", "") and "[ 20C]" not in out


@pytest.mark.slow
def test_train_recipe_on_tool_call_data(tmp_path, repo_root):
    import os
    import subprocess
    import sys

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tests.helpers.families import TINY_FAMILY_CONFIGS

    base = tmp_path / "base"  # the tiny real-template base, with room for the tool definitions (~800 tokens)
    tok = real_template_tokenizer("qwen2_5")
    tok.save_pretrained(base)
    config = AutoConfig.for_model("llama", vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                  **{**TINY_FAMILY_CONFIGS["llama"], "max_position_embeddings": 1024})
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(base)
    out = tmp_path / "out"
    cmd = [sys.executable, str(repo_root / "recipes" / "train.py"), "--model_name_or_path", str(base), "--data",
           _write(tmp_path, RECORD, OPENAI_RECORD), "--output_dir", str(out), "--max_steps", "2",
           "--generation_prompts", "0", "--label_mode", "-100+sys", "--max_length", "1024", "--eval_split", "0",
           "--eval_strategy", "no", "--load_best_model_at_end", "false"]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo_root)},
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["examples"]["train_examples"] == 2, report


def test_reasoning_before_a_call_is_kept_and_trains_where_qwen3_renders_it(tmp_path):
    record = json.loads(json.dumps(RECORD))
    record["messages"][1]["reasoning_content"] = "need weather"
    tok = _tokenizer("qwen3")
    rows = tokenize_dialogues(load_dialogues(_write(tmp_path, record)), tok, max_length=4096, label_mode="-100")
    assert len(rows) == 1  # with its reasoning the call renders as generated: no row of its own
    row = rows[0]
    assert _spans(tok, row, lambda t: target_mask(row["roles"], row["last_turn"], "-100")[t]) == [
        f"<think>\nneed weather\n</think>\n\n<tool_call>\n{CALL}\n</tool_call><|im_end|>",
        "<think>\n\n</think>\n\nit is sunny.<|im_end|>"]

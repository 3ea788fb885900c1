"""The chat templates real models ship (tests/chat_templates, sources in SOURCES.md): every reply trains exactly as
the model is prompted at inference — compared token for token with ``apply_chat_template`` — or the template is
refused in one line."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from chathuman_hf.tokens.features import tokenize_dialogues
from chathuman_hf.tokens.labels import HISTORY, target_mask
from chathuman_hf.tokens.rendering import TemplateError
from chathuman_hf.tokens.template_choice import apply_template_choice
from tests.helpers.real_templates import END_OF_TURN, TEMPLATES, make_real_template_model_dir, real_template_tokenizer

DIALOGUE = [
    {"role": "user", "content": "안녕하세요"},
    {"role": "assistant", "content": "네, 반가워요!"},
    {"role": "user", "content": "점심 뭐 먹었어?"},
    {"role": "assistant", "content": "김밥 먹었어요."},
    {"role": "user", "content": "맛있었어?"},
    {"role": "assistant", "content": "응, 정말 맛있었어."},
]
# Per template: rows per 3-reply dialogue (1: every reply renders as at inference; 3: history rewritten, a row per
# reply) or the refusal.
VERDICT = {
    "qwen2_5": 1, "qwen3": 3, "smollm2": 1, "exaone3_5": 1, "exaone4": 1, "llama3_1": 1, "llama3_2": 1, "gemma2": 1,
    "gemma3": 1, "phi4_mini": 1, "mistral_small": 1, "mistral_small3_2": 1, "tinyllama": 1, "olmo2": 1,
    "granite3_3": 1, "deepseek_r1_distill": "reasoning-only", "exaone_deep": "reasoning-only",
    "gemma4": "prompt-mismatch",  # its generation prompt adds an empty thought channel (tests/test_gemma_tools.py)
}
TRAINED = [name for name in TEMPLATES if isinstance(VERDICT[name], int)]


def _tokenizer(name: str):
    return apply_template_choice(real_template_tokenizer(name), "model")


def _inference_turns(tok, messages: list[dict]) -> list[tuple[list[int], list[int]]]:
    """Per reply, straight from ``apply_chat_template``: (prompt ids with the generation prompt, the ids the model
    should generate after it: the newest reply as rendered, up to and including its end-of-turn text)."""
    eot = END_OF_TURN[tok.name_or_path]
    out = []
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = tok.apply_chat_template(messages[:k], add_generation_prompt=True, tokenize=True, return_dict=False)
        prompt_text = tok.apply_chat_template(messages[:k], add_generation_prompt=True, tokenize=False)
        text = tok.apply_chat_template(messages[: k + 1], tokenize=False)
        assert text.startswith(prompt_text)
        ids = tok(text[: text.index(eot, len(prompt_text)) + len(eot)], add_special_tokens=False)["input_ids"]
        assert ids[: len(prompt)] == prompt
        out.append((prompt, ids[len(prompt):]))
    return out


def _trained_runs(rows, mode: str) -> list[tuple[list[int], list[int]]]:
    """Per row, each run of consecutive trained tokens: (the ids before it, its ids)."""
    runs = []
    for row in rows:
        ids, mask = row["input_ids"], target_mask(row["roles"], row["last_turn"], mode)
        t = 0
        while t < len(ids):
            if mask[t]:
                end = t
                while end < len(ids) and mask[end]:
                    end += 1
                runs.append((ids[:t], ids[t:end]))
                t = end
            else:
                t += 1
    return runs


@pytest.mark.parametrize("name", TRAINED)
def test_each_reply_trains_in_its_inference_context(name):
    tok = _tokenizer(name)
    expected = _inference_turns(tok, DIALOGUE)
    rows = {mode: list(tokenize_dialogues([DIALOGUE], tok, max_length=4096, label_mode=mode))
            for mode in ("-100+sys", "-100", "input", "shift")}
    assert len(rows["-100+sys"]) == len(rows["input"]) == VERDICT[name]
    assert len(rows["-100"]) == 1  # rows added for a rewriting template carry no last reply: not built for -100
    assert _trained_runs(rows["-100+sys"], "-100+sys") == expected
    assert _trained_runs(rows["-100"], "-100") == expected[-1:]
    full = tok.apply_chat_template(DIALOGUE, tokenize=True, return_dict=False)
    assert rows["-100"][0]["input_ids"] == full  # the last row is the whole conversation as the template renders it
    for row in rows["input"]:
        assert target_mask(row["roles"], row["last_turn"], "input") == target_mask(row["roles"], row["last_turn"],
                                                                                  "shift")
    if VERDICT[name] == 1:
        (row,) = rows["input"]
        assert target_mask(row["roles"], row["last_turn"], "input") == [False] + [True] * (len(full) - 1)
        assert HISTORY not in row["roles"]
    else:  # row k is the conversation up to reply k; what precedes its newest exchange trained in an earlier row
        for k, row in enumerate(rows["input"]):
            upto = DIALOGUE[: 2 * k + 2]
            assert row["input_ids"] == tok.apply_chat_template(upto, tokenize=True, return_dict=False)
            mask = target_mask(row["roles"], row["last_turn"], "input")
            trained = tok.decode([t for t, m in zip(row["input_ids"], mask, strict=True) if m])
            text = tok.apply_chat_template(upto, tokenize=False)
            newest = text.rindex(upto[-2]["content"]) - len("<|im_start|>user\n")
            assert trained == text[newest - 1 if k else len(tok.decode(row["input_ids"][:1])):]


@pytest.mark.parametrize("name", [n for n in TEMPLATES if VERDICT[n] == "reasoning-only"])
def test_reasoning_only_templates_are_refused_in_one_line(name):
    with pytest.raises(TemplateError, match=r"is a reasoning-only template: its generation prompt opens a reasoning "
                                            r"block .* use --chat_template chathuman") as err:
        _tokenizer(name)
    assert "\n" not in str(err.value)


def test_qwen3_empty_think_block_trains_with_the_reply_and_rows_are_reported():
    from chathuman_hf.data import DataReport

    tok = _tokenizer("qwen3")
    report = DataReport()
    rows = tokenize_dialogues([DIALOGUE], tok, max_length=4096, label_mode="-100+sys", report=report)
    last = rows[-1]
    trained = [t for t, m in zip(last["input_ids"], target_mask(last["roles"], last["last_turn"], "-100+sys"),
                                 strict=True) if m]
    assert tok.decode(trained) == "<think>\n\n</think>\n\n응, 정말 맛있었어.<|im_end|>"
    info = report.stats["inference_context_rows"]
    assert info["rows_added"] == 2
    assert info["tokens_added"] == len(rows[0]["input_ids"]) + len(rows[1]["input_ids"])


def test_phi4_mini_trailing_eos_is_end_of_conversation_text_not_a_reply():
    tok = _tokenizer("phi4_mini")
    (row,) = tokenize_dialogues([DIALOGUE], tok, max_length=4096)
    assert row["input_ids"][-1] == tok.eos_token_id  # <|endoftext|> ends the render without a generation prompt
    assert not target_mask(row["roles"], row["last_turn"], "-100+sys")[-1]
    assert target_mask(row["roles"], row["last_turn"], "input")[-1]


def test_strftime_now_renders_one_fixed_date_for_the_run():
    tok = apply_template_choice(real_template_tokenizer("llama3_2"), "model", template_date="2025-01-31")
    (row,) = tokenize_dialogues([DIALOGUE], tok, max_length=4096)
    text = tok.decode(row["input_ids"])
    assert "Today Date: 31 Jan 2025\n" in text
    today = dt.date.today().strftime("%d %b %Y")  # apply_chat_template itself: today; the saved template unchanged
    assert f"Today Date: {today}\n" in tok.apply_chat_template(DIALOGUE, tokenize=False)
    with pytest.raises(TemplateError, match=r"--template_date '31/01/2025': not a date; use YYYY-MM-DD"):
        apply_template_choice(real_template_tokenizer("llama3_2"), "model", template_date="31/01/2025")


def test_plain_text_markers_are_accepted_and_a_marker_split_differently_in_context_is_refused():
    tok = _tokenizer("tinyllama")  # <|user|>, <|assistant|>: plain text, several byte-level pieces each
    assert len(tok.encode("<|assistant|>", add_special_tokens=False)) > 1
    bad = real_template_tokenizer("tinyllama")
    bad.chat_template = ("{% for m in messages %}{{ '<|' + m['role'] + '|>>' + m['content'] + eos_token }}{% endfor %}"
                         "{% if add_generation_prompt %}{{ '<|assistant|>>' }}{% endif %}")
    with pytest.raises(TemplateError, match=r"uses <\|assistant\|>, which tokenizes differently inside a conversation "
                                            r"than alone") as err:
        apply_template_choice(bad, "model")
    assert "\n" not in str(err.value)


def _train(tmp_path, repo_root, name: str):
    import os
    import subprocess
    import sys

    base = make_real_template_model_dir(tmp_path / "base", name)
    out = tmp_path / "out"
    cmd = [sys.executable, str(repo_root / "recipes" / "train.py"), "--model_name_or_path", str(base), "--data",
           str(repo_root / "chathuman_hf" / "sample_data" / "chat.jsonl"), "--output_dir", str(out), "--max_steps",
           "2", "--generation_prompts", "1", "--label_mode", "-100+sys", "--template_date", "2025-01-31"]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo_root)},
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / "chat_template.jinja").read_text(encoding="utf-8") == (base / "chat_template.jinja").read_text(
        encoding="utf-8")
    assert json.loads((out / "run_args.json").read_text())["ModelArguments"]["template_date"] == "2025-01-31"
    return run, json.loads((out / "report.json").read_text())


def test_train_recipe_on_the_real_qwen3_template(tmp_path, repo_root):
    run, report = _train(tmp_path, repo_root, "qwen3")
    assert report["inference_context_rows"]["rows_added"] > 0
    assert "every reply gets its own row in its inference context" in run.stderr  # a note: stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llama3_2", "phi4_mini"])
def test_train_recipe_on_real_templates(tmp_path, repo_root, name):
    _, report = _train(tmp_path, repo_root, name)
    assert "inference_context_rows" not in report


def test_held_out_reply_scores_use_the_replys_inference_context(tmp_path):
    """Response selection scores a Qwen3 reply after the multi-turn context as at inference (history rewritten,
    empty think block before the reply): the tokens and context of the training row that trains it."""
    import torch
    from transformers import AutoModelForCausalLM

    from chathuman_hf.evaluation.reply_scoring import mean_reply_loglik

    path = make_real_template_model_dir(tmp_path / "qwen3", "qwen3")
    tok, model = _tokenizer("qwen3"), AutoModelForCausalLM.from_pretrained(path).eval()
    context, replies = DIALOGUE[:3], ["김밥 먹었어요.", "라면 먹었어"]
    scores = mean_reply_loglik(model, tok, [(context, r) for r in replies], max_length=512, batch_size=2)
    for reply, score in zip(replies, scores, strict=True):
        row = tokenize_dialogues([[*context, {"role": "assistant", "content": reply}]], tok, max_length=512,
                                 label_mode="-100+sys")[-1]
        trained = target_mask(row["roles"], row["last_turn"], "-100+sys")
        with torch.no_grad():
            logp = model(torch.tensor([row["input_ids"]])).logits[0].log_softmax(-1)
        expected = [float(logp[t - 1, row["input_ids"][t]]) for t, keep in enumerate(trained) if keep]
        assert len(expected) > 8  # the empty think block, the reply and <|im_end|>
        assert score == pytest.approx(sum(expected) / len(expected), abs=1e-4)


def test_reasoning_trains_where_the_template_renders_it():
    """``<think>…</think>`` at the start of a reply (or ``reasoning_content``): Qwen3 renders it in the newest reply
    only, so each reply's reasoning trains in its own row; EXAONE 4.0 renders none by default (``skip_think``); a
    template that does not read reasoning (Llama 3.2) gets the content verbatim."""
    dialogue = [DIALOGUE[0], {"role": "assistant", "content": "<think>\n인사하자\n</think>\n\n네, 반가워요!"},
                DIALOGUE[2], {"role": "assistant", "content": "김밥 먹었어요.", "reasoning_content": " 점심 메뉴 "}]
    trained = {}
    for name in ("qwen3", "exaone4", "llama3_2"):
        tok = _tokenizer(name)
        rows = tokenize_dialogues([dialogue], tok, max_length=4096, label_mode="-100+sys")
        trained[name] = [tok.decode([t for t, m in zip(r["input_ids"], target_mask(r["roles"], r["last_turn"],
                                                                                    "-100+sys"), strict=True) if m])
                         for r in rows]
    assert trained["qwen3"] == ["<think>\n인사하자\n</think>\n\n네, 반가워요!<|im_end|>",
                                "<think>\n점심 메뉴\n</think>\n\n김밥 먹었어요.<|im_end|>"]
    assert trained["exaone4"] == ["네, 반가워요![|endofturn|]김밥 먹었어요.[|endofturn|]"]
    assert trained["llama3_2"] == ["<think>\n인사하자\n</think>\n\n네, 반가워요!<|eot_id|>김밥 먹었어요.<|eot_id|>"]
    tok = _tokenizer("qwen3")  # the reply's context and target are apply_chat_template's, reasoning included
    canonical = [*dialogue[:3], {"role": "assistant", "content": "김밥 먹었어요.", "reasoning_content": "점심 메뉴"}]
    assert _trained_runs([tokenize_dialogues([dialogue], tok, max_length=4096)[-1]], "-100+sys")[-1] == \
        _inference_turns(tok, canonical)[-1]


def test_inspect_labels_shows_each_row_as_training_builds_it():
    from chathuman_hf.tokens.label_view import format_view, label_views

    tok = _tokenizer("qwen3")
    views = label_views([DIALOGUE], tok, "-100+sys")
    rows = tokenize_dialogues([DIALOGUE], tok, max_length=256, label_mode="-100+sys")
    assert [v["ids"] for v in views] == [r["input_ids"] for r in rows] and len(views) == 3
    assert format_view(views[1], tok, color=False).endswith(
        "assistant\\n[<think>][\\n][\\n][</think>][\\n][\\n][김][밥][ 먹][었어][요][.][<|im_end|>]\\n"
        "\n  trained tokens: 15 of 76")


def test_held_out_batch_of_added_rows_collates_under_the_last_reply_mode():
    """Held-out rows are built once for every mode: a batch holding only rows a rewriting template added has no
    ``-100`` target but its replies still count in the assistant perplexity."""
    from chathuman_hf.tokens.collators import ChatCollator

    tok = _tokenizer("qwen3")
    rows = list(tokenize_dialogues([DIALOGUE], tok, max_length=4096, label_mode=None))
    batch = ChatCollator(tok.pad_token_id, "-100", with_assistant_labels=True)(rows[:2])
    assert int((batch["labels"] != -100).sum()) == 0
    replies = _inference_turns(tok, DIALOGUE)[:2]
    assert int((batch["assistant_labels"] != -100).sum()) == sum(len(t) for _, t in replies)
    with pytest.raises(ValueError, match="no label-carrying token"):
        ChatCollator(tok.pad_token_id, "-100")(rows[:2])


def test_consecutive_replies_with_a_rewriting_template_are_an_error_not_a_silent_loss():
    tok = _tokenizer("qwen3")
    dialogue = [*DIALOGUE[:2], {"role": "assistant", "content": "또 왔네요"}, *DIALOGUE[2:]]
    with pytest.raises(TemplateError, match=r"consecutive assistant messages.*merge them into one message"):
        tokenize_dialogues([dialogue], tok, max_length=4096)

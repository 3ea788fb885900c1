"""Preference rows in inference form: the prompt is the template's generation prompt and each reply is what the
template renders for it when newest (end of turn included), for the real templates models ship."""

from __future__ import annotations

import json
import runpy
import sys

import pytest
from datasets import Dataset

from chathuman_hf.data import DataReport
from chathuman_hf.tokens.preference_rows import (
    format_preference_view,
    prompt_ids,
    reply_ids,
    tokenize_pairs,
    tokenize_ratings,
    unpair,
)
from chathuman_hf.tokens.rendering import TemplateError
from chathuman_hf.tokens.template_choice import apply_template_choice
from chathuman_hf.tokens.template_inputs import pinned_template
from chathuman_hf.training.preference_args import PreferenceArguments, kto_weights
from tests.helpers.real_templates import real_template_tokenizer

PROMPT = [{"role": "user", "content": "안녕하세요"}, {"role": "assistant", "content": "반가워요"},
          {"role": "user", "content": "오늘 날씨 어때?"}]
CHOSEN = [{"role": "assistant", "content": "맑아요!"}]
REJECTED = [{"role": "assistant", "content": "몰라"}]
# what each template renders for the newest reply (what the model generates), and what follows it in the full render
REPLY_TEXT = {
    "qwen3": ("<think>\n\n</think>\n\n맑아요!<|im_end|>", "\n"),
    "exaone4": ("맑아요![|endofturn|]", "\n"),
    "llama3_2": ("맑아요!<|eot_id|>", ""),
    "phi4_mini": ("맑아요!<|end|>", "<|endoftext|>"),
    "gemma3": ("맑아요!<end_of_turn>", "\n"),
}


def _tokenizer(name: str):
    if name == "chathuman":
        from tests.helpers.tiny_models import make_word_tokenizer

        return make_word_tokenizer(["안녕하세요", "반가워요", "오늘", "날씨", "어때?", "맑아요!", "몰라"])
    tok = real_template_tokenizer(name)
    return apply_template_choice(tok, "model", template_date="2025-03-01") if name == "llama3_2" else tok


@pytest.mark.parametrize("name", [*REPLY_TEXT, "chathuman"])
def test_reply_tokens_are_apply_chat_template(name):
    tok = _tokenizer(name)
    template = pinned_template(tok)  # Llama 3.2's date fixed by --template_date
    prompt = prompt_ids(PROMPT, tok)
    assert prompt == tok.apply_chat_template(PROMPT, add_generation_prompt=True, chat_template=template,
                                             return_dict=False)
    for reply, ids in zip((CHOSEN, REJECTED), reply_ids(PROMPT, [CHOSEN, REJECTED], tok), strict=True):
        full = tok.apply_chat_template(PROMPT + reply, chat_template=template, return_dict=False)
        assert full[: len(prompt) + len(ids)] == prompt + ids
        if name in REPLY_TEXT:
            text, after = REPLY_TEXT[name]
            assert tok.decode(ids) == text.replace("맑아요!", reply[0]["content"])
            assert tok.decode(full[len(prompt) + len(ids):]) == after
        else:
            assert tok.decode(ids).endswith("</s>")


@pytest.mark.parametrize("name", ["deepseek_r1_distill", "exaone_deep"])
def test_reasoning_only_templates_are_refused(name):
    tok = real_template_tokenizer(name)
    with pytest.raises(TemplateError, match="reasoning-only template") as info:
        tokenize_pairs(Dataset.from_list([{"prompt": PROMPT, "chosen": CHOSEN, "rejected": REJECTED}]), tok,
                       max_length=512)
    assert "\n" not in str(info.value)


def test_long_prompts_are_dropped_and_counted_not_cut():
    tok = real_template_tokenizer("qwen3")
    short = {"prompt": PROMPT[2:], "chosen": CHOSEN, "rejected": REJECTED}
    long = {"prompt": [{"role": "user", "content": "아주 긴 질문 " * 40}], "chosen": CHOSEN, "rejected": REJECTED}
    report = DataReport()
    rows = tokenize_pairs(Dataset.from_list([short, long, short]), tok, max_length=48, report=report)
    assert len(rows) == 2 and dict(report.dropped) == {"prompt_too_long": 1}
    assert rows[0]["prompt_ids"] == prompt_ids(PROMPT[2:], tok)  # kept rows are whole
    ratings = unpair(Dataset.from_list([short, long]))
    assert ratings["label"] == [True, False, True, False]
    kept = tokenize_ratings(ratings, tok, max_length=48, report=report, prefix="eval:")
    assert kept["label"] == [True, False]
    assert dict(report.dropped) == {"prompt_too_long": 1, "eval:prompt_too_long": 2}


def test_kto_weights_follow_the_counts():
    args = PreferenceArguments(stage="kto")
    assert kto_weights(30, 10, args) == (1.0, 3.0)
    assert kto_weights(10, 40, args) == (4.0, 1.0)
    assert kto_weights(10, 10, args) == (1.0, 1.0)
    assert kto_weights(30, 10, PreferenceArguments(stage="kto", desirable_weight=0.5)) == (0.5, 1.0)
    with pytest.raises(ValueError, match="needs both 👍 and 👎 replies; the training data has 12 👍 and 0 👎"):
        kto_weights(12, 0, args)


def test_inspect_labels_shows_prompt_chosen_rejected_spans(tmp_path, repo_root, capsys, monkeypatch):
    pytest.importorskip("chathuman_hf.data.preferences")
    tok = real_template_tokenizer("qwen3")
    tok.save_pretrained(tmp_path / "qwen3")
    data = tmp_path / "prefs.jsonl"
    data.write_text(json.dumps({"prompt": PROMPT, "chosen": CHOSEN, "rejected": REJECTED}, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    script = repo_root / "recipes" / "inspect_labels.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--stage", "dpo", "--model", str(tmp_path / "qwen3"),
                                      "--data", str(data), "--json"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code == 0
    (view,) = json.loads(capsys.readouterr().out)
    assert view["chosen"] == "<think>\n\n</think>\n\n맑아요!<|im_end|>"
    assert view["rejected"] == "<think>\n\n</think>\n\n몰라<|im_end|>"
    assert view["prompt"].endswith("<|im_start|>user\n오늘 날씨 어때?<|im_end|>\n<|im_start|>assistant\n")
    assert view["prompt_ids"] == prompt_ids(PROMPT, tok)
    assert format_preference_view(view).splitlines()[1].startswith("  chosen     [<think>\\n\\n</think>")

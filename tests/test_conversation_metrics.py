"""Conversation metrics: distinct/repeat/context sensitivity, speech agreement, response selection (hits@1, MRR)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from chathuman_hf.evaluation.conversation import (
    collapse_warning,
    context_sensitivity,
    distinct_n,
    reference_replies,
    repeats_ngram,
)
from chathuman_hf.evaluation.perplexity import health_prompts
from chathuman_hf.evaluation.reply_scoring import mean_reply_loglik
from chathuman_hf.evaluation.response_selection import rank_metrics, response_selection, selection_items
from chathuman_hf.tokens.tokenizer import prepare_tokenizer


def dialogue(*turns: str) -> dict:
    roles = ["user", "assistant"] * len(turns)
    return {"messages": [{"role": r, "content": t} for r, t in zip(roles, turns, strict=False)]}


DIALOGUES = [dialogue(f"질문 {i}", f"대답 {i}", f"다음 질문 {i}", f"다음 대답 {i}") for i in range(12)]


def test_distinct_repeat_and_context_sensitivity():
    assert distinct_n([["a", "b", "a"], ["a", "b"]], 1) == 2 / 5
    assert distinct_n([["a", "b", "a"], ["a", "b"]], 2) == 2 / 3
    assert distinct_n([[], ["a"]], 2) == 0.0
    assert repeats_ngram(["x", "a", "b", "c", "d"], [["a", "b", "c", "d", "e"]]) is True
    assert repeats_ngram(["a", "b", "c", "x"], [["a", "b", "c", "d"]]) is False
    assert context_sensitivity(["좋아요.", "좋아요.", " 좋아요. ", "싫어요."]) == 0.5
    assert context_sensitivity(["같은 말"] * 20) == 0.05


def test_rank_metrics_count_ties_against_the_true_reply():
    scores = [[-1.0, -2.0, -3.0], [-2.0, -1.0, -3.0], [-1.0, -1.0, -0.5]]
    assert rank_metrics(scores) == {"hits_at_1": 1 / 3, "mrr": pytest.approx((1 + 1 / 2 + 1 / 3) / 3)}


def test_selection_items_draw_distractors_from_other_dialogues_with_a_fixed_seed():
    items = selection_items(DIALOGUES, contexts=10, distractors=19, seed=0)
    assert len(items) == 10
    assert items == selection_items(DIALOGUES, contexts=10, distractors=19, seed=0)
    assert items != selection_items(DIALOGUES, contexts=10, distractors=19, seed=1)
    for item in items:
        assert len(item.candidates) == 20 and item.candidates[0] == item.reply
        own = {m["content"] for m in DIALOGUES[item.dialogue]["messages"]}
        assert not own & set(item.candidates[1:])  # distractors come from other dialogues
        assert item.context[-1]["role"] == "user" and item.reply in own


def test_reference_replies_follow_the_health_prompts():
    prompts = health_prompts(DIALOGUES, 3)
    assert reference_replies(DIALOGUES, prompts) == ["다음 대답 0", "다음 대답 1", "다음 대답 2"]


def test_collapse_warning_names_the_number():
    assert collapse_warning({"eval_context_sensitivity": 0.9}) is None
    assert collapse_warning({}) is None
    assert "eval_context_sensitivity 0.05" in collapse_warning({"eval_context_sensitivity": 0.05})


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), prepare_tokenizer(AutoTokenizer.from_pretrained(
        tiny_model_dir))


def test_reply_score_is_the_mean_log_likelihood_of_the_reply_tokens(tiny):
    model, tok = tiny
    context = [{"role": "user", "content": "오늘 뭐 했어?"}]
    prefix = tok.apply_chat_template(context, add_generation_prompt=True, tokenize=True, return_dict=False)
    scores = mean_reply_loglik(model, tok, [(context, "집에 있었어"), (context, "영화 봤어. 재밌더라")], batch_size=2)
    for reply, score in zip(["집에 있었어", "영화 봤어. 재밌더라"], scores, strict=True):
        full = tok.apply_chat_template([*context, {"role": "assistant", "content": reply}], tokenize=True,
                                       return_dict=False)
        with torch.no_grad():
            logp = model(torch.tensor([full])).logits[0].log_softmax(-1)
        expected = [float(logp[t - 1, full[t]]) for t in range(len(prefix), len(full))]  # reply tokens + eos
        assert score == pytest.approx(sum(expected) / len(expected), abs=1e-4)


def test_response_selection_reports_hits_and_mrr(tiny):
    model, tok = tiny
    items = selection_items(DIALOGUES, contexts=6, seed=0)
    out = response_selection(model, tok, items, max_length=64)
    assert out["selection_contexts"] == 6 and out["selection_candidates"] == 20
    for key in ("selection_hits_at_1", "selection_meanll_hits_at_1"):
        assert out[key] in {k / 6 for k in range(7)}
    assert 1 / 20 <= out["selection_mrr"] <= 1 and 1 / 20 <= out["selection_meanll_mrr"] <= 1


def test_speech_agreement_leaves_undetermined_pairs_out():
    pytest.importorskip("kiwipiepy")
    from chathuman_hf.evaluation.conversation import reply_metrics, speech_agreement

    out = speech_agreement(["밥 먹었어?", "ㅋㅋ", "좋아요"], ["응 먹었어", "응", "좋아"])
    assert out == {"speech_agreement": 0.5, "speech_undetermined_share": 1 / 3, "speech_polite_share": 1 / 3}
    prompts = [[{"role": "user", "content": "오늘 날씨 진짜 좋다"}], [{"role": "user", "content": "배고파"}]]
    metrics = reply_metrics(prompts, ["오늘 날씨 진짜 좋다", "밥 먹어"])
    assert metrics["repeat_rate"] == 0.5 and metrics["context_sensitivity"] == 1.0


def test_leaderboard_and_model_card_show_the_conversation_metrics():
    from chathuman_hf.evaluation.leaderboard import RunSummary, render_leaderboard
    from chathuman_hf.publishing.model_card import ModelCardInfo, render_model_card

    conv = {"eval_selection_hits_at_1": 0.2, "eval_selection_mrr": 0.35, "eval_context_sensitivity": 0.95,
            "eval_speech_agreement": 0.8, "eval_repeat_rate": 0.05}
    runs = [RunSummary("input", [2.0], 1.9, 30.0, 0.0, 1.0, 61.0, 40, conversation=conv),
            RunSummary("-100", [3.0], 3.6, 40.0, 0.0, 1.0, 58.0, 40)]
    text = render_leaderboard(runs, prompts=())
    assert "| label mode | hits@1 | MRR | distinct replies | speech agreement | repeat rate |" in text
    assert "| `input` | 20.0% | 35.0% | 95.0% | 80.0% | 5.0% |" in text and "| `-100` | — | — | — | — | — |" in text
    info = ModelCardInfo(model_name="m", base_model=None, model_config={}, label_mode="input", chat_options={},
                         cleaning={}, report={}, hyperparameters={}, eval_metrics=conv)
    card = render_model_card(info)
    assert "| eval_selection_hits_at_1 | 0.2 | response selection hits@1" in card
    assert "| eval_context_sensitivity | 0.95 |" in card


def test_selection_can_wait_for_the_evaluation_after_training(tiny):
    from chathuman_hf.evaluation.conversation import ConversationEval

    model, tok = tiny
    prompts = health_prompts(DIALOGUES, 2)
    conv = ConversationEval.from_dialogues(DIALOGUES, prompts, contexts=2, max_length=64, selection_every_eval=False)
    assert "selection_hits_at_1" not in conv.compute(model, tok, prompts, ["응", "좋아"])
    conv.final = True
    assert conv.compute(model, tok, prompts, ["응", "좋아"])["selection_contexts"] == 2


@pytest.mark.parametrize("family", ["qwen2", "gemma3_text"])
def test_shared_context_cache_scores_like_a_full_forward_in_other_families(family, tmp_path):
    from chathuman_hf.evaluation.reply_scoring import ReplyRenderer, _score_one
    from tests.helpers.families import make_family_model_dir

    path = make_family_model_dir(tmp_path / family, family)
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    context = DIALOGUES[0]["messages"][:3]
    replies = ["대답 3", "다음 대답 5"]
    full = [_score_one(model, ReplyRenderer(tok), context, r, 256) for r in replies]
    assert mean_reply_loglik(model, tok, [(context, r) for r in replies]) == pytest.approx(full, abs=1e-4)


@pytest.mark.parametrize("family", ["qwen2", "gemma3_text", "exaone4", "llama"])
def test_reply_scores_count_exactly_the_tokens_that_train(tmp_path, family):
    """A reply's score averages the tokens labels.target_mask trains (content and end of turn), not the template's
    newline after the end of turn (ChatML, Gemma and EXAONE add one)."""
    from chathuman_hf.tokens.encoding import encode_dialogues
    from chathuman_hf.tokens.labels import LabelMode, target_mask
    from tests.helpers.families import make_family_model_dir

    path = make_family_model_dir(tmp_path / family, family, vocab_size=400)
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()
    context = [{"role": "user", "content": "오늘 뭐 했어?"}]
    replies = ["집에 있었어", "영화 봤어. 재밌더라"]
    scores = mean_reply_loglik(model, tok, [(context, r) for r in replies], batch_size=2)
    for reply, score in zip(replies, scores, strict=True):
        row = encode_dialogues([[*context, {"role": "assistant", "content": reply}]], tok)[0]
        trained = target_mask(row["roles"], row["last_turn"], LabelMode.LAST_SYS)
        with torch.no_grad():
            logp = model(torch.tensor([row["input_ids"]])).logits[0].log_softmax(-1)
        expected = [float(logp[t - 1, row["input_ids"][t]]) for t, keep in enumerate(trained) if keep]
        assert score == pytest.approx(sum(expected) / len(expected), abs=1e-4)

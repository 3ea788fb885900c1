"""Recipe steps: held-out split, drops in the report, the tokenizer↔model guard, gradient accumulation exactness."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from chathuman_hf.data.options import DataArguments
from chathuman_hf.tokens.collators import ChatCollator
from chathuman_hf.tokens.features import tokenize_dialogues
from chathuman_hf.tokens.tokenizer import prepare_tokenizer
from chathuman_hf.training.arguments import ChatArguments, ModelArguments
from chathuman_hf.training.build import build_chat_model
from chathuman_hf.training.data_steps import ChatData, build_tokenizer, load_data, tokenize_data, write_report
from chathuman_hf.training.trainer import ChatTrainer
from chathuman_hf.training.training_arguments import ChatTrainingArguments


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return prepare_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir))


def test_held_out_split_is_fixed_and_disjoint():
    a = load_data(DataArguments(), ChatArguments(eval_split=0.1, split_seed=42))
    b = load_data(DataArguments(), ChatArguments(eval_split=0.1, split_seed=42))
    c = load_data(DataArguments(), ChatArguments(eval_split=0.1, split_seed=7))
    key = "dialogue_id"
    held = [f"{r['source']}:{r[key]}" for r in a.eval_dialogues]
    train = {f"{r['source']}:{r[key]}" for r in a.train_dialogues}
    assert held == [f"{r['source']}:{r[key]}" for r in b.eval_dialogues]
    assert held != [f"{r['source']}:{r[key]}" for r in c.eval_dialogues]
    assert not set(held) & train
    assert len(held) + len(train) == a.report.total_kept
    assert a.report.stats["split"]["eval_dialogues"] == len(held)


@pytest.mark.parametrize("library", ["tokenizers", "sentencepiece"])
def test_train_tokenizer_option_picks_the_trainer(library):
    """--train-tokenizer --tokenizer-library LIB trains on the training split only, with the fixed special ids."""
    data = load_data(DataArguments(), ChatArguments(eval_split=0.1))
    model_args = ModelArguments(model_type="gpt2", train_tokenizer=True, vocab_size=1000, tokenizer_library=library)
    tok = build_tokenizer(model_args, ChatArguments(), data.train_dialogues)
    assert tok.convert_tokens_to_ids(["<pad>", "<unk>", "</s>", "<usr>", "<sys>"]) == [0, 1, 2, 3, 4]
    assert len(tok) == 1000  # 256 of them byte-fallback tokens (SentencePiece needs room for every character too)
    text = data.train_dialogues[0]["messages"][0]["content"]
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    # both normalize with a sequence: SentencePiece's own (SpmConverter), tokenizers' ▁-prepending one
    assert type(tok.backend_tokenizer.normalizer).__name__ == "Sequence"


def test_tokenization_drops_are_counted_in_the_report(tokenizer, tmp_path):
    data = load_data(DataArguments(), ChatArguments())
    data = tokenize_data(data, tokenizer, ChatArguments(max_length=24, label_mode="-100"))
    report = json.loads(write_report(data, tmp_path).read_text(encoding="utf-8"))
    dropped = report["dropped"]
    assert dropped["too_long_single_exchange"] > 0
    assert dropped["oldest_exchanges_truncated"] > 0
    assert any(k.startswith("eval:") for k in dropped)  # held-out drops are reported apart
    assert report["examples"]["train_examples"] == len(data.train)
    assert report["dialogues"] == data.report.total_kept
    assert max(data.train["length"]) <= 24


def test_guard_resizes_to_a_grown_tokenizer_and_names_a_bad_id(tiny_model_dir, tokenizer):
    grown = prepare_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir))
    grown.add_tokens(["<새토큰1>", "<새토큰2>", "<새토큰3>"])
    model = build_chat_model(
        ModelArguments(model_name_or_path=str(tiny_model_dir)), grown, ChatArguments(max_length=64)
    )
    assert model.get_input_embeddings().weight.shape[0] >= len(grown)
    assert model.generation_config.eos_token_id == [grown.eos_token_id, grown.convert_tokens_to_ids("<usr>")]
    bad = len(grown) + 50
    rows = {"input_ids": [[2, 5, bad]], "roles": [[0, 1, 1]], "last_turn": [[0, 0, 0]], "length": [3]}
    data = ChatData(train_dialogues=None, eval_dialogues=None, report=None, train=Dataset.from_dict(rows))
    with pytest.raises(ValueError, match=rf"token id {bad}"):
        build_chat_model(ModelArguments(model_name_or_path=str(tiny_model_dir)), grown, ChatArguments(max_length=64),
                         data)


def test_max_length_beyond_the_model_positions_is_refused(tiny_model_dir, tokenizer):
    with pytest.raises(ValueError, match="exceeds the model's 256 positions"):
        build_chat_model(
            ModelArguments(model_name_or_path=str(tiny_model_dir)), tokenizer, ChatArguments(max_length=512)
        )


# ---------------------------------------------------------------- gradient accumulation

DIALOGUES = [
    [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "안녕! 반가워."}],
    [{"role": "user", "content": "오늘 날씨 어때?"},
     {"role": "assistant", "content": "맑고 따뜻해. 산책 가기 좋은 날이야."},
     {"role": "user", "content": "그럼 공원 갈까"}, {"role": "assistant", "content": "좋아, 물 챙겨 가."}],
    [{"role": "user", "content": "배고파"}, {"role": "assistant", "content": "라면 끓여 먹자."}],
    [{"role": "user", "content": "영화 추천해 줘. 요즘 볼 게 없어서 심심해."},
     {"role": "assistant", "content": "코미디 영화 어때? 웃고 나면 기분이 좋아질 거야."},
     {"role": "user", "content": "좋아"}, {"role": "assistant", "content": "재밌게 봐!"}],
]


class GradCapture(TrainerCallback):
    def __init__(self) -> None:
        self.grads: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def one_step(model_dir, tokenizer, examples, mode, tmp_path, *, batch, accumulation):
    model = AutoModelForCausalLM.from_pretrained(model_dir, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    capture = GradCapture()
    args = ChatTrainingArguments(
        output_dir=str(tmp_path / f"{mode}-{batch}x{accumulation}"), per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation, max_steps=1, max_grad_norm=0.0, learning_rate=1.0e-03,
        eval_strategy="no", save_strategy="no", load_best_model_at_end=False, report_to="none", disable_tqdm=True,
        logging_steps=1, seed=0,
    )
    trainer = ChatTrainer(
        model=model, args=args, train_dataset=examples, processing_class=tokenizer,
        data_collator=ChatCollator(tokenizer.pad_token_id, mode, with_assistant_labels=True),
        callbacks=[capture], label_mode=mode,
    )
    result = trainer.train()
    return result.training_loss, capture.grads


@pytest.mark.parametrize("mode", ["input", "shift", "-100"])
def test_gradient_accumulation_matches_one_big_batch(tiny_model_dir, tokenizer, tmp_path, mode):
    examples = tokenize_dialogues(Dataset.from_dict({"messages": DIALOGUES}), tokenizer, max_length=128)
    assert len(set(examples["length"])) == 4  # different lengths: padding differs between the two layouts
    loss_big, grads_big = one_step(tiny_model_dir, tokenizer, examples, mode, tmp_path, batch=4, accumulation=1)
    loss_acc, grads_acc = one_step(tiny_model_dir, tokenizer, examples, mode, tmp_path, batch=1, accumulation=4)
    assert loss_acc == pytest.approx(loss_big, rel=1e-5)
    assert grads_big.keys() == grads_acc.keys() and grads_big
    for name, grad in grads_big.items():
        torch.testing.assert_close(grads_acc[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_report_to_tensorboard_when_installed(tmp_path, repo_root):
    pytest.importorskip("tensorboard")
    import os
    import subprocess
    import sys

    out = tmp_path / "tb"
    cmd = [sys.executable, str(repo_root / "recipes/train.py"), "--model_type", "gpt2", "--config_overrides",
           "n_layer=2,n_embd=32,n_head=2,n_positions=128", "--train-tokenizer", "--vocab-size", "800",
           "--max-length", "96", "--output_dir", str(out), "--max_steps", "4", "--eval_strategy", "steps",
           "--eval_steps", "4", "--save_strategy", "no", "--load_best_model_at_end", "false", "--logging_steps", "1",
           "--generation_prompts", "1", "--report_to", "tensorboard", "--disable_tqdm", "true"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run_dir,) = {p.parent for p in out.rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert {"train/loss", "eval/loss", "eval/assistant_perplexity", "eval/gen_empty_share"} <= set(
        events.Tags()["scalars"])


def test_early_stopping_ends_a_run_that_stops_improving(tiny_model_dir, tokenizer, tmp_path):
    from chathuman_hf.training.build import build_trainer

    chat = ChatArguments(max_length=128, early_stopping_patience=1, generation_prompts=0)
    data = tokenize_data(load_data(DataArguments(), chat), tokenizer, chat)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    args = ChatTrainingArguments(output_dir=str(tmp_path / "es"), num_train_epochs=6, learning_rate=0.0,
                                 per_device_train_batch_size=32, report_to="none", disable_tqdm=True,
                                 save_total_limit=1)
    trainer = build_trainer(model, tokenizer, data, chat, args)
    trainer.train()
    evals = [e for e in trainer.state.log_history if "eval_assistant_perplexity" in e]
    # lr 0: the metric never improves after the first eval, so patience 1 stops the run after the second epoch
    assert len(evals) == 2 and trainer.state.epoch == 2.0
    assert evals[0]["eval_assistant_perplexity"] == evals[1]["eval_assistant_perplexity"]


def test_packing_keeps_the_dialogues_per_step(tiny_model_dir, tokenizer, tmp_path):
    """--packing counts the batch in dialogues by default: about as many optimizer steps per epoch as unpacked."""
    import dataclasses

    from chathuman_hf.training.build import build_trainer

    chat = ChatArguments(max_length=128, packing=True, generation_prompts=0)
    data = tokenize_data(load_data(DataArguments(), chat), tokenizer, chat)
    examples, rows = data.stats["train_examples"], data.stats["train_packed_rows"]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    steps = {}
    for packing_batch in ("dialogues", "rows"):
        args = ChatTrainingArguments(output_dir=str(tmp_path / packing_batch), per_device_train_batch_size=8,
                                     report_to="none", disable_tqdm=True)
        trainer = build_trainer(model, tokenizer, data, dataclasses.replace(chat, packing_batch=packing_batch), args)
        steps[packing_batch] = (trainer.args.per_device_train_batch_size, len(trainer.get_train_dataloader()))
    assert steps["dialogues"][0] == data.stats["train_rows_per_step"] > 1
    assert abs(steps["dialogues"][1] - examples / 8) <= 0.25 * examples / 8  # the unpacked run's steps, about
    assert steps["rows"] == (8, -(-rows // 8)) and rows < examples / 2  # rows of several dialogues: far fewer steps


def test_bad_data_ends_the_recipe_with_one_line_not_a_traceback(tmp_path, repo_root):
    import os
    import subprocess
    import sys

    bad = tmp_path / "dump.json"
    bad.write_text('{"data": [{"body": ', encoding="utf-8")  # truncated download
    cmd = [sys.executable, str(repo_root / "recipes/train.py"), "--config",
           str(repo_root / "recipes/configs/quickstart.yaml"), "--data", str(bad),
           "--output_dir", str(tmp_path / "out")]
    proc = subprocess.run(cmd, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no dialogues loaded") and f"{bad}: invalid JSON at line 1" in last

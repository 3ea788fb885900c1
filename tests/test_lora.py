"""LoRA with PEFT: which token rows train, adapters without embedding copies, loading, pipeline and export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from tests.helpers.tiny_models import make_tiny_llama_dir, make_word_tokenizer

PROMPTS = [
    [{"role": "user", "content": "안녕"}],
    [{"role": "user", "content": "오늘 너무 피곤하다"}],
    [{"role": "user", "content": "점심 뭐 먹을까"}, {"role": "assistant", "content": "김치찌개 어때?"},
     {"role": "user", "content": "좋아"}],
    [{"role": "user", "content": "주말에 뭐 하지"}],
]
GREEDY = {"do_sample": False, "max_new_tokens": 12, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0}
LORA = ["--use_peft", "--lora_r", "4", "--lora_alpha", "8", "--max-length", "96", "--per_device_train_batch_size", "8",
        "--learning_rate", "5.0e-03", "--disable_tqdm", "true", "--report_to", "none", "--seed", "3"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models: one intra-op thread (2 threads on a shared 2-core machine made generation ~20x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def train(repo_root, out, *args, timeout=300):
    cmd = [sys.executable, str(repo_root / "recipes/train.py"), *LORA, *args, "--output_dir", str(out)]
    proc = subprocess.run(cmd, env=env(), cwd=repo_root, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


def adapter_keys(path) -> list[str]:
    with safe_open(str(path / "adapter_model.safetensors"), "pt") as f:
        return sorted(f.keys())


def greedy_ids(model, tokenizer) -> list[list[int]]:
    out = []
    for messages in PROMPTS:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        with torch.no_grad():
            gen = model.generate(**ids, **GREEDY, pad_token_id=tokenizer.pad_token_id)
        out.append(gen[0, ids["input_ids"].shape[1]:].tolist())
    return out


# ---------------------------------------------------------------------------------------------- unit tests


def test_added_token_ids_are_the_ids_past_the_base_vocabulary():
    from chathuman_hf.models.lora import added_token_ids

    tokenizer = make_word_tokenizer(["안녕", "밥"])  # <pad> <unk> </s> <usr> <sys> 안녕 밥
    assert added_token_ids(tokenizer, 7) == []
    assert added_token_ids(tokenizer, 3) == [3, 4, 5, 6]


def test_token_rows_target_the_output_layer_only_when_untied():
    from transformers import AutoConfig, AutoModelForCausalLM

    from chathuman_hf.models.lora import token_rows_config

    def tiny(model_type, **kw):
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, vocab_size=40, **kw))

    untied = tiny("llama", hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                  tie_word_embeddings=False)
    tied = tiny("gpt2", n_embd=16, n_layer=1, n_head=2)
    assert token_rows_config(untied, [38, 39]) == {"embed_tokens": [38, 39], "lm_head": [38, 39]}
    assert token_rows_config(tied, [38, 39]) == {"wte": [38, 39]}
    assert token_rows_config(untied, []) is None


def test_lora_options_are_checked_at_parse_time():
    from chathuman_hf.models.lora import PeftSetupError
    from chathuman_hf.training.parsing import parse_args

    model_args, *_ = parse_args(["--use_peft", "--lora_r", "8", "--lora_target_modules", "q_proj", "v_proj",
                                 "--output_dir", "/tmp/x", "--report_to", "none"])
    assert (model_args.use_peft, model_args.lora_r, model_args.lora_target_modules) == (True, 8, ["q_proj", "v_proj"])
    with pytest.raises(PeftSetupError, match="add --use_peft"):
        parse_args(["--load_in_4bit", "--output_dir", "/tmp/x", "--report_to", "none"])
    with pytest.raises(PeftSetupError, match="lora_r"):
        parse_args(["--use_peft", "--lora_r", "0", "--output_dir", "/tmp/x", "--report_to", "none"])


@pytest.fixture(scope="module")
def added_tokens_adapter(tmp_path_factory):
    """A LoRA adapter on a base without <usr>/<sys> (2 rows added), trained a few steps in-process, then saved."""
    from transformers import AutoConfig

    from chathuman_hf.models.build import build_model
    from chathuman_hf.models.lora import LoraArguments, added_token_ids, apply_lora, save_adapter
    from chathuman_hf.tokens.tokenizer import prepare_tokenizer

    root = tmp_path_factory.mktemp("lora_added")
    base = make_tiny_llama_dir(root / "base", role_tokens=False)
    base_rows = AutoConfig.from_pretrained(base).vocab_size
    tokenizer = prepare_tokenizer(str(base))
    model = build_model(str(base), tokenizer=tokenizer)
    assert len(tokenizer) == base_rows + 2
    assert added_token_ids(tokenizer, base_rows) == [base_rows, base_rows + 1]
    model = apply_lora(model, LoraArguments(use_peft=True, lora_r=4, lora_alpha=8), tokenizer,
                       base_vocab_size=base_rows)
    batch = tokenizer.apply_chat_template(PROMPTS[2], return_tensors="pt", return_dict=True)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    torch.manual_seed(0)
    for _ in range(3):
        model(input_ids=batch["input_ids"], labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"]).logits
    out = root / "adapter"
    save_adapter(model, out)
    tokenizer.save_pretrained(out)
    return out, batch["input_ids"], logits, base_rows


def test_added_token_rows_are_saved_as_rows_not_embedding_copies(added_tokens_adapter):
    out, ids, logits, base_rows = added_tokens_adapter
    keys = adapter_keys(out)
    assert [k for k in keys if "lora_" not in k] == [
        "base_model.model.lm_head.token_adapter.trainable_tokens_delta",
        "base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta",
    ]
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        assert tuple(f.get_tensor(keys[0]).shape) == (2, 64)  # two rows of 64, not the 693 x 64 table
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["modules_to_save"] is None
    assert config["trainable_token_indices"] == {"embed_tokens": [base_rows, base_rows + 1],
                                                 "lm_head": [base_rows, base_rows + 1]}


def test_adapter_with_added_rows_reloads_and_merges_to_the_same_logits(added_tokens_adapter):
    from chathuman_hf.models.loading import load_chat_model

    out, ids, logits, _ = added_tokens_adapter
    torch.manual_seed(123)  # the resized rows' init must not matter: the adapter holds their trained values
    for merge in (False, True):
        model, _ = load_chat_model(out, merge=merge)
        with torch.no_grad():
            assert torch.allclose(model(input_ids=ids).logits, logits, atol=1e-5)


def test_gradient_checkpointing_with_lora_gives_the_same_gradients(tmp_path):
    from chathuman_hf.models.build import build_model
    from chathuman_hf.models.lora import LoraArguments, apply_lora
    from chathuman_hf.tokens.tokenizer import prepare_tokenizer

    base = make_tiny_llama_dir(tmp_path / "base")
    tokenizer = prepare_tokenizer(str(base))
    ids = tokenizer.apply_chat_template(PROMPTS[2], return_tensors="pt", return_dict=True)["input_ids"]
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = build_model(str(base), tokenizer=tokenizer)
        model = apply_lora(model, LoraArguments(use_peft=True, lora_r=4, lora_dropout=0.0), tokenizer,
                           base_vocab_size=len(tokenizer), gradient_checkpointing=checkpointing)
        for name, param in model.named_parameters():
            if "lora_B" in name:  # B starts at zero: make the A gradients non-zero too
                torch.nn.init.normal_(param, std=0.02)
        if checkpointing:  # reentrant checkpointing: frozen embeddings need inputs that require grads
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == 2 * 7 * 2
    for name, grad in grads[0].items():
        assert grads[1][name] is not None, name
        assert torch.allclose(grad, grads[1][name], atol=1e-6), name


# ---------------------------------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def own_template_run(tmp_path_factory, repo_root):
    """recipes/train.py --use_peft on a tiny Llama base whose tokenizer has the role tokens and its template."""
    root = tmp_path_factory.mktemp("lora_run")
    base = make_tiny_llama_dir(root / "base")
    out = root / "out"
    logs = train(repo_root, out, "--model_name_or_path", str(base), "--max_steps", "4", "--eval-split", "0",
                 "--eval_strategy", "no", "--load_best_model_at_end", "false", "--save_strategy", "no")
    return base, out, logs


def test_own_template_adapter_holds_only_lora_matrices(own_template_run):
    base, out, logs = own_template_run
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
                 "generation_config.json", "chat_window.json", "report.json", "train_results.json", "README.md"):
        assert (out / name).is_file(), name
    assert not (out / "model.safetensors").exists() and not (out / "config.json").exists()
    keys = adapter_keys(out)
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    assert len(keys) == 2 * 7 * 2  # A and B for 7 linear layers x 2 blocks; no embedding, no lm_head
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["modules_to_save"] is None and config["trainable_token_indices"] is None
    assert config["base_model_name_or_path"] == str(base.resolve())
    assert "No token added to the base vocabulary" in logs
    assert "is_gradient_checkpointing" not in logs  # PEFT's read of a deprecated transformers property, silenced
    card = (out / "README.md").read_text()
    assert "library_name: peft" in card and "trainable parameters: 8,704 of 179,648 (4.845%)" in card


def test_adapter_and_export_generate_the_same_greedy_replies(own_template_run, tmp_path, repo_root):
    from transformers import AutoModelForCausalLM, pipeline

    from chathuman_hf.models.loading import load_chat_model
    from chathuman_hf.publishing.export import export_model

    _, out, _ = own_template_run
    merged_dir = export_model(out, tmp_path / "merged")  # recipes/export.py's work, in-process
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    assert (merged_dir / "chat_window.json").is_file() and "## Export" in (merged_dir / "README.md").read_text()
    adapter_model, tokenizer = load_chat_model(out)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    expected = greedy_ids(adapter_model, tokenizer)
    assert greedy_ids(merged, tokenizer) == expected
    assert any(len(ids) > 0 for ids in expected)
    # pipeline() takes both directories (the adapter's base is resolved from adapter_config.json)
    replies = []
    for model_dir in (out, merged_dir):
        chat = pipeline("text-generation", model=str(model_dir))
        replies.append([chat(p, eos_token_id=tokenizer.eos_token_id, **GREEDY)[0]["generated_text"][-1]
                        for p in PROMPTS])
    assert replies[0] == replies[1]
    assert all(r["role"] == "assistant" for r in replies[0])


def test_an_adapter_on_a_base_without_a_template_chats_through_the_printed_pipeline_line(tmp_path, repo_root):
    """KoGPT2's case: pipeline() on an adapter takes the base's tokenizer, which has no chat template, unless the
    adapter's own tokenizer is named; the end-of-training line and the model card name it."""
    import re

    from transformers import pipeline

    from tests.helpers.tiny_models import make_kogpt2_like_dir

    base = make_kogpt2_like_dir(tmp_path / "kogpt2")
    out = tmp_path / "kogpt2-lora"
    logs = train(repo_root, out, "--model_name_or_path", str(base), "--max_steps", "2", "--eval-split", "0",
                 "--eval_strategy", "no", "--load_best_model_at_end", "false", "--save_strategy", "no")
    assert "No token added to the base vocabulary" in logs
    printed = re.search(r"pipeline\('text-generation', model='([^']+)', tokenizer='([^']+)'\)", logs)
    assert printed and printed.group(1) == printed.group(2), logs[-2000:]
    assert f'pipeline("text-generation", model="./{out.name}", tokenizer="./{out.name}")' in (
        out / "README.md").read_text()
    chat = pipeline("text-generation", model=str(out), tokenizer=str(out))
    reply = chat(PROMPTS[0], **GREEDY)[0]["generated_text"][-1]
    assert reply["role"] == "assistant"


def test_export_refuses_a_directory_that_is_neither(tmp_path):
    from chathuman_hf.models.loading import NotAModelError
    from chathuman_hf.publishing.export import export_model

    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NotAModelError) as err:
        export_model(tmp_path, tmp_path / "x")
    assert str(err.value) == (
        f"{tmp_path}: neither a saved model (config.json) nor a LoRA adapter (adapter_config.json); pass the "
        "output directory of recipes/train.py."
    )
    assert not (tmp_path / "x").exists()


def test_export_push_stops_before_the_upload_offline(tmp_path, caplog):
    from huggingface_hub import constants

    from chathuman_hf.publishing.export import push_export

    assert constants.HF_HUB_OFFLINE  # tests/conftest.py: no Hub here
    with caplog.at_level("WARNING", logger="chathuman_hf.publishing.export"):
        assert push_export(tmp_path, "me/korean-chat") is None
    assert f"{tmp_path} is ready to push to me/korean-chat; not uploading" in caplog.text


def test_export_of_a_full_model_leaves_training_state_behind(tiny_model_dir, tmp_path):
    from chathuman_hf.publishing.export import export_model

    source = tmp_path / "run"
    source.mkdir()
    for path in tiny_model_dir.iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    for leftover in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin", "trainer_state.json",
                     "checkpoint-4/model.safetensors", "_trained_tokenizer/tokenizer.json"):
        (source / leftover).parent.mkdir(exist_ok=True)
        (source / leftover).write_bytes(b"x")
    out = export_model(source, tmp_path / "clean")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in tiny_model_dir.iterdir())


# ---------------------------------------------------------------------------------------------- slow: training details


def tensors(path) -> dict[str, torch.Tensor]:
    with safe_open(str(path / "adapter_model.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


@pytest.mark.slow
def test_added_tokens_run_with_checkpointing_best_adapter_and_early_stopping(tmp_path, repo_root):
    """Our template on a base without it: 2 rows train; gradient checkpointing; early stopping keeps the best."""
    from chathuman_hf.chat.engine import ChatEngine

    base = make_tiny_llama_dir(tmp_path / "base", role_tokens=False)
    out = tmp_path / "out"
    # greater_is_better with a falling perplexity: the first eval stays best, the next one ends training (patience 1)
    logs = train(repo_root, out, "--model_name_or_path", str(base), "--max_steps", "12", "--activation_checkpointing",
                 "true", "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps",
                 "2", "--early_stopping_patience", "1", "--greater_is_better", "true", "--generation_prompts", "2")
    assert "2 token(s) not in the base vocabulary (ids [691, 692])" in logs
    assert "is deprecated" not in logs  # --activation_checkpointing, transformers 5's name (README's commands)
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and state["best_model_checkpoint"].endswith("checkpoint-2")
    best, final = tensors(out / "checkpoint-2"), tensors(out)
    assert best.keys() == final.keys() and all(torch.equal(best[k], final[k]) for k in best)
    assert sum(1 for k in final if "trainable_tokens_delta" in k) == 2 and not (out / "model.safetensors").exists()
    # evaluate.py scores the adapter exactly as the end of training did
    proc = subprocess.run([sys.executable, str(repo_root / "recipes/evaluate_model.py"), "--model", str(out),
                           "--output",
                           str(tmp_path / "m.json")], env=env(), cwd=repo_root, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scored = json.loads((tmp_path / "m.json").read_text())
    trained = json.loads((out / "eval_results.json").read_text())
    assert scored["eval_assistant_perplexity"] == pytest.approx(trained["eval_assistant_perplexity"], rel=1e-5)
    # chat.py / serve.py load through ChatEngine: the adapter is merged onto its resized base
    engine = ChatEngine.from_pretrained(out)
    assert engine.model.get_input_embeddings().weight.shape[0] == 693
    proc = subprocess.run([sys.executable, str(repo_root / "recipes/chat.py"), "--model", str(out), "--no_skills"],
                          input="안녕\n", env=env(), cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr[-3000:]


@pytest.mark.slow
def test_lora_resumes_after_sigkill_to_the_same_loss_and_step(tmp_path, repo_root):
    import signal
    import time

    from chathuman_hf.training.checkpoints import checkpoint_problem

    base = make_tiny_llama_dir(tmp_path / "base")
    args = ["--model_name_or_path", str(base), "--num_train_epochs", "3", "--generation_prompts", "2",
            "--save_total_limit", "3", "--logging_steps", "5"]

    def start(out, *extra):
        cmd = [sys.executable, str(repo_root / "recipes/train.py"), *LORA, *args, "--output_dir", str(out), *extra]
        log = open(f"{out}.log", "w")  # noqa: SIM115 - closed below
        return subprocess.Popen(cmd, env=env(), cwd=repo_root, stdout=log, stderr=subprocess.STDOUT), log

    full, killed = tmp_path / "full", tmp_path / "killed"
    uninterrupted, full_log = start(full)
    victim, victim_log = start(killed)
    deadline, first = time.time() + 240, None
    while time.time() < deadline and victim.poll() is None:
        done = [p for p in killed.glob("checkpoint-*") if checkpoint_problem(p) is None] if killed.exists() else []
        if done:
            first = done[0]
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    victim.wait(timeout=60)
    assert first is not None and victim.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-3000:]
    assert not (killed / "eval_results.json").exists()
    resumed, resumed_log = start(killed, "--resume_from_checkpoint", "auto")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "killed.log").read_text()[-3000:]
    assert uninterrupted.wait(timeout=300) == 0, (tmp_path / "full.log").read_text()[-3000:]
    for log in (full_log, victim_log, resumed_log):
        log.close()
    assert "Resuming from" in (tmp_path / "killed.log").read_text()
    ends = [(json.loads((o / "eval_results.json").read_text())["eval_loss"],
             json.loads((o / "trainer_state.json").read_text())["global_step"]) for o in (full, killed)]
    assert ends[0][1] == ends[1][1]
    assert ends[0][0] == pytest.approx(ends[1][0], abs=1e-4)


@pytest.mark.slow
def test_two_process_cpu_ddp_trains_lora_and_saves_one_adapter(tmp_path, repo_root):
    import shutil

    from tests.test_distributed import free_port, gloo_env

    if shutil.which("accelerate") is None:
        pytest.skip("the accelerate command is not on PATH")
    base = make_tiny_llama_dir(tmp_path / "base")
    out = tmp_path / "ddp"
    cmd = ["accelerate", "launch", "--config_file", str(repo_root / "accelerate_configs/multi_cpu.yaml"),
           "--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port()),
           str(repo_root / "tests/shard_probe.py"), *LORA, "--model_name_or_path", str(base), "--max_steps", "4",
           "--per_device_train_batch_size", "4", "--eval_strategy", "steps", "--eval_steps", "4", "--save_strategy",
           "steps", "--save_steps", "4", "--generation_prompts", "2", "--output_dir", str(out)]
    proc = subprocess.run(cmd, env=gloo_env(), cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    shards = [set(json.loads((out / "_shards" / f"rank-{r}.json").read_text())["rows"]) for r in (0, 1)]
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["adapter_model.safetensors"]
    assert sorted(p.name for p in (out / "checkpoint-4").glob("*.safetensors")) == ["adapter_model.safetensors"]
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 4


@pytest.mark.slow
def test_qlora_on_cpu_trains_a_4bit_base(tmp_path, repo_root):
    pytest.importorskip("bitsandbytes")
    from chathuman_hf.models.lora import PeftSetupError, check_4bit_support

    try:
        check_4bit_support("cpu")
    except PeftSetupError as err:
        pytest.skip(str(err))
    base = make_tiny_llama_dir(tmp_path / "base")
    out = tmp_path / "qlora"
    train(repo_root, out, "--model_name_or_path", str(base), "--load_in_4bit", "--max_steps", "4", "--eval-split",
          "0", "--eval_strategy", "no", "--load_best_model_at_end", "false", "--save_strategy", "no")
    assert "base loaded in 4-bit (QLoRA)" in (out / "README.md").read_text()
    assert all(".lora_" in k for k in tensors(out))
    losses = [e["loss"] for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert losses and all(x == x for x in losses)  # finite, trained through the 4-bit layers


@pytest.mark.parametrize("targets, unmatched", [
    (["c_attn", "nonexistent_proj"], ["nonexistent_proj"]),
    (["c_atn", "c_proj", "mlp.c_fc", "q_proj"], ["c_atn", "q_proj"]),
    (["nonexistent_proj"], ["nonexistent_proj"]),
])
def test_a_lora_target_module_matching_nothing_is_named(tiny_model_dir, targets, unmatched):
    """A typo among good names used to train the good ones only, silently (PEFT only fails when none matches)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chathuman_hf.models.lora import LoraArguments, PeftSetupError, apply_lora

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with pytest.raises(PeftSetupError) as info:
        apply_lora(model, LoraArguments(use_peft=True, lora_r=2, lora_target_modules=targets), tokenizer,
                   base_vocab_size=len(tokenizer))
    message = str(info.value)
    assert message.startswith(f"--lora_target_modules {' '.join(unmatched)}: no module of the model is named so")
    assert "c_attn" in message.split("names here:")[1]  # what the user could have meant


@pytest.mark.parametrize("targets", [["c_attn"], ["attn.c_attn", "mlp.c_fc"], ["all-linear"], ["h.0.attn.c_attn"]])
def test_lora_target_modules_that_match_train(tiny_model_dir, targets):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chathuman_hf.models.lora import LoraArguments, apply_lora

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    peft_model = apply_lora(model, LoraArguments(use_peft=True, lora_r=2, lora_target_modules=targets), tokenizer,
                            base_vocab_size=len(tokenizer))
    assert any("lora_A" in name for name, _ in peft_model.named_parameters())

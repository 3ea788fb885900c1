"""Any base model's own template: hand-checked masks per family and mode, template choice, bad templates."""

from __future__ import annotations

import hashlib
import json

import pytest

from chathuman_hf.tokens.collators import ChatCollator
from chathuman_hf.tokens.features import _encode_exact, _fast_plan, encode_dialogues, tokenize_dialogues
from chathuman_hf.tokens.labels import target_mask
from chathuman_hf.tokens.rendering import TemplateError
from chathuman_hf.tokens.template_choice import apply_template_choice, parse_template_choice
from chathuman_hf.tokens.template_inputs import render_text
from chathuman_hf.tokens.turn_end import end_of_turn_ids
from tests.helpers.families import FAMILY_TEMPLATES, make_family_word_tokenizer
from tests.helpers.tiny_models import THREE_TURN_WORDS, THREE_TURNS, make_kogpt2_like_dir, make_word_tokenizer

# Per family: the 3-turn dialogue's tokens, and the positions trained under -100+sys — hand-checked: each assistant
# content and the end-of-turn token right after it; never headers, role names, user text or the newline after the end.
EXPECTED = {
    "llama": (
        "<|begin_of_text|> <|start_header_id|> user <|end_header_id|> \\n \\n 안녕 <|eot_id|> "
        "<|start_header_id|> assistant <|end_header_id|> \\n \\n 안녕 반가워 <|eot_id|> "
        "<|start_header_id|> user <|end_header_id|> \\n \\n 밥 먹었어 <|eot_id|> "
        "<|start_header_id|> assistant <|end_header_id|> \\n \\n 응 먹었어 <|eot_id|> "
        "<|start_header_id|> user <|end_header_id|> \\n \\n 뭐 먹었어 <|eot_id|> "
        "<|start_header_id|> assistant <|end_header_id|> \\n \\n 김밥 먹었어 <|eot_id|>",
        [13, 14, 15, 29, 30, 31, 45, 46, 47],
    ),
    "qwen2": (
        "<|im_start|> user \\n 안녕 <|im_end|> \\n <|im_start|> assistant \\n 안녕 반가워 <|im_end|> \\n "
        "<|im_start|> user \\n 밥 먹었어 <|im_end|> \\n <|im_start|> assistant \\n 응 먹었어 <|im_end|> \\n "
        "<|im_start|> user \\n 뭐 먹었어 <|im_end|> \\n <|im_start|> assistant \\n 김밥 먹었어 <|im_end|> \\n",
        [9, 10, 11, 23, 24, 25, 37, 38, 39],
    ),
    "gemma3_text": (
        "<bos> <start_of_turn> user \\n 안녕 <end_of_turn> \\n "
        "<start_of_turn> model \\n 안녕 반가워 <end_of_turn> \\n "
        "<start_of_turn> user \\n 밥 먹었어 <end_of_turn> \\n <start_of_turn> model \\n 응 먹었어 <end_of_turn> \\n "
        "<start_of_turn> user \\n 뭐 먹었어 <end_of_turn> \\n <start_of_turn> model \\n 김밥 먹었어 <end_of_turn> \\n",
        [10, 11, 12, 24, 25, 26, 38, 39, 40],
    ),
    "exaone4": (
        "[|user|] \\n 안녕 [|endofturn|] \\n [|assistant|] \\n 안녕 반가워 [|endofturn|] \\n "
        "[|user|] \\n 밥 먹었어 [|endofturn|] \\n [|assistant|] \\n 응 먹었어 [|endofturn|] \\n "
        "[|user|] \\n 뭐 먹었어 [|endofturn|] \\n [|assistant|] \\n 김밥 먹었어 [|endofturn|] \\n",
        [7, 8, 9, 19, 20, 21, 31, 32, 33],
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILY_TEMPLATES))
def test_hand_checked_masks_per_family_and_mode(family):
    tok = apply_template_choice(make_family_word_tokenizer(family, THREE_TURN_WORDS))
    assert tok.chat_template == FAMILY_TEMPLATES[family]  # auto keeps the base's template
    record = encode_dialogues([THREE_TURNS], tok)[0]
    tokens = [t.replace("\n", "\\n") for t in tok.convert_ids_to_tokens(record["input_ids"])]
    words, all_sys = EXPECTED[family]
    assert tokens == words.split(" ")
    trained = {m: [i for i, x in enumerate(target_mask(record["roles"], record["last_turn"], m)) if x]
               for m in ("input", "-100", "-100+sys", "shift")}
    assert trained["-100+sys"] == all_sys
    assert trained["-100"] == all_sys[-3:]  # the last assistant turn: content + end of turn
    assert trained["input"] == trained["shift"] == list(range(1, len(tokens)))
    # the collator's labels say the same (unshifted: label = token where trained)
    labels = ChatCollator(tok.pad_token_id, "-100+sys")([record])["labels"][0].tolist()
    assert [i for i, x in enumerate(labels) if x != -100] == all_sys


@pytest.mark.parametrize("family", sorted(FAMILY_TEMPLATES))
def test_fast_path_equals_exact_path_with_edge_whitespace(family):
    tok = apply_template_choice(make_family_word_tokenizer(family, THREE_TURN_WORDS))
    assert _fast_plan(tok) is not None
    dialogues = [THREE_TURNS, [{"role": "user", "content": " 밥  먹었어 "}, {"role": "assistant", "content": "응 \n"}]]
    assert encode_dialogues(dialogues, tok) == _encode_exact(dialogues, tok)


def test_generation_stops_on_each_templates_end_of_turn():
    names = {}
    for family in sorted(FAMILY_TEMPLATES):
        tok = apply_template_choice(make_family_word_tokenizer(family, THREE_TURN_WORDS))
        names[family] = tok.convert_ids_to_tokens(end_of_turn_ids(tok))
    assert names == {
        "exaone4": ["[|endofturn|]", "[|user|]"],
        "gemma3_text": ["<end_of_turn>", "<eos>", "<start_of_turn>"],
        "llama": ["<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>"],
        "qwen2": ["<|im_end|>", "<|im_start|>"],
    }
    ours = make_word_tokenizer(THREE_TURN_WORDS)
    assert ours.convert_ids_to_tokens(end_of_turn_ids(ours)) == ["</s>", "<usr>"]


def test_our_template_gives_the_same_ids_and_labels_as_before():
    """Digest of ids and the four modes' labels on the embedded sample, computed with the code before labels.py
    (commit a138cd7, same script): our template's data is bit-identical, so the leaderboard numbers stand. The
    tokenizer is built here with ``tokenizers`` directly, so a change to our tokenizer trainer does not move it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from chathuman_hf.data import load_dialogues

    dialogues = load_dialogues()
    texts = [m["content"] for msgs in dialogues["messages"] for m in msgs]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    bpe.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    bpe.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<pad>", "<unk>", "</s>"], show_progress=False))
    tok = apply_template_choice(PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<unk>", pad_token="<pad>", eos_token="</s>", bos_token="</s>"), "auto")
    ds = tokenize_dialogues(dialogues, tok, max_length=64, expand_turns=True)
    rows = [ds[i] for i in range(len(ds))]
    digest = hashlib.sha256(json.dumps([r["input_ids"] for r in rows]).encode())
    for mode in ("input", "-100", "-100+sys", "shift"):
        digest.update(json.dumps(ChatCollator(tok.pad_token_id, mode)(rows)["labels"].tolist()).encode())
    assert (len(rows), digest.hexdigest()) == (415, "0ea317c3e88f9a219ca73e06d3b86c98fce4e1f3a178c1b26dde296902b92dcd")


# ---------------------------------------------------------------- the choice and bad templates (one line each)
def test_auto_without_a_base_template_adds_ours_and_model_refuses(tmp_path):
    from chathuman_hf.tokens.tokenizer import CHAT_TEMPLATE, load_tokenizer

    path = make_kogpt2_like_dir(tmp_path / "kogpt2")
    tok = apply_template_choice(load_tokenizer(str(path)), "auto")
    assert tok.chat_template == CHAT_TEMPLATE
    with pytest.raises(TemplateError, match=r"--chat_template model: .*kogpt2 has no chat template; use "
                                            r"--chat_template chathuman"):
        apply_template_choice(load_tokenizer(str(path)), "model")


def test_template_file_and_unknown_value(tmp_path):
    path = tmp_path / "chatml.jinja"
    path.write_text(FAMILY_TEMPLATES["qwen2"], encoding="utf-8")
    tok = apply_template_choice(make_family_word_tokenizer("qwen2", THREE_TURN_WORDS), str(path))
    assert tok.chat_template == FAMILY_TEMPLATES["qwen2"]
    with pytest.raises(TemplateError, match=r"--chat_template 'chatml': unknown value; use one of auto, model, "):
        parse_template_choice("chatml")
    with pytest.raises(TemplateError, match="no such file"):
        parse_template_choice(str(tmp_path / "missing.jinja"))
    broken = tmp_path / "broken.jinja"  # a broken file is named as the culprit, not the base it was put on
    broken.write_text(FAMILY_TEMPLATES["qwen2"].replace("'<|im_end|>\n'", "'\n'"), encoding="utf-8")
    with pytest.raises(TemplateError, match=rf"^--chat_template {broken} closes assistant turn 2 with no end-of-turn"):
        apply_template_choice(make_family_word_tokenizer("qwen2", THREE_TURN_WORDS), str(broken))
    dated = tmp_path / "dated.jinja"  # a date in a header is rendered with the run's fixed date, not refused
    dated.write_text("{{ strftime_now('%Y') }}" + FAMILY_TEMPLATES["qwen2"], encoding="utf-8")
    tok = apply_template_choice(make_family_word_tokenizer("qwen2", THREE_TURN_WORDS), str(dated),
                                template_date="2025-01-31")
    assert render_text(tok, THREE_TURNS).startswith("2025<|im_start|>user\n")


@pytest.mark.parametrize(("template", "message"), [
    ("{% for m in messages %}{% if m['role'] == 'user' %}<|im_start|>user\n{{ m['content'] }}<|im_end|>\n{% endif %}"
     "{% endfor %}", "has no assistant role"),
    ("{% for m in messages %}<|im_start|>{{ m['role'] }} {{ loop.revindex }}\n{{ m['content'] }}<|im_end|>\n"
     "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
     r"the generation prompt after turn 1 is not how assistant turn 2 starts .*--chat_template chathuman"),
    ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}{% endfor %}"
     "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
     "closes assistant turn 2 with no end-of-turn"),
    (FAMILY_TEMPLATES["gemma3_text"], r"uses <end_of_turn>, which tokenizes differently inside a conversation"),
])
def test_unusable_templates_are_refused_in_one_line(template, message):
    tok = make_family_word_tokenizer("qwen2", THREE_TURN_WORDS)
    tok.chat_template = template
    with pytest.raises(TemplateError, match=message) as err:
        apply_template_choice(tok, "model")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- end to end per family (recipe as a subprocess)
def _family_param(family: str) -> object:
    return family if family == "llama" else pytest.param(family, marks=pytest.mark.slow)


@pytest.mark.parametrize("family", [_family_param(f) for f in ("gpt2", *sorted(FAMILY_TEMPLATES))])
def test_train_recipe_on_each_family_then_pipeline_stops_at_end_of_turn(family, tmp_path, repo_root):
    """``train.py --model_name_or_path DIR --data FILE --output_dir OUT --max_steps N``, no --config; the base's
    template survives byte for byte with no token added, and pipeline's reply stops at the end-of-turn token."""
    import os
    import subprocess
    import sys

    from transformers import AutoConfig, pipeline

    from tests.helpers.families import make_family_model_dir

    base = make_family_model_dir(tmp_path / "base", family)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    cmd = [sys.executable, str(repo_root / "recipes" / "train.py"), "--model_name_or_path", str(base), "--data",
           str(repo_root / "chathuman_hf" / "sample_data" / "chat.jsonl"), "--output_dir", str(out), "--max_steps",
           "2", "--generation_prompts", "2"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert AutoConfig.from_pretrained(out).vocab_size == AutoConfig.from_pretrained(base).vocab_size
    chat = pipeline("text-generation", model=str(out))
    tok = chat.tokenizer
    if family == "gpt2":  # no template in the base (like KoGPT2): ours, as before
        assert "<usr>" in tok.chat_template
    else:
        assert (out / "chat_template.jinja").read_bytes() == (base / "chat_template.jinja").read_bytes()
    end = chat.model.generation_config.eos_token_id[0]
    word = tok.encode("응", add_special_tokens=False)
    # an untrained model: bias it to say 응 and then end the turn, and check where generation stops
    reply = chat([{"role": "user", "content": "안녕"}], max_new_tokens=8, do_sample=False,
                 sequence_bias={tuple(word): 30.0, (*word, end): 80.0})[0]["generated_text"][-1]
    assert reply == {"role": "assistant", "content": "응"}
    ids = tok.apply_chat_template([{"role": "user", "content": "안녕"}], add_generation_prompt=True, return_dict=True,
                                  return_tensors="pt")
    generated = chat.model.generate(**ids, max_new_tokens=8, do_sample=False,
                                    sequence_bias={tuple(word): 30.0, (*word, end): 80.0})
    assert generated[0, ids["input_ids"].shape[1]:].tolist() == [*word, end]


def test_label_view_marks_targets_with_brackets_when_piped():
    from chathuman_hf.tokens.label_view import format_view, label_views

    tok = apply_template_choice(make_family_word_tokenizer("qwen2", THREE_TURN_WORDS))
    (view,) = label_views([THREE_TURNS], tok, "-100")
    assert view["trained"] == [False] * 37 + [True] * 3 + [False]
    assert view["tokens"][37:40] == ["김밥", "먹었어", "<|im_end|>"]
    text = format_view(view, tok, color=False)
    assert text.endswith("[김밥][먹었어][<|im_end|>]\\n\n  trained tokens: 3 of 41")


def test_label_view_cuts_and_expands_turns_as_training_does():
    from chathuman_hf.tokens.label_view import label_views
    from tests.helpers.tiny_models import THREE_TURN_IDS, make_word_tokenizer

    tok = make_word_tokenizer(THREE_TURN_WORDS)
    (last,) = label_views([THREE_TURNS], tok, "-100", max_turns=1)
    assert last["ids"] == [2, 3, 10, 8, 4, 11, 8, 2]  # </s> <usr> 뭐 먹었어 <sys> 김밥 먹었어 </s>
    assert last["trained"] == [False] * 5 + [True] * 3
    views = label_views([THREE_TURNS], tok, "-100", expand_turns=True, limit=None)
    assert [v["ids"] for v in views] == [THREE_TURN_IDS[:7], THREE_TURN_IDS[:14], THREE_TURN_IDS]


@pytest.mark.slow
def test_inspect_labels_recipe_prints_one_json_list(tmp_path, repo_root):
    """``recipes/inspect_labels.py --json`` (a subprocess) gives the hand-checked targets of the qwen2 template."""
    import os
    import subprocess
    import sys

    tok = make_family_word_tokenizer("qwen2", THREE_TURN_WORDS)
    tok.save_pretrained(tmp_path / "tok")
    data = tmp_path / "three.jsonl"
    data.write_text(json.dumps({"messages": THREE_TURNS}, ensure_ascii=False) + "\n", encoding="utf-8")
    cmd = [sys.executable, str(repo_root / "recipes" / "inspect_labels.py"), "--model", str(tmp_path / "tok"),
           "--data", str(data), "--label-mode", "-100+sys", "--json"]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo_root)},
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    (view,) = json.loads(run.stdout)
    assert sorted(view) == ["ids", "tokens", "trained"]
    assert [i for i, x in enumerate(view["trained"]) if x] == EXPECTED["qwen2"][1]
    assert view["tokens"][9:12] == ["안녕", "반가워", "<|im_end|>"]


def test_chat_engine_renders_with_the_models_template_and_strips_its_markers():
    """ChatEngine (chat.py, serve.py, the OpenAI endpoint): prompt = the model's template + generation prompt,
    history window applied, the reply stops at the end-of-turn token and no header/end token leaks into it."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from chathuman_hf.chat import ChatEngine, get_preset
    from chathuman_hf.chat.replies import finish_reply
    from chathuman_hf.core.window import ChatWindow
    from chathuman_hf.tokens.tokenizer import chat_generation_config

    tok = apply_template_choice(make_family_word_tokenizer("qwen2", THREE_TURN_WORDS))
    config = AutoConfig.for_model("qwen2", vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                  num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
    engine = ChatEngine(AutoModelForCausalLM.from_config(config), tok, generation_config=chat_generation_config(tok),
                        window=ChatWindow(max_turns=1, max_length=64))
    ids = engine.prompt_ids(THREE_TURNS + [{"role": "user", "content": "김밥"}], max_new_tokens=8, max_turns=1)
    assert tok.convert_ids_to_tokens(ids) == ["<|im_start|>", "user", "\n", "김밥", "<|im_end|>", "\n",
                                              "<|im_start|>", "assistant", "\n"]
    config = engine.generation_config(get_preset("greedy"))
    end, opener = tok.convert_tokens_to_ids(["<|im_end|>", "<|im_start|>"])
    assert config.eos_token_id == [end, opener]
    word = tok.convert_tokens_to_ids("응")
    result = finish_reply(tok, [word, end], len(ids), config)  # the reply's new ids
    assert (result.text, result.finish_reason, result.completion_tokens) == ("응", "stop", 2)


@pytest.mark.slow
def test_train_recipe_refuses_model_template_on_a_base_without_one_in_one_line(tmp_path, repo_root):
    import os
    import subprocess
    import sys

    base = make_kogpt2_like_dir(tmp_path / "kogpt2")
    cmd = [sys.executable, str(repo_root / "recipes" / "train.py"), "--model_name_or_path", str(base),
           "--chat_template", "model", "--output_dir", str(tmp_path / "out"), "--max_steps", "1"]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo_root)},
                         timeout=600)
    assert run.returncode == 2  # a configuration mistake (chathuman_hf.core.cli: data errors exit 1, the rest 2)
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --chat_template model: ") and "use --chat_template chathuman" in last
    assert "Traceback" not in run.stderr and not (tmp_path / "out" / "checkpoint-1").exists()


def _no_system_template() -> str:
    return ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
            + FAMILY_TEMPLATES["qwen2"])


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
def test_a_template_file_with_a_byte_order_mark_renders_without_it(tmp_path, encoding):
    """Windows Notepad writes a BOM: not part of the template (it put ▁ <0xEF> <0xBB> <0xBF> in every example)."""
    path = tmp_path / "chatml.jinja"
    path.write_text("{# 한국어 주석 #}" + FAMILY_TEMPLATES["qwen2"], encoding=encoding)
    tok = apply_template_choice(make_family_word_tokenizer("qwen2", THREE_TURN_WORDS), str(path))
    assert tok.chat_template == "{# 한국어 주석 #}" + FAMILY_TEMPLATES["qwen2"]
    rendered = tok.apply_chat_template(THREE_TURNS[:2], tokenize=False)
    assert rendered.startswith("<|im_start|>user") and "\ufeff" not in rendered


@pytest.mark.parametrize("data", [
    "{# 한국어 #}".encode("cp949") + FAMILY_TEMPLATES["qwen2"].encode(),
    b"\x90" + FAMILY_TEMPLATES["qwen2"].encode(),
    FAMILY_TEMPLATES["qwen2"].encode("utf-16"),
], ids=["cp949", "stray-byte", "utf-16"])
def test_a_template_file_that_is_not_utf8_is_one_line_naming_the_file(tmp_path, data):
    path = tmp_path / "broken.jinja"
    path.write_bytes(data)
    with pytest.raises(TemplateError) as info:
        apply_template_choice(make_family_word_tokenizer("qwen2", THREE_TURN_WORDS), str(path))
    message = str(info.value)
    assert message.startswith(f"--chat_template {path}: not UTF-8 text (") and "save it as UTF-8" in message
    assert "\n" not in message


def test_rendering_errors_name_the_template_file_not_the_base(tmp_path):
    """The file passes the checks (a system role is optional) but refuses a system message later, at tokenization."""
    path = tmp_path / "nosys.jinja"
    path.write_text(_no_system_template(), encoding="utf-8")
    base = make_family_word_tokenizer("qwen2", THREE_TURN_WORDS)
    base.name_or_path = "/models/base-dir"
    tok = apply_template_choice(base, str(path))
    with_system = [{"role": "system", "content": "안녕"}, *THREE_TURNS[:2]]
    with pytest.raises(TemplateError) as info:
        tokenize_dialogues([with_system], tok)
    assert str(info.value).startswith(f"--chat_template {path} cannot render roles ['system', 'user', 'assistant'] "
                                      "(System role not supported)"), str(info.value)
    assert "base-dir" not in str(info.value)
    assert len(tokenize_dialogues([THREE_TURNS], tok)) == 1  # without a system message it trains

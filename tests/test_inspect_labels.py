"""``inspect_labels.py`` shows what ``train.py`` trains (issue 34, items 15-17): ``--json`` is only data on stdout
(templates that rewrite history too), the speech-level options apply as in training, and the text view keeps the
word spaces of Metaspace/SentencePiece tokenizers."""

from __future__ import annotations

import json
import runpy

import pytest

from tests.helpers.tiny_models import THREE_TURNS

REPLIES = [("배고파", "맛있는 거 드세요."), ("피곤해", "푹 쉬세요."), ("심심해", "영화 보러 갈래?")]


def _inspect(repo_root):
    return runpy.run_path(str(repo_root / "recipes" / "inspect_labels.py"), run_name="inspect_recipe")["main"]


def _data(tmp_path, dialogues: list[list[dict]]) -> str:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"messages": d}, ensure_ascii=False) + "\n" for d in dialogues),
                    encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("template", ["qwen3", "qwen2_5"])
def test_json_is_the_only_thing_on_stdout(repo_root, tmp_path, capsys, template):
    """Qwen3 rewrites history: its extra rows are noted on stderr, not before the JSON."""
    from tests.helpers.real_templates import real_template_tokenizer

    real_template_tokenizer(template).save_pretrained(tmp_path / "tok")
    data = _data(tmp_path, [THREE_TURNS])
    views = _inspect(repo_root)(["--model", str(tmp_path / "tok"), "--chat_template", "model", "--data", data,
                                 "--label-mode", "-100+sys", "--json", "--data_cache_dir", str(tmp_path / "c")])
    out, err = capsys.readouterr()
    assert json.loads(out) == views and len(views) == (3 if template == "qwen3" else 1)
    assert ("rewrites earlier turns" in err) == (template == "qwen3"), err


def test_the_speech_level_instruction_shows_as_it_trains(repo_root, tiny_model_dir, tmp_path, capsys):
    pytest.importorskip("kiwipiepy")
    from transformers import AutoTokenizer

    from chathuman_hf.data import DataArguments
    from chathuman_hf.tokens.tokenizer import prepare_tokenizer
    from chathuman_hf.training.arguments import ChatArguments
    from chathuman_hf.training.data_steps import load_data, tokenize_data

    dialogues = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in REPLIES]
    data = _data(tmp_path, dialogues)
    argv = ["--data", data, "--speech_level_control", "true", "--data_cache_dir", str(tmp_path / "c")]
    views = _inspect(repo_root)(["--model", str(tiny_model_dir), "--label-mode", "-100+sys", "--limit", "3", *argv])
    shown = capsys.readouterr().out
    assert shown.count("존댓말로 대답해.") == 2 and shown.count("반말로 대답해.") == 1, shown
    chat = ChatArguments(eval_split=0.0, label_mode="-100+sys")
    trained = tokenize_data(load_data(DataArguments(data=[data], speech_level_control=True,
                                                    data_cache_dir=str(tmp_path / "c")), chat),
                            prepare_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir)), chat).train
    assert [v["ids"] for v in views] == trained["input_ids"]  # exactly the training examples


@pytest.mark.parametrize("library", ["tokenizers", "sentencepiece"])
def test_the_text_view_keeps_the_word_spaces_of_metaspace_tokenizers(library):
    from chathuman_hf.tokens.label_view import format_view, label_views
    from chathuman_hf.tokens.tokenizer_training import train_tokenizer
    from tests.helpers.tiny_models import sample_texts

    if library == "sentencepiece":
        pytest.importorskip("sentencepiece")
    tok = train_tokenizer(sample_texts(), vocab_size=1200, library=library)
    dialogue = [{"role": "user", "content": "오늘 뭐 먹었어?"},
                {"role": "assistant", "content": "김밥 먹었어 맛있더라"}]
    (view,) = label_views([dialogue], tok, "-100")
    text = format_view(view, tok, color=False)
    reply = "".join(piece for piece in text.split("[")[1:] for piece in [piece.split("]")[0]])
    assert "김밥 먹었어 맛있더라" in reply, text
    assert "오늘 뭐 먹었어?" in text.split("[")[0], text
    decoded = tok.decode(view["ids"], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    plain = text.split("\n  trained tokens")[0].replace("[", "").replace("]", "").replace("\\n", "\n")
    assert plain.replace(" ", "") == decoded.replace(" ", "") and plain.count(" ") >= 4, (plain, decoded)

"""The Ollama Modelfile: its Go TEMPLATE, rendered by Go's own text/template, gives byte for byte the prompt of the
Jinja chat template (ours and the real ChatML/Qwen, Llama 3, Gemma 3 and EXAONE templates); stops, num_ctx and
sampling come from the model."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from chathuman_hf.publishing.modelfile import IrregularTemplateError, go_template, modelfile_text, template_frames
from tests.helpers.real_templates import real_template_tokenizer
from tests.helpers.tiny_models import make_word_tokenizer

GO_RENDERER = Path(__file__).parent / "ollama_template" / "main.go"
CONVERSATIONS = [
    [{"role": "user", "content": "안녕! 오늘 날씨 어때?"}],
    [{"role": "system", "content": "너는 친절한 한국어 비서야. 반말로 짧게 대답해."},
     {"role": "user", "content": "점심 뭐 먹을까? ㅋㅋ"}],
    [{"role": "user", "content": "비 온다더니 진짜 오네"}, {"role": "assistant", "content": "우산 챙겼어?"},
     {"role": "user", "content": "아니 ㅠㅠ 그냥 뛰어가려고"}],
    [{"role": "system", "content": "You are a helpful assistant. 존댓말을 써 주세요."},
     {"role": "user", "content": "meeting이 3시에 있어요 🚀"},
     {"role": "assistant", "content": "알겠습니다. 준비할게요!"},
     {"role": "user", "content": "자료는 email로 보내 주세요 😊"}],
    [{"role": "user", "content": "줄을\n바꿔서 써 볼게"}, {"role": "assistant", "content": "응, 잘 보여.\n계속해 봐."},
     {"role": "user", "content": "漢字랑 \"따옴표\" {{중괄호}}도 돼?"}],
]
REAL = ["qwen2_5", "qwen3", "llama3_1", "gemma3", "exaone4"]


@pytest.fixture(scope="module")
def go_render(tmp_path_factory):
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (Debian: apt-get install golang-go): the Go template check needs it")
    out = tmp_path_factory.mktemp("go") / "render"
    env_cache = {"GOCACHE": str(tmp_path_factory.mktemp("gocache")), "GOFLAGS": "-mod=mod", "GO111MODULE": "off"}
    import os

    subprocess.run([go, "build", "-o", str(out), str(GO_RENDERER)], check=True, env={**os.environ, **env_cache})

    def render(template: str, conversations: list) -> list[str]:
        cases = [{"messages": c} for c in conversations]
        done = subprocess.run([str(out)], input=json.dumps({"template": template, "cases": cases}),
                              capture_output=True, text=True, check=True)
        return json.loads(done.stdout)

    return render


def _tokenizer(name: str):
    return make_word_tokenizer(["안녕"]) if name == "ours" else real_template_tokenizer(name)


@pytest.mark.parametrize("name", ["ours", *REAL])
def test_go_template_renders_the_jinja_prompt_byte_for_byte(name, go_render):
    tok = _tokenizer(name)
    jinja = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in CONVERSATIONS]
    assert go_render(go_template(tok), CONVERSATIONS) == jinja


def test_frames_of_our_template():
    assert template_frames(make_word_tokenizer(["안녕"])) == {
        "start_system": "</s>", "system_user": "<usr>", "start_user": "</s><usr>", "user_assistant": "<sys>",
        "assistant_user": "</s><usr>", "user_end": "<sys>", "assistant_end": "</s>"}


def test_a_template_that_changes_between_turns_gets_no_template(tmp_path, caplog):
    tok = make_word_tokenizer(["안녕"])
    tok.chat_template = ("{%- for m in messages -%}{{ loop.index0 ~ ':' ~ m['content'] }}{%- endfor -%}"
                         "{%- if add_generation_prompt -%}A:{%- endif -%}")
    with pytest.raises(IrregularTemplateError, match="changes along the conversation"):
        go_template(tok)


def test_modelfile_of_the_quickstart_model(tiny_model_dir):
    text = modelfile_text(tiny_model_dir, "model-q8_0.gguf")
    lines = text.splitlines()
    assert "FROM ./model-q8_0.gguf" in lines
    assert lines.index("FROM ./model-q8_0.gguf") < next(i for i, x in enumerate(lines) if x.startswith("TEMPLATE"))
    assert [x for x in lines if x.startswith("PARAMETER")] == [
        'PARAMETER stop "</s>"', 'PARAMETER stop "<usr>"', "PARAMETER num_ctx 256", "PARAMETER temperature 0.8",
        "PARAMETER top_p 0.92", "PARAMETER repeat_penalty 1.25", "PARAMETER num_predict 32"]


def test_llama3_stops_on_every_end_of_turn_string():
    from chathuman_hf.publishing.modelfile import stop_strings
    from tests.helpers.families import make_family_word_tokenizer

    # a Llama 3 base: eos <|end_of_text|> differs from the end-of-turn token; a new header also ends the reply
    assert stop_strings(make_family_word_tokenizer("llama", ["안녕"])) == [
        "<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>"]
    assert stop_strings(real_template_tokenizer("llama3_1")) == ["<|eot_id|>", "<|start_header_id|>"]

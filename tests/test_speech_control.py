"""Speech-level control: levels stored with the data, balancing, the instruction through the templates, the chat
front ends (session, terminal, API and page) and the speech_control metric on a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

pytest.importorskip("kiwipiepy")

from datasets import Dataset  # noqa: E402

from chathuman_hf.chat import ChatEngine, ChatSession  # noqa: E402
from chathuman_hf.data import DataArguments, DataReport  # noqa: E402
from chathuman_hf.data.speech import (  # noqa: E402
    add_level_instructions,
    add_speech_levels,
    apply_speech_options,
    balance_levels,
    dialogue_level,
    level_counts,
)
from chathuman_hf.korean.analysis import (  # noqa: E402
    parse_speech_level,
    requested_level,
    with_level_instruction,
    without_level_instruction,
)
from chathuman_hf.tokens.labels import SYSTEM, target_mask  # noqa: E402

PLAIN_MSG, POLITE_MSG = "반말로 대답해.", "존댓말로 대답해."


def dialogues() -> Dataset:
    rows = [
        [("user", "밥 먹었어?"), ("assistant", "응 먹었어"), ("user", "뭐 먹었어?"), ("assistant", "김밥 먹었어.")],
        [("user", "오늘 너무 피곤해"), ("assistant", "푹 쉬세요.")],
        [("user", "시험 망쳤어"), ("assistant", "다음엔 잘할 거예요.")],
        [("user", "ㅋㅋㅋ"), ("assistant", "ㅋㅋ")],
    ]
    return Dataset.from_list([{"messages": [{"role": r, "content": c} for r, c in row], "source": "t.jsonl",
                               "dialogue_id": str(i)} for i, row in enumerate(rows)])


def test_levels_are_stored_per_message_and_counted():
    data = add_speech_levels(dialogues())
    assert data[0]["speech_levels"] == ["plain", "plain", "plain", "plain"]
    assert data[1]["speech_levels"] == ["plain", "polite"]
    assert data[3]["speech_levels"] == ["undetermined", "undetermined"]
    assert level_counts(data) == {
        "assistant": {"plain": 2, "polite": 2, "undetermined": 1},
        "user": {"plain": 4, "polite": 0, "undetermined": 1},
        "dialogues": {"plain": 1, "polite": 2, "undetermined": 1},
    }


def test_dialogue_level_is_the_majority_of_replies_and_a_tie_goes_to_the_last():
    msgs = [{"role": r, "content": ""} for r in ("user", "assistant", "user", "assistant")]
    assert dialogue_level(msgs, ["plain", "polite", "plain", "plain"]) == "plain"
    assert dialogue_level(msgs, ["plain", "undetermined", "plain", "polite"]) == "polite"
    assert dialogue_level(msgs, ["polite", "undetermined", "polite", "undetermined"]) == "undetermined"


def test_instruction_is_the_system_message_and_merges_with_one_already_there():
    msgs = [{"role": "user", "content": "안녕"}]
    assert with_level_instruction(msgs, "plain") == [{"role": "system", "content": PLAIN_MSG}, *msgs]
    assert with_level_instruction(msgs, None) == msgs and with_level_instruction(msgs, "undetermined") == msgs
    merged = with_level_instruction([{"role": "system", "content": "너는 이랑이야."}, *msgs], "polite")
    assert merged[0] == {"role": "system", "content": f"너는 이랑이야.\n{POLITE_MSG}"}
    assert without_level_instruction(merged) == [{"role": "system", "content": "너는 이랑이야."}, *msgs]
    assert without_level_instruction(with_level_instruction(msgs, "plain")) == msgs
    data = add_level_instructions(add_speech_levels(dialogues()))
    assert data[0]["messages"][0] == {"role": "system", "content": PLAIN_MSG}
    assert data[2]["messages"][0] == {"role": "system", "content": POLITE_MSG}
    assert data[3]["messages"][0]["role"] == "user"  # undetermined: no instruction
    assert data[0]["speech_levels"][0] == "" and len(data[0]["speech_levels"]) == len(data[0]["messages"])


def test_balancing_adds_converted_counterparts_up_to_balance():
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], "source": "t",
             "dialogue_id": str(i)} for i, (q, a) in enumerate([
                 ("배고파", "맛있는 거 드세요."), ("피곤해", "푹 쉬세요."), ("심심해", "영화 어때요?"),
                 ("비 와", "우산 챙기세요."), ("졸려", "일찍 자"),
             ])]
    report = DataReport()
    data = balance_levels(add_speech_levels(Dataset.from_list(rows)), 1.0, report, seed=0)
    stats = report.stats["speech_level_balance"]
    assert stats["from"] == "polite" and stats["to"] == "plain" and stats["wanted"] == 3  # 4 polite vs 1 plain
    assert stats["added"] + stats["conversion_rejected"] <= 4 and stats["added"] == 3
    added = data.select(range(5, len(data)))
    assert all(r["dialogue_id"].endswith("#plain") and r["speech_levels"] == ["plain", "plain"] for r in added)
    originals = {r["dialogue_id"]: r for r in data.select(range(5))}
    for row in added:  # the question is kept, only the reply changes level
        source = originals[row["dialogue_id"].split("#")[0]]
        assert row["messages"][0] == source["messages"][0] and row["messages"][1] != source["messages"][1]
    with pytest.raises(ValueError, match="between 0 and 1"):  # the options' check (one home for the rule)
        DataArguments(speech_level_balance=1.5)


def test_options_and_report(tmp_path):
    args = DataArguments(speech_level_control=True, speech_level_balance=0.5)
    assert args.wants_speech_levels() and not DataArguments().wants_speech_levels()
    report = DataReport()
    out = apply_speech_options(dialogues(), args, report)
    assert "speech_levels" in report.to_dict() and "speech_level_balance" in report.to_dict()
    assert "speech levels, train" in report.format_table()
    assert out[0]["messages"][0]["content"] == PLAIN_MSG


def test_prepare_writes_levels_and_counts(repo_root, tmp_path):
    data = tmp_path / "d.jsonl"
    pairs = [("밥 먹었어?", "응 먹었어"), ("피곤해", "푹 쉬세요.")]
    lines = [json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]},
                        ensure_ascii=False) for q, a in pairs]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(repo_root / "recipes/prepare.py"), "--data", str(data), "--output",
                           str(out), "--speech_levels"], capture_output=True, text=True, timeout=300, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (out / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["speech_levels"] for r in rows] == [["plain", "plain"], ["plain", "polite"]]
    assert rows[0]["messages"][0]["role"] == "user"  # levels only: no instruction without --speech_level_control
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["speech_levels"]["train"]["assistant"] == {"plain": 1, "polite": 1, "undetermined": 0}


@pytest.mark.parametrize("family", ["gpt2", "qwen2", "exaone4", "gemma3_text"])
def test_instruction_renders_in_the_template_and_is_never_a_target(family):
    from chathuman_hf.tokens.encoding import encode_dialogues
    from chathuman_hf.tokens.template_choice import apply_template_choice
    from tests.helpers.families import make_family_word_tokenizer
    from tests.helpers.tiny_models import make_word_tokenizer

    words = ["반말로", "대답해.", "밥", "먹었어?", "응", "먹었어"]
    tok = make_word_tokenizer(words) if family == "gpt2" else make_family_word_tokenizer(family, words)
    tok = apply_template_choice(tok)
    messages = with_level_instruction([{"role": "user", "content": "밥 먹었어?"},
                                       {"role": "assistant", "content": "응 먹었어"}], "plain")
    assert PLAIN_MSG in tok.apply_chat_template(messages, tokenize=False)
    record = encode_dialogues([messages], tok)[0]
    ids = tok.convert_tokens_to_ids(["반말로", "대답해."])
    where = [i for i, t in enumerate(record["input_ids"]) if t in ids]
    assert len(where) == 2
    mask = target_mask(record["roles"], record["last_turn"], "-100+sys")
    assert not any(mask[i] for i in where)
    if family != "gemma3_text":  # gemma folds the system message into the first user turn
        assert all(record["roles"][i] == SYSTEM for i in where)


def test_parse_and_mirror():
    assert parse_speech_level(None) is None and parse_speech_level("none") is None
    assert parse_speech_level(" Plain ") == "plain"
    with pytest.raises(ValueError, match="speech_level must be one of"):
        parse_speech_level("formal")
    history = [{"role": "user", "content": "안녕하세요"}, {"role": "assistant", "content": "안녕"},
               {"role": "user", "content": "ㅋㅋㅋ"}]
    assert requested_level(history, "mirror") == "polite"  # the last user message with a level
    assert requested_level([*history, {"role": "user", "content": "밥 먹었어?"}], "mirror") == "plain"
    assert requested_level([{"role": "user", "content": "ㅋㅋ"}], "mirror") is None
    assert requested_level(history, "plain") == "plain"


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir)


def test_session_puts_the_instruction_in_the_prompt(engine):
    chat = ChatSession(engine, preset="greedy", use_skills=False, max_new_tokens=4, speech_level="mirror")
    assert chat.messages_for("밥 드셨어요?")[0] == {"role": "system", "content": POLITE_MSG}
    assert chat.messages_for("밥 먹었어?")[0] == {"role": "system", "content": PLAIN_MSG}
    assert chat.messages_for("밥 먹었어?", "none")[0]["role"] == "user"  # a per-message choice wins
    chat.reply("밥 먹었어?", speech_level="polite")
    asked = with_level_instruction([{"role": "user", "content": "밥 먹었어?"}], "polite")
    assert chat.last_generation.prompt_tokens == len(engine.prompt_ids(asked, max_new_tokens=4))
    plain = ChatSession(engine, preset="greedy", use_skills=False, max_new_tokens=4)
    plain.reply("밥 먹었어?")
    assert plain.last_generation.prompt_tokens < chat.last_generation.prompt_tokens
    with pytest.raises(ValueError, match="speech_level"):
        ChatSession(engine, speech_level="반말")


def test_api_field_and_page_toggle(engine):
    from chathuman_hf.serving import create_app
    from chathuman_hf.serving.runner import serve_in_thread

    app = create_app(engine=engine, preset="greedy", preset_overrides={"max_new_tokens": 4}, use_skills=False)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert 'id="speech-level"' in client.get("/").text and "speech_level" in client.get("/static/chat.js").text
        ok = client.post("/page/api/chat",
                         json={"session_id": "s1", "message": "밥 먹었어?", "speech_level": "polite"})
        assert ok.status_code == 200
        session = app.state.store.get("s1").session
        asked = with_level_instruction([{"role": "user", "content": "밥 먹었어?"}], "polite")
        assert session.last_generation.prompt_tokens == len(engine.prompt_ids(asked, max_new_tokens=4))
        assert session.history[0] == {"role": "user", "content": "밥 먹었어?"}  # the instruction is not history
        stream = client.post("/page/api/chat/stream",
                             json={"session_id": "s2", "message": "안녕", "speech_level": "plain"})
        assert stream.status_code == 200 and '"type": "done"' in stream.text
        bad = client.post("/page/api/chat", json={"message": "안녕", "speech_level": "반말"})
        assert bad.status_code in (400, 422)


def test_chat_cli_speech_level(repo_root, tiny_model_dir):
    cmd = [sys.executable, str(repo_root / "recipes/chat.py"), "--model", str(tiny_model_dir), "--preset", "greedy",
           "--max-new-tokens", "4", "--no-skills"]
    ok = subprocess.run([*cmd, "--speech_level", "mirror"], input="밥 먹었어?\n", capture_output=True, text=True,
                        timeout=300, cwd=repo_root)
    assert ok.returncode == 0, ok.stderr
    assert len(ok.stdout.splitlines()) == 1
    from transformers import HfArgumentParser

    from chathuman_hf.chat.options import ChatModelArguments

    with pytest.raises(SystemExit) as exit_info:  # argparse choices: exit 2 with the allowed values
        HfArgumentParser(ChatModelArguments).parse_args_into_dataclasses(["--model", "m", "--speech_level", "formal"])
    assert exit_info.value.code == 2


def test_speech_control_metric_on_a_tiny_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chathuman_hf.evaluation.conversation import ConversationEval, level_prompts, speech_control
    from chathuman_hf.tokens.tokenizer import prepare_tokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = prepare_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir))
    plain = add_speech_levels(dialogues())
    assert level_prompts(plain, 10) == []  # no instructions in the data: no speech-control prompts
    controlled = add_level_instructions(plain)
    prompts = level_prompts(controlled, 10)
    assert len(prompts) == 4 and all(p[0]["role"] == "user" for p in prompts)
    out = speech_control(model, tok, prompts, max_prompt_tokens=64)
    assert out["speech_control_prompts"] == 4
    for level in ("plain", "polite"):
        share, undetermined = out[f"speech_control_{level}"], out[f"speech_control_{level}_undetermined"]
        assert 0 <= undetermined <= 1 and (share != share or 0 <= share <= 1)  # nan when nothing was determined
    evaluation = ConversationEval.from_dialogues(controlled, prompts, contexts=2, control_prompts=3)
    assert len(evaluation.control_prompts) == 3
    assert "speech_control_plain" not in evaluation.compute(model, tok, prompts, [])  # only after training
    evaluation.final = True
    assert "speech_control_plain" in evaluation.compute(model, tok, prompts, [])

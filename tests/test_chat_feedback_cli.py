"""recipes/chat.py --feedback_log through a pipe: /bad, /retry, /good, /edit write the log; notes go to stderr."""

from __future__ import annotations

import io
import json
import sys

from tests.test_chat_cli import load_recipe, run_chat


def test_commands_write_the_feedback_log(repo_root, tiny_model_dir, tmp_path):
    path = tmp_path / "logs" / "feedback.jsonl"
    result = run_chat(repo_root, tiny_model_dir,
                      "안녕 내 메일은 minsu.kim@example.com이야\n/bad 너무 짧아\n/retry\n/good\n"
                      "/edit 반가워, 민수야!\n/shout\n뭐 해?\n/good\nquit\n", "--feedback_log", str(path))
    assert result.returncode == 0, result.stderr
    first, retry, after = result.stdout.splitlines()  # stdout holds only the replies, the new version's included
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(e["event"], e.get("rating"), e.get("how")) for e in lines] == [
        ("rating", -1, None), ("rating", 1, None), ("pair", None, "retry"), ("pair", None, "edit"),
        ("rating", 1, None)]
    down, up, kept, edit, last = lines
    assert (down["reply"], down["comment"], down["source"]) == (first, "너무 짧아", "terminal")
    assert (up["reply"], kept["chosen"], kept["rejected"]) == (retry, retry, first)
    assert (edit["chosen"], edit["rejected"]) == ("반가워, 민수야!", retry)
    assert last["reply"] == after and last["messages"][1] == {"role": "assistant", "content": "반가워, 민수야!"}
    assert "minsu.kim@example.com" not in path.read_text(encoding="utf-8")
    assert "👎 기록했어요." in result.stderr and "다시 만든 답 1개보다 이 답이 낫다고" in result.stderr
    assert "고친 답을 기록했어요" in result.stderr and "모르는 명령이에요: /shout" in result.stderr


def test_without_a_log_ratings_say_how_to_keep_them(repo_root, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("/good\n안녕\n/good\n/retry\n/edit\n초기화\n/retry\nquit\n"))
    assert load_recipe(repo_root).main(["--model", str(tiny_model_dir), "--preset", "greedy",
                                        "--max-new-tokens", "4", "--no-skills"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3  # the reply, its 다시 and 초기화's answer
    assert "아직 모델의 답이 없어요" in err
    assert "평가는 저장되지 않아요: chat.py를 --feedback_log PATH로 시작하면 저장돼요." in err
    assert "/edit 뒤에 바라던 답을 써 주세요" in err
    assert "마지막 답은 모델이 아니라 기능(시각, 로또, 초기화 …)의 답이에요" in err  # /retry after 초기화

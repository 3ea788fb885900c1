"""bench.feedback_loop: the simulated person (its rule, its edit, the page it presses) and a rerun on a log."""

from __future__ import annotations

import pytest

pytest.importorskip("kiwipiepy")

from bench.feedback_person import edited, fluent, judge  # noqa: E402


@pytest.mark.parametrize(
    ("user", "reply", "expected"),
    [
        ("밥 먹었어?", "응 먹었어.", (True, "ok")),
        ("밥 먹었어?", "네 먹었어요.", (False, "polite_to_plain")),
        ("식사하셨어요?", "응 먹었어.", (False, "plain_to_polite")),
        ("식사하셨어요?", "네 먹었어요.", (True, "ok")),
        ("ㅋㅋㅋ", "좋아요.", (True, "ok")),  # a user message with no level accepts either
        ("ㅋㅋㅋ", "좋아.", (True, "ok")),
        ("배고파", "배고파", (False, "repeat")),
        ("배고파", "밥 밥 먹어", (False, "repeat")),
        ("배고파", "ㅋㅋ", (False, "no_level")),
        ("배고파", " ", (False, "empty")),
    ],
)
def test_rule(user, reply, expected):
    assert judge(user, reply) == expected


def test_edit_rewrites_the_level_only_when_that_was_the_fault():
    assert edited("배고파", "뭐 좀 드세요.") == "뭐 좀 먹어."
    assert edited("식사하셨어요?", "응 먹었어.") == "네 먹었어요."
    assert edited("밥 먹었어?", "응 먹었어.") is None  # passes already
    assert edited("배고파", "ㅋㅋ") is None  # no level to rewrite
    assert edited("ㅋㅋㅋ", "좋아요.") is None  # the user has no level


def test_fluent_tells_broken_replies_from_real_ones():
    """Replies of the loop's KTO and DPO models (bench/RESULTS.md § 18b) against fluent ones at both levels."""
    assert [fluent(t) for t in ("직접 물어보세요.", "직접 물어봐.", "약을 해봐.", "좋은 생각이에요.")] == [True] * 4
    assert [fluent(t) for t in ("충전할형 해요.", "딪혔나봐요.", "볼 때 들어가 적 바너데.", " ")] == [False] * 4


def test_the_page_person_presses_the_pages_buttons_over_http(tiny_model_dir, tmp_path):
    """Every action of the bench's person goes through the page's endpoints of a real server and is logged."""
    import json

    from bench.feedback_person import PagePerson, rate_on_page
    from chathuman_hf.chat import ChatEngine
    from chathuman_hf.serving import create_app
    from chathuman_hf.serving.runner import serve_in_thread

    log = tmp_path / "feedback.jsonl"
    engine = ChatEngine.from_pretrained(tiny_model_dir, max_batch_size=4)
    app = create_app(engine=engine, feedback_log=log, preset="fast", preset_overrides={"max_new_tokens": 6},
                     use_skills=False)
    with serve_in_thread(app) as url:
        person = PagePerson(url)
        ref, first = person.ask("배고파")
        person.rate(ref, -1)
        sibling, second = person.retry(ref)
        person.rate(ref, 1, sibling)
        person.edit(ref, "뭐 좀 먹어.")
        events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        records = rate_on_page(person, ["안녕", "밥 먹었어?"], threads=2, edit=True)
    retry = [("pair", None, "retry", second, first)] if second != first else []  # same text twice: no preference
    assert sibling == 1
    assert [(e["event"], e.get("rating"), e.get("how"), e.get("chosen"), e.get("rejected")) for e in events] == [
        ("rating", -1, None, None, None), ("rating", 1, None, None, None), *retry,
        ("pair", None, "edit", "뭐 좀 먹어.", second)]
    assert {e["source"] for e in events} == {"page"}
    after = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()][len(events):]
    assert sum(e["event"] == "rating" for e in after) == len(records) >= 2  # one rating per rated reply
    assert {r["user"] for r in records} == {"안녕", "밥 먹었어?"}


@pytest.mark.slow
def test_a_rerun_on_a_log_trains_every_stage_and_judges_each_model(tiny_model_dir, tmp_path):
    """``--log``: the log is prepared, KTO, DPO and ORPO train on it (KTO and DPO with the bench's default options:
    rank-2 adapters, DPO with the SFT term), and the SFT model and the three are judged."""
    import json
    from pathlib import Path

    from bench.common import CHATBOT_CSV
    from bench.feedback_loop import main

    if not Path(CHATBOT_CSV).exists():
        pytest.skip(f"{CHATBOT_CSV} (../shared) is not here")
    log = Path(__file__).parent / "data" / "fixtures" / "feedback" / "feedback.jsonl"
    one_step = ["num_train_epochs=1", "max_steps=1", "per_device_train_batch_size=2"]
    results = main(["--model", str(tiny_model_dir), "--log", str(log), "--held_out", "3", "--selection_contexts", "3",
                    "--threads", "2", "--samples", "1", "--work", str(tmp_path / "work"), "--out",
                    str(tmp_path / "loop.json"), "--orpo", *one_step])
    assert set(results["contenders"]) == {"sft", "kto", "dpo", "orpo"}
    assert {c["replies"] for c in results["contenders"].values()} == {3}
    assert set(results["ratios"]) == {f"{m} {what} − sft (points)" for m in ("kto", "dpo", "orpo")
                                      for what in ("pass rate", "hits@1")}
    assert results["ratings"] == {"pairs": 2, "ratings": 3,
                                  "dropped": {"malformed_record": 2, "rating_in_pair": 1, "re_rated": 1}}
    for stage in ("kto", "dpo", "orpo"):
        args = json.loads((tmp_path / "work" / stage / "run_args.json").read_text(encoding="utf-8"))
        assert args["PreferenceArguments"]["stage"] == stage
        assert (args["ModelArguments"]["use_peft"], args["ModelArguments"]["lora_r"]) == ((True, 2) if stage != "orpo"
                                                                                          else (False, 16))
    dpo = json.loads((tmp_path / "work" / "dpo" / "run_args.json").read_text(encoding="utf-8"))
    assert (dpo["PreferenceArguments"]["sft_weight"], dpo["DPOConfig"]["num_train_epochs"]) == (2.0, 6.0)
    assert json.loads((tmp_path / "loop.json").read_text(encoding="utf-8"))["ratios"] == results["ratios"]

"""PII scrubbing: recall per type and precision on our synthetic set, names in Kakao texts, fakes, the pipeline step,
and the no-leak search of prepare.py's whole output folder."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from chathuman_hf.core.cli import UsageError
from chathuman_hf.data import DataArguments, DataReport, load_dialogues
from chathuman_hf.data.clean import CleaningOptions, clean_utterance
from chathuman_hf.data.names import FakeNamer
from chathuman_hf.data.pii import PLACEHOLDERS, find_pii, luhn_ok, scrub_text
from chathuman_hf.data.pii_synthetic import GENERATORS, PER_TYPE, positives
from chathuman_hf.data.scrub import name_forms, replace_names, scrub_dialogue

from .pii_cases import ORDINARY


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_recall_per_type_is_at_least_99_percent(kind):
    found = 0
    for sentence, value in positives(kind):
        counts: Counter[str] = Counter()
        out = scrub_text(sentence, counts=counts)
        found += value not in out and counts[kind] >= 1 and PLACEHOLDERS[kind] in out
    assert found / PER_TYPE >= 0.99, (kind, found)


def test_sentences_with_ordinary_numbers_stay_unchanged():
    assert len(ORDINARY) >= 100
    changed = [(s, find_pii(s)) for s in ORDINARY if scrub_text(s) != s]
    assert len(changed) <= 0.05 * len(ORDINARY), changed
    assert changed == []  # today: none at all


def test_near_misses_and_checks():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert find_pii("카드 4111 1111 1111 1111") == [("card", "4111 1111 1111 1111")]
    assert find_pii("카드 4111 1111 1111 1112") == []  # fails Luhn
    assert find_pii("9013011234567 이거") == [("bank_account", "9013011234567")]  # month 13: not a resident number
    assert find_pii("900101-1234567") == [("resident_id", "900101-1234567")]
    assert find_pii("900101-5234567") == [("foreigner_id", "900101-5234567")]
    assert find_pii("https://naver.com/news 봐") == []  # no credentials, no query
    assert find_pii("연락처 010-1234-5678, 메일 a.b@naver.com") == [
        ("phone", "010-1234-5678"), ("email", "a.b@naver.com")
    ]


def test_names_in_texts_take_the_speakers_pseudonyms_with_fitted_particles():
    namer = FakeNamer(42, "chat.txt#0")
    speakers = ["김민준", "서연", "엄마"]
    texts = ["서연아 밥 먹었어?", "응 민준이는? 김민준 씨 왔어요", "민준아 010-2222-3333으로 전화해", "엄마 나 배고파"]
    pseudonyms, out, counts = scrub_dialogue(speakers, texts, namer)
    (s1, g1), (_, g2) = namer.person("김민준"), namer.person("서연")
    assert pseudonyms == [s1 + g1, namer.person("서연")[0] + g2, "엄마"]  # relations are not names
    assert g1 != g2 and "민준" not in " ".join(out) and "서연" not in " ".join(out)
    final = {g: (ord(g[-1]) - 0xAC00) % 28 != 0 for g in (g1, g2)}
    assert out[0] == f"{g2}{'아' if final[g2] else '야'} 밥 먹었어?"
    assert out[1] == f"응 {g1}{'이' if final[g1] else ''}는? {s1}{g1} 씨 왔어요"
    assert out[2] == f"{g1}{'아' if final[g1] else '야'} [전화번호]으로 전화해" and out[3] == "엄마 나 배고파"
    assert counts == Counter({"name": 4, "phone": 1})
    assert replace_names("동생이랑 민준이랑 놀았어", ["이랑", "민준"], FakeNamer(1, "d")).startswith("동생이랑 ")
    assert (
        name_forms("김민준") == {"김민준": True, "민준": False}
        and name_forms("P01") == name_forms("assistant") == {}
    )


def test_fakes_keep_the_shape_and_are_consistent_within_a_dialogue():
    rng = random.Random(3)
    namer = FakeNamer(7, "d")
    for kind, make in GENERATORS.items():
        value = make(rng)
        fake = namer.fake(kind, value)
        assert fake != value and namer.fake(kind, value) == fake
        if kind not in ("email", "url", "ipv4"):
            assert len(fake) == len(value) and [c.isdigit() for c in fake] == [c.isdigit() for c in value], kind
        assert [k for k, _ in find_pii(fake)] == [kind], (kind, value, fake)
    other = FakeNamer(7, "d").fake("phone", "010-9999-8888")
    assert other == FakeNamer(7, "d").fake("phone", "010-1111-2222")  # drawn from the order, never from the value
    text = scrub_text("010-1234-5678 맞지? 010-1234-5678 맞아", namer.fake)
    assert text.count(namer.fake("phone", "010-1234-5678")) == 2


def test_cleaning_keeps_placeholders():
    text = scrub_text("내 번호 010-1234-5678이고 메일은 x@y.com [광고]")
    assert clean_utterance(text, CleaningOptions()) == ("내 번호 [전화번호]이고 메일은 [이메일] 광고", None)


def test_options_tri_state():
    from transformers import HfArgumentParser

    parser = HfArgumentParser(DataArguments)
    settings = [parser.parse_args_into_dataclasses(args=argv)[0].scrub_setting()
                for argv in ([], ["--scrub_pii"], ["--no_scrub_pii"], ["--scrub_pii", "false"],
                             ["--scrub_pii", "auto"])]
    assert settings == ["auto", "on", "off", "off", "auto"]
    parser.set_defaults(scrub_pii="auto")  # what --config x.yaml does with `scrub_pii: auto`
    assert parser.parse_args_into_dataclasses(args=[])[0].scrub_setting() == "auto"
    parser.set_defaults(scrub_pii=True)  # `scrub_pii: true`
    assert parser.parse_args_into_dataclasses(args=[])[0].scrub_setting() == "on"
    assert DataArguments().scrub_setting() == "auto"
    assert DataArguments(scrub_pii=True).scrub_setting() == "on"
    assert DataArguments(no_scrub_pii=True).scrub_setting() == "off"
    assert DataArguments(scrub_pii="auto").scrub_setting() == "auto"  # YAML
    with pytest.raises(UsageError, match="contradict"):
        DataArguments(scrub_pii=True, no_scrub_pii=True)
    with pytest.raises(UsageError, match="placeholder"):
        DataArguments(pii_replacement="mask")


KAKAO = """--------------- 2024년 3월 1일 금요일 ---------------
[김민준] [오후 9:15] 서연아 내 번호 010-4821-7730 저장해
[이서연] [오후 9:16] 민준아 알았어 내 계좌는 3333-01-7654321 이야
[김민준] [오후 9:17] 주민번호는 950312-1045678 카드는 4111 1111 1111 1111
[이서연] [오후 9:18] 메일 seoyeon.lee@naver.com 으로 보낼게
"""


def _load(tmp_path: Path, **options):
    (tmp_path / "chat.txt").write_text(KAKAO, encoding="utf-8")
    report = DataReport()
    dataset = load_dialogues(tmp_path / "chat.txt", report=report, **{"assistant": "이서연", **options})
    return " ".join(m["content"] for row in dataset for m in row["messages"]), report


def test_kakao_exports_are_scrubbed_by_default_and_counted(tmp_path):
    text, report = _load(tmp_path, data_cache_dir=str(tmp_path / "cache"))
    for value in (
        "010-4821-7730", "3333-01-7654321", "950312-1045678", "4111 1111 1111 1111", "seoyeon", "서연", "민준"
    ):
        assert value not in text
    assert "[전화번호]" in text and "[계좌번호]" in text
    expected = {"bank_account": 1, "card": 1, "email": 1, "name": 2, "phone": 1, "resident_id": 1}
    assert report.pii["total"] == expected and report.pii["files"] == {str(tmp_path / "chat.txt"): expected}
    assert "personal data replaced (1 file(s) scrubbed)" in report.format_table()
    off, report = _load(tmp_path, no_scrub_pii=True, data_cache_dir=str(tmp_path / "cache"))
    assert "010-4821-7730" in off and report.pii["scrubbed_files"] == 0
    fake, report = _load(tmp_path, pii_replacement="fake", data_cache_dir=str(tmp_path / "cache"))
    assert "010-4821-7730" not in fake and "[전화번호]" not in fake and report.pii["total"] == expected
    assert [kind for kind, _ in find_pii(fake)].count("phone") == 1  # a same-shape fake took its place
    with pytest.warns(UserWarning, match="names withheld"):  # no --assistant: the warning names nobody
        _, report = _load(tmp_path, assistant=None, data_cache_dir=str(tmp_path / "cache"))
    assert "서연" not in json.dumps(report.to_dict(), ensure_ascii=False)


def planted_export(folder: Path) -> tuple[Path, dict[str, list[str]]]:
    """A Kakao export with 12 planted values of every type (and the participants' names in the texts)."""
    rng = random.Random(13)
    planted = {kind: [make(rng) for _ in range(12)] for kind, make in GENERATORS.items()}
    lines = ["--------------- 2024년 3월 1일 금요일 ---------------"]
    for i, (kind, values) in enumerate(sorted(planted.items())):
        for j, value in enumerate(values):
            speaker = ("박지훈", "최유나")[j % 2]
            lines.append(f"[{speaker}] [오후 {1 + i}:{10 + j:02d}] 유나야 {kind} {value} 받아")
    (folder / "kakao.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "kakao.txt", planted


def leaked_values(out: Path, planted: dict[str, list[str]], *extra: str) -> list[str]:
    """Planted values (and the name 유나) found in any file under ``out`` or in ``extra`` texts.

    The datasets cache of the raw read (``generator-*.arrow``) is a copy of the input by design and is skipped.
    """
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith("generator")]
    blob = b"\n".join(p.read_bytes() for p in files) + "\n".join(extra).encode()
    values = [v for vs in planted.values() for v in vs] + ["유나"]
    return [v for v in values if v.encode() in blob or v.lower().encode() in blob]


def test_no_planted_value_reaches_the_prepare_output(tmp_path, repo_root):
    export, planted = planted_export(tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, str(repo_root / "recipes/prepare.py"), "--data", str(export),
           "--assistant", "최유나", "--output", str(out), "--data_cache_dir", str(out / "cache")]  # fmt: skip
    proc = subprocess.run(cmd, env=dict(os.environ, HF_DATASETS_OFFLINE="1"), capture_output=True, text=True,
                          timeout=120, cwd=repo_root)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in report["pii"]["total"].items() if k != "name"} == {k: 12 for k in planted}
    assert "personal data replaced" in proc.stdout and len(list(out.rglob("cache-*.arrow"))) >= 1
    assert leaked_values(out, planted, proc.stdout, proc.stderr) == []


@pytest.mark.slow
def test_no_planted_value_reaches_the_training_output(tmp_path, repo_root):
    """train.py on the export: model, tokenizer, card, report, logs and the tokenized cache hold no planted value."""
    export, planted = planted_export(tmp_path)
    out = tmp_path / "run"
    cmd = [sys.executable, str(repo_root / "recipes/train.py"), "--data", str(export), "--assistant", "최유나",
           "--silence_minutes", "20", "--model_type", "gpt2",
           "--config_overrides", "n_layer=2,n_embd=32,n_head=2,n_positions=128",
           "--train-tokenizer", "--vocab-size", "300", "--max-length", "96", "--output_dir", str(out),
           "--max_steps", "4", "--eval_strategy", "steps", "--eval_steps", "4", "--save_strategy", "steps",
           "--save_steps", "4", "--logging_steps", "1", "--generation_prompts", "2", "--report_to", "none",
           "--data_cache_dir", str(out / "data_cache"), "--disable_tqdm", "true"]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(out / "hf_cache"))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.safetensors").exists() and "Personal data scrubbed" in (out / "README.md").read_text()
    assert leaked_values(out, planted, proc.stdout, proc.stderr) == []


def test_model_card_says_what_was_scrubbed():
    from chathuman_hf.publishing.model_card import ModelCardInfo, render_model_card

    def card(pii):
        return render_model_card(ModelCardInfo(
            model_name="m", base_model=None, model_config={}, label_mode="input", chat_options={}, cleaning={},
            report={"dialogues": 2, "sources": {"chat.txt": 2}, "pii": pii}, hyperparameters={},
            eval_metrics={}))  # fmt: skip

    on = {"setting": "auto", "replacement": "placeholder", "scrubbed_files": 1, "total": {"card": 1, "phone": 3}}
    assert "Personal data scrubbed before training in 1 file(s), replaced by placeholders such as " \
           "[전화번호]: card 1, phone 3." in card(on)  # fmt: skip
    assert "Personal data: not scrubbed (--no_scrub_pii)." in card({"setting": "off", "scrubbed_files": 0})


@pytest.mark.parametrize("first, second, kind", [
    ("내 번호 010-4321", "-8765 로 연락해", "phone"),
    ("010", "4321-8765 이야", "phone"),
    ("번호 010-4321 ", " 8765", "phone"),
    ("메일은 seoyeon.lee@", "naver.com 이야", "email"),
    ("주민번호 950312-", "1045678 맞아", "resident_id"),
    ("계좌 3333-01-", "7654321 로 보내", "bank_account"),
])
def test_a_value_split_over_two_messages_is_scrubbed_where_merging_joins_it(first, second, kind):
    """Merging consecutive messages creates the value: scrubbing looks across each message boundary too."""
    speakers, texts = ["김민준", "김민준"], [first, second]
    _, out, counts = scrub_dialogue(speakers, texts, FakeNamer(1, "d"))
    assert counts[kind] == 1, (out, counts)
    assert find_pii("".join(out)) == [] and PLACEHOLDERS[kind] in out[0], out
    assert not any(ch.isdigit() for ch in out[1].split(" ")[0]), out  # the tail went with the value
    _, fake, counts = scrub_dialogue(speakers, texts, FakeNamer(1, "d"), "fake")
    assert [k for k, _ in find_pii("".join(fake))] == [kind] and counts[kind] == 1, fake  # one fake, same shape


def test_adjacent_messages_that_only_look_joined_stay():
    texts = ["3시에 만나", "2번 출구", "몇 번?", "12", "34", "다음 주 5일"]
    _, out, counts = scrub_dialogue(["a", "b", "a", "b", "a", "b"], texts, FakeNamer(1, "d"))
    assert out == texts and not counts


def test_a_phone_split_in_a_kakao_export_never_reaches_the_dialogues(tmp_path):
    (tmp_path / "chat.txt").write_text(
        "--------------- 2024년 3월 1일 금요일 ---------------\n"
        "[김민준] [오후 9:15] 안녕 내 번호 010-4321\n[김민준] [오후 9:15] -8765 로 연락해\n"
        "[이서연] [오후 9:16] 알았어 저장할게\n", encoding="utf-8")
    report = DataReport()
    dataset = load_dialogues(tmp_path / "chat.txt", report=report, assistant="이서연",
                             data_cache_dir=str(tmp_path / "cache"))
    text = " ".join(m["content"] for row in dataset for m in row["messages"])
    assert "4321" not in text and "8765" not in text and "[전화번호]" in text, text
    assert report.pii["total"].get("phone") == 1, report.pii


@pytest.mark.parametrize("text, expected", [
    ("메일 abc12@naver.com 로 보내", "메일 abc12@naver.com 로 보내"),
    ("A.B-c@Mail.co.kr 이거", "a.b-c@mail.co.kr 이거"),
    ("@@ 뭐야 @", "뭐야"),  # other @s still go
    ("[이메일] 이랑 x@y.com", "[이메일] 이랑 x@y.com"),
])
def test_the_symbol_cleaner_keeps_e_mail_addresses_whole(text, expected):
    assert clean_utterance(text, CleaningOptions()) == (expected, None)


def test_fake_e_mails_keep_their_shape_through_cleaning(tmp_path):
    fake, report = _load(tmp_path, pii_replacement="fake", data_cache_dir=str(tmp_path / "cache"))
    assert "seoyeon" not in fake and report.pii["total"]["email"] == 1
    assert [kind for kind, _ in find_pii(fake)].count("email") == 1, fake


@pytest.mark.parametrize("text, kinds", [
    ("０１０－１２３４－５６７８ 로 전화해", ["phone"]),
    ("번호는 ０１０ １２３４ ５６７８", ["phone"]),
    ("메일 ａｂｃ＠ｎａｖｅｒ．ｃｏｍ", ["email"]),
    ("주민 ９５０３１２－１０４５６７８", ["resident_id"]),
    ("010‐1234‐5678 (U+2010 hyphens)", ["phone"]),
    ("계좌 3333−01−1234567 (U+2212)", ["bank_account"]),
])
def test_full_width_and_look_alike_forms_are_normalised_before_scanning(text, kinds):
    counts: Counter[str] = Counter()
    out = scrub_text(text, counts=counts)
    assert sorted(counts) == kinds and sum(counts.values()) == 1, (out, counts)
    assert not any("0" <= c <= "9" or "\uff10" <= c <= "\uff19" for c in out.split("(")[0].replace("[", "")), out


def test_full_width_text_survives_the_symbol_cleaner_as_ascii():
    assert clean_utterance("１２３번 버스 ＯＫ！", CleaningOptions()) == ("123번 버스 ok!", None)
    assert clean_utterance("０１０－１２３４－５６７８", CleaningOptions()) == ("010-1234-5678", None)


@pytest.mark.parametrize("value, kind", [
    ("901345-1234567", "resident_id"),  # month 13, day 45: malformed, still an ID layout: scrubbed
    ("991399 - 2234567", "resident_id"),
    ("000000-5234567", "foreigner_id"),
    ("9013451234567", "bank_account"),  # the bare 13-digit run: scrubbed as an account number
    ("900101-1234567", "resident_id"),
])
def test_a_malformed_resident_number_is_scrubbed(value, kind):
    assert find_pii(f"번호 {value} 야") == [(kind, value)]
    fake = FakeNamer(3, "d").fake(kind, value)
    assert [k for k, _ in find_pii(fake)] == [kind], fake

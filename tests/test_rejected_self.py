"""``--rejected self``: the SFT model's own sampled replies are the rejected side (a tiny saved chat model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chathuman_hf.core.cli import UsageError
from chathuman_hf.data import DataArguments, DataReport
from chathuman_hf.data.clean import CleaningOptions, clean_utterance
from chathuman_hf.training.preference_data import load_dialogues_and_preferences, load_preference_data
from chathuman_hf.training.self_replies import ReplySampler

QA = "question\tanswer\n배고파\t뭐라도 좀 드세요.\n심심해\t산책 어때요?\n졸려\t일찍 자요.\n"


def test_self_replies_are_sampled_seeded_and_checked(tmp_path: Path, tiny_model_dir: Path) -> None:
    (tmp_path / "qa.tsv").write_text(QA, encoding="utf-8")
    args = DataArguments(data=[str(tmp_path)], rejected="self", rejected_model=str(tiny_model_dir))
    report = DataReport()
    dialogues, data = load_dialogues_and_preferences(args, report)
    assert dialogues is not None and len(dialogues) == 3
    assert report.stats["preferences"]["from_dialogues"] == {
        "rejected": "self", "seed": 42, "replies": 3, "pairs": 3, "dropped": {}
    }  # fmt: skip
    pairs = data.pairs.to_list()
    assert [(p["prompt"], p["chosen"]) for p in pairs] == [
        ([{"role": "user", "content": q}], [{"role": "assistant", "content": a}])
        for q, a in (("배고파", "뭐라도 좀 드세요."), ("심심해", "산책 어때요?"), ("졸려", "일찍 자요."))
    ]
    samples = ReplySampler(tiny_model_dir, seed=42)([p["prompt"] for p in pairs])  # the same seed: the same samples
    # the samples pass the same cleaning as every reply (lower case, symbols out)
    assert [p["rejected"][0]["content"] for p in pairs] == [clean_utterance(s, CleaningOptions())[0] for s in samples]
    assert len({p["rejected"][0]["content"] for p in pairs}) == 3


def test_a_missing_model_folder_is_one_line(tmp_path: Path) -> None:
    args = DataArguments(data=[str(tmp_path)], rejected="self", rejected_model=str(tmp_path / "nope"))
    with pytest.raises(UsageError, match=r"nope: no such folder \(expected the SFT model's output_dir\)"):
        load_preference_data(args)

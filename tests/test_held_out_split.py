"""The held-out split keeps every dialogue and its variants (converted speech-level twins written by
``prepare.py --speech_level_balance``, role swaps, max-turn parts) on one side, so held-out metrics are never measured
on near-copies of training dialogues (issue 34, item 20)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chathuman_hf.data import DataArguments, load_dialogues
from chathuman_hf.data.held_out import origin_of
from chathuman_hf.training.arguments import ChatArguments
from chathuman_hf.training.data_steps import load_data

REPO = Path(__file__).resolve().parents[1]
QA = [(f"질문 {i} 뭐 해?", reply) for i, reply in enumerate(
    ["맛있는 거 드세요.", "푹 쉬세요.", "영화 어때요?", "우산 챙기세요.", "일찍 주무세요.", "물 많이 드세요.",
     "산책 어때요?", "음악 들어 보세요.", "친구 만나 보세요.", "책 읽어 보세요.", "내일 봬요.", "괜찮아요.",
     "좋은 생각이에요.", "천천히 하세요.", "힘내세요.", "축하해요.", "조심히 가세요.", "잘 자요."] * 2)]


def _sides(data) -> tuple[set[str], set[str]]:
    def origins(rows):
        return {origin_of(row["source"], row["dialogue_id"]) for row in rows}

    return origins(data.train_dialogues), origins(data.eval_dialogues)


@pytest.mark.parametrize("dialogue_id, origin", [
    ("qa:3", "qa:3"), ("qa:3#plain", "qa:3"), ("qa:3#polite", "qa:3"), ("qa:3#swap", "qa:3"), ("qa:3#1", "qa:3"),
    ("qa:3#swap#2#plain", "qa:3"), ("chat:12", "chat:12"), ("x#plainly", "x#plainly"),
])
def test_origin_strips_only_the_variant_suffixes_the_pipeline_adds(dialogue_id, origin):
    assert origin_of("f.jsonl", dialogue_id) == f"f.jsonl\t{origin}"


@pytest.mark.slow
def test_prepared_speech_level_twins_stay_on_the_side_of_their_original(tmp_path):
    pytest.importorskip("kiwipiepy")
    (tmp_path / "qa.csv").write_text("Q,A\n" + "".join(f"{q},{a}\n" for q, a in QA), encoding="utf-8")
    env = dict(os.environ, HF_DATASETS_CACHE=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "recipes/prepare.py", "--data", str(tmp_path / "qa.csv"),
                           "--speech_level_balance", "1.0", "--output", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ids = [json.loads(line)["dialogue_id"] for line in (tmp_path / "out" / "dialogues.jsonl").open(encoding="utf-8")]
    assert sum(i.endswith("#plain") for i in ids) >= 10, ids  # the twins are in the prepared file
    for seed in range(6):
        data = load_data(DataArguments(data=[str(tmp_path / "out" / "dialogues.jsonl")],
                                       data_cache_dir=str(tmp_path / "cache")),
                         ChatArguments(eval_split=0.2, split_seed=seed))
        train, held = _sides(data)
        assert held and not train & held, (seed, sorted(train & held))
        assert len(data.train_dialogues) + len(data.eval_dialogues) == len(ids)


def test_twins_in_a_prepared_file_stay_on_the_side_of_their_original(tmp_path):
    """The shape ``prepare.py --speech_level_balance`` writes (the slow test above makes it for real)."""
    rows = []
    for i, (q, a) in enumerate(QA):
        rows.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                     "source": "qa.csv", "dialogue_id": f"qa:{i}"})
        rows.append({**rows[-1], "messages": [rows[-1]["messages"][0], {"role": "assistant", "content": f"{i} 반말"}],
                     "dialogue_id": f"qa:{i}#plain"})
    (tmp_path / "dialogues.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows),
                                              encoding="utf-8")
    for seed in range(6):
        data = load_data(DataArguments(data=[str(tmp_path / "dialogues.jsonl")],
                                       data_cache_dir=str(tmp_path / "cache")),
                         ChatArguments(eval_split=0.2, split_seed=seed))
        train, held = _sides(data)
        assert len(held) == 8 and not train & held, (seed, sorted(train & held))
        assert sorted(data.eval_dialogues["dialogue_id"]) == sorted(
            [d for o in held for d in (o.split("\t")[1], o.split("\t")[1] + "#plain")])


def test_role_swaps_and_max_turn_parts_stay_on_one_side(tmp_path):
    rows = [{"messages": [{"role": r, "content": f"{r} {i} {k}"} for k in range(4) for r in ("user", "assistant")]}
            for i in range(30)]
    (tmp_path / "chat.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    args = DataArguments(data=[str(tmp_path / "chat.jsonl")], role_swap=True, max_dialogue_turns=4,
                         data_cache_dir=str(tmp_path / "cache"))
    for seed in range(6):
        data = load_data(args, ChatArguments(eval_split=0.2, split_seed=seed))
        train, held = _sides(data)
        assert held and not train & held, (seed, sorted(train & held))
        assert len(data.train_dialogues) + len(data.eval_dialogues) == 30 * 4  # 2 parts x (original + swap)
        assert len(held) == 6  # a fifth of the 30 dialogues, each with its 3 variants


def test_without_variants_the_split_is_the_one_datasets_makes(tmp_path):
    """Data with no variants keeps the split earlier runs made (``Dataset.train_test_split`` with the seed)."""
    data = load_data(DataArguments(), ChatArguments(eval_split=0.1, split_seed=42))
    split = load_dialogues().train_test_split(test_size=0.1, seed=42)
    assert data.eval_dialogues["dialogue_id"] == split["test"]["dialogue_id"]
    assert data.train_dialogues["dialogue_id"] == split["train"]["dialogue_id"]

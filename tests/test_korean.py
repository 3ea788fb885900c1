"""Speech level (존댓말/반말) with Kiwi: the rules' traps, our hand-labelled set and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("kiwipiepy")

from chathuman_hf.korean.analysis import morphemes, speech_level  # noqa: E402

LABELLED = Path(__file__).resolve().parent / "speech_levels.tsv"


def read_labelled() -> list[tuple[str, str]]:
    lines = LABELLED.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "label\tutterance"
    return [tuple(line.split("\t", 1)) for line in lines[1:] if line]


@pytest.mark.parametrize(
    ("utterance", "expected"),
    [
        ("밥 먹었어?", "plain"),
        ("밥 드셨어요?", "polite"),
        ("감사합니다", "polite"),
        ("저도요", "polite"),  # 요 as a particle
        ("그래서요", "polite"),
        ("했는데요", "polite"),  # connective + 요
        ("했는데", "plain"),  # sentence-final connective
        ("아니요", "polite"),  # polite interjection
        ("네", "polite"),
        ("응", "plain"),
        ("교수님께서 오셨어?", "plain"),  # subject honorifics alone do not make it polite
        ("할머니 주무셔?", "plain"),
        ("교수님께서 오셨어요?", "polite"),
        ("ㅋㅋㅋ", "undetermined"),
        ("헐", "undetermined"),
        ("ㅠㅠ", "undetermined"),
        ("진짜?", "undetermined"),
        ("", "undetermined"),
        ("좋아요 ㅋㅋ", "polite"),  # a trailing fragment does not hide the ending before it
        ("알았어. 고마워요", "polite"),  # the last sentence with an ending decides
        ("고마워요. 근데 이건 아니야", "plain"),
    ],
)
def test_speech_level_rules(utterance, expected):
    assert speech_level(utterance) == expected


def test_hand_labelled_set_scores_at_least_95_percent():
    rows = read_labelled()
    assert len(rows) >= 300
    assert {label for label, _ in rows} == {"polite", "plain", "undetermined"}
    misses = [(label, speech_level(text), text) for label, text in rows if speech_level(text) != label]
    accuracy = 1 - len(misses) / len(rows)
    assert accuracy >= 0.95, misses


def test_morphemes_are_kiwi_forms_with_tags():
    assert morphemes("밥 먹었어?") == ["밥/NNG", "먹/VV", "었/EP", "어/EF", "?/SF"]
    assert morphemes("  ") == []


def test_cli_labels_stdin_lines_in_order(repo_root):
    text = "밥 먹었어?\n저도요\nㅋㅋㅋ\n\n교수님께서 오셨어?\n"
    env = dict(os.environ, PYTHONPATH=str(repo_root), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "chathuman_hf.korean", "speech-level"], input=text.encode("utf-8"),
                          capture_output=True, env=env, timeout=120, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode("utf-8").splitlines() == [
        "plain\t밥 먹었어?", "polite\t저도요", "undetermined\tㅋㅋㅋ", "undetermined\t", "plain\t교수님께서 오셨어?",
    ]

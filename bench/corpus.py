"""Synthetic corpus in the AIHub 한국어 대화 요약 JSON layout, recombined from the embedded sample and ChatbotData.

The benchmark needs the seed's scale (190,000 dialogues) without AIHub's files, so it recombines real turns:
every dialogue strings together 1–6 user→assistant exchanges drawn (seeded) from ChatbotData Q/A pairs and from
the exchanges of the embedded sample dialogues, split some turns into several utterances of the same speaker, and
sprinkles the markers the cleaning rules handle (``#@이름#``, ``#@이모티콘#``, ``#@시스템#사진#``, ㅋ runs). The
CSV is read from ``../shared`` next to the checkout and never copied into the repository.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

from bench.common import CHATBOT_CSV, SAMPLE_DIR

DIALOGUES_PER_FILE = 10_000
CORPUS_VERSION = 1


def exchange_pool(csv_path: Path = CHATBOT_CSV, sample_dir: Path = SAMPLE_DIR) -> list[tuple[str, str]]:
    """(user, assistant) exchanges: every ChatbotData row plus every adjacent pair of the embedded sample."""
    pool: list[tuple[str, str]] = []
    if csv_path.exists():
        with csv_path.open(encoding="utf-8-sig", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                q, a = (row.get("Q") or "").strip(), (row.get("A") or "").strip()
                if not q or not a:
                    raise ValueError(f"{csv_path}: row {i + 2} has an empty Q or A; expected both columns filled")
                pool.append((q, a))
    for path in sorted(sample_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            msgs = [m for m in json.loads(line)["messages"] if m["role"] != "system"]
            for u, a in zip(msgs[::2], msgs[1::2], strict=False):
                if u["role"] == "user" and a["role"] == "assistant":
                    pool.append((u["content"], a["content"]))
    if not pool:
        raise FileNotFoundError(f"No dialogue source found: expected {csv_path} or *.jsonl under {sample_dir}")
    return pool


def _split(rng: random.Random, text: str) -> list[str]:
    words = text.split()
    if len(words) >= 3 and rng.random() < 0.25:
        cut = rng.randrange(1, len(words))
        return [" ".join(words[:cut]), " ".join(words[cut:])]
    return [text]


def _decorate(rng: random.Random, text: str) -> str:
    r = rng.random()
    if r < 0.05:
        return "#@이름# " + text
    if r < 0.09:
        return text + " ㅋㅋㅋㅋㅋ"
    if r < 0.11:
        return text + " (웃음)"
    return text


def make_dialogue(rng: random.Random, pool: list[tuple[str, str]], index: int) -> dict:
    """One AIHub-summarisation dialogue record (header + body.dialogue) with 1–6 exchanges."""
    n_pairs = rng.choices([1, 2, 3, 4, 5, 6], weights=[10, 25, 25, 20, 12, 8])[0]
    utterances: list[dict] = []
    turn = 0
    for _ in range(n_pairs):
        q, a = pool[rng.randrange(len(pool))]
        for speaker, text in (("P01", q), ("P02", a)):
            turn += 1
            pieces = _split(rng, _decorate(rng, text))
            if rng.random() < 0.03:
                pieces.append("#@이모티콘#")
            if rng.random() < 0.02:
                pieces.insert(0, "#@시스템#사진#")
            for piece in pieces:
                minute = len(utterances)
                utterances.append(
                    {
                        "utteranceID": f"U{len(utterances) + 1}",
                        "turnID": f"T{turn}",
                        "participantID": speaker,
                        "date": "2020-11-02",
                        "time": f"{21 + minute // 60 % 3:02d}:{minute % 60:02d}:00",
                        "utterance": piece,
                    }
                )
    return {
        "header": {
            "dialogueInfo": {
                "dialogueID": f"bench-{index:07d}",
                "numberOfParticipants": 2,
                "numberOfUtterances": len(utterances),
                "numberOfTurns": turn,
                "topic": "일상",
            },
            "participantsInfo": [
                {"participantID": "P01", "gender": "여성", "age": "20대"},
                {"participantID": "P02", "gender": "남성", "age": "20대"},
            ],
        },
        "body": {"dialogue": utterances, "summary": ""},
    }


def build_corpus(out_dir: Path, n_dialogues: int, *, seed: int = 0) -> list[Path]:
    """Write `n_dialogues` dialogues as AIHub JSON files (10,000 per file) under `out_dir`; reuse a finished build."""
    out_dir = Path(out_dir)
    pool = exchange_pool()
    key = hashlib.sha256(json.dumps([CORPUS_VERSION, n_dialogues, seed, len(pool), pool[:50]]).encode()).hexdigest()
    manifest = out_dir / ".bench_corpus.json"  # not manifest.json: the data loader reads that name
    if manifest.exists():
        meta = json.loads(manifest.read_text())
        files = [out_dir / f for f in meta.get("files", [])]
        if meta.get("key") == key and all(f.exists() for f in files):
            return files
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    files = []
    for start in range(0, n_dialogues, DIALOGUES_PER_FILE):
        stop = min(start + DIALOGUES_PER_FILE, n_dialogues)
        data = [make_dialogue(rng, pool, i) for i in range(start, stop)]
        path = out_dir / f"aihub_summary_{start // DIALOGUES_PER_FILE:03d}.json"
        path.write_text(json.dumps({"numberOfItems": len(data), "data": data}, ensure_ascii=False), encoding="utf-8")
        files.append(path)
    manifest.write_text(json.dumps({"key": key, "n_dialogues": n_dialogues, "files": [f.name for f in files]}))
    return files

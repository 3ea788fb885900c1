"""The loader's speed paths give exactly what the plain rules give: fused clean+turns map, cleaning memo, rule
guards.
"""

from __future__ import annotations

import json
import re

from chathuman_hf.data.clean import CleaningOptions, clean_utterance, collapse_repeats, collapse_whitespace
from chathuman_hf.data.files import expand_paths
from chathuman_hf.data.map_steps import clean_batch, clean_turns_batch, turns_batch
from chathuman_hf.data.names import FakeNamer
from chathuman_hf.data.options import DataArguments
from chathuman_hf.data.reading import PAYLOAD_KEYS, generate_raw

TEXTS = [
    "안녕 ㅋㅋㅋㅋㅋ", "키키키키 웃겨", "그래…… 알겠어", "#@이름#야 뭐해", "#@이름1# 이랑 #@이름1# 봤어",
    "(웃음) 진짜?", "  앞뒤 공백\n줄바꿈\t탭  ", "OK Google!!", "ㅠㅠㅠㅠ", "#@시스템#사진#", "#@이모티콘#",
    "", "   ", "키키", "a\u3000b\x1cc",
]  # fmt: skip


def _raw_batch(tmp_path) -> dict[str, list]:
    dialogue = [
        {"participantID": "P01", "utterance": t, "turnID": f"T{i}", "utteranceID": f"U{i}"}
        for i, t in enumerate(TEXTS)
    ]
    dialogue += [{"participantID": "P02", "utterance": "응 그래", "turnID": "T99", "utteranceID": "U99"}]
    data = [
        {"header": {"dialogueInfo": {"dialogueID": f"d{k}"}}, "body": {"dialogue": dialogue[k % 3 :]}}
        for k in range(6)
    ]
    path = tmp_path / "aihub.json"
    path.write_text(json.dumps({"numberOfItems": len(data), "data": data}, ensure_ascii=False), encoding="utf-8")
    args = DataArguments(data=[str(path)], format="aihub_summary")
    rows = list(generate_raw(expand_paths(args.data), args.parse_options()))
    return {key: [row[key] for row in rows] for key in rows[0]}


def test_fused_clean_turns_equals_the_two_steps(tmp_path):
    batch = _raw_batch(tmp_path)
    args = DataArguments(role_swap=True, max_dialogue_turns=4)
    cleaning, turns = vars(args.cleaning_options()), vars(args.turn_options())
    cleaned = clean_batch(batch, cleaning, 7)
    cleaned.update(source=batch["source"], dialogue_id=batch["dialogue_id"], _file=batch["_file"])
    expected = turns_batch(json.loads(json.dumps(cleaned)), turns)
    fused = clean_turns_batch(batch, cleaning, 7, turns)
    assert fused == expected
    assert sum(1 for m in fused["messages"] if m) >= 6


def test_clean_batch_memo_gives_the_per_utterance_result(tmp_path):
    batch = _raw_batch(tmp_path)
    options = vars(DataArguments().cleaning_options())
    first = clean_batch(batch, options, 0)
    second = clean_batch(batch, options, 0)  # served from the memo for utterances without masks
    assert first == second
    expected_texts = []
    for source, dialogue_id, payload in zip(batch["source"], batch["dialogue_id"], batch["payload"], strict=True):
        texts = json.loads(payload)[PAYLOAD_KEYS.index("texts")]
        namer = FakeNamer(0, f"{source.rsplit('/', 1)[-1]}#{dialogue_id}")
        results = [clean_utterance(t, CleaningOptions(**options), namer) for t in texts]
        expected_texts.append([text for text, reason in results if reason is None])
    assert first["texts"] == expected_texts


def test_rule_guards_match_the_plain_regexes():
    whitespace = re.compile(r"\s+")
    kiki, repeats = re.compile(r"키(?:키)+"), re.compile(r"([ㅋㅎㅠㅜ.])\1{2,}")
    for text in [*TEXTS, "\u00a0x\u2028y\u200bz", "..... 키키키 ㅎㅎㅎㅎ"]:
        assert collapse_whitespace(text) == whitespace.sub(" ", text).strip()
        assert collapse_repeats(text) == repeats.sub(r"\1\1", kiki.sub("ㅋㅋ", text.replace("…", "...")))
    assert collapse_repeats("그래…… 키키키 ㅋㅋㅋㅋ") == "그래.. ㅋㅋ ㅋㅋ"
    assert collapse_whitespace(" a \u3000 b\n") == "a b"

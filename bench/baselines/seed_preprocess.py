"""Seed-style preprocessing: per-dialogue Python loop, ``tokenizer.encode`` per turn, rows appended to a DataFrame.

What the seed did, as described in SEED_NOTES.md: read each AIHub JSON file, walk every dialogue in Python, clean
each utterance with regexes, merge consecutive utterances of one speaker, alternate user/system turns, drop a
trailing user turn, encode each turn separately, cut at 256 tokens, pad every example to 256 and grow a pandas
DataFrame one row at a time. ``plain_loop`` is the same loop with Python lists and no padding/DataFrame, to show
where the time goes.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

PHOTO = "#@시스템#사진#"
NAME = re.compile(r"#@이름\d*#")
MASKS = re.compile(r"#@[^#\s]+#|@URL")
PARENS = re.compile(r"\([^()]*\)")
KIKI = re.compile(r"키(?:키)+")
RUNS = re.compile(r"([ㅋㅎㅠㅜ.])\1{2,}")
OTHER = re.compile(r"[^가-힣ㄱ-ㅎㅏ-ㅣa-zA-Z0-9\s.,?!~]")
SPACES = re.compile(r"\s+")
SURNAMES = ["김", "이", "박", "최", "정", "강", "조", "윤"]
GIVEN = ["민준", "서연", "지호", "하은", "도윤", "수아", "예준", "지우"]

FRAME, USER, ASSISTANT, SYSTEM = 0, 1, 2, 3


def seed_clean(text: str, rng: random.Random) -> str | None:
    """The seed's per-utterance cleaning (our regexes); None drops the utterance."""
    if PHOTO in text:
        return None
    text = NAME.sub(lambda _: rng.choice(SURNAMES) + rng.choice(GIVEN), text)
    text = MASKS.sub(" ", text)
    text = PARENS.sub(" ", text).lower()
    text = RUNS.sub(r"\1\1", KIKI.sub("ㅋㅋ", text))
    text = SPACES.sub(" ", OTHER.sub(" ", text)).strip()
    return text or None


def iter_turns(files: list[Path], rng: random.Random) -> Iterator[list[str]]:
    """Yield each dialogue as alternating turns (user first, ending on the system side)."""
    for path in files:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))["data"]
        for dialogue in data:
            turns: list[str] = []
            speakers: list[str] = []
            for utt in dialogue["body"]["dialogue"]:
                text = seed_clean(utt["utterance"], rng)
                if text is None:
                    continue
                if speakers and speakers[-1] == utt["participantID"]:
                    turns[-1] = turns[-1] + " " + text
                else:
                    turns.append(text)
                    speakers.append(utt["participantID"])
            if len(turns) % 2 == 1:
                turns.pop()
            if turns:
                yield turns


def encode_turns(turns: list[str], tokenizer, bos: int, eos: int, usr: int, sys_: int) -> tuple[list[int], list[int]]:
    """``bos <usr>u<sys>a eos …`` with one ``tokenizer.encode`` call per turn; returns ids and role codes."""
    ids, roles = [bos], [FRAME]
    for i, text in enumerate(turns):
        enc = tokenizer.encode(text, add_special_tokens=False)
        if i % 2 == 0:
            ids += [usr, *enc]
            roles += [FRAME] + [USER] * len(enc)
        else:
            ids += [sys_, *enc, eos]
            roles += [FRAME] + [ASSISTANT] * (len(enc) + 1)
    return ids, roles


def special_ids(tokenizer) -> tuple[int, int, int, int, int]:
    conv = tokenizer.convert_tokens_to_ids
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return bos, tokenizer.eos_token_id, conv("<usr>"), conv("<sys>"), tokenizer.pad_token_id


def seed_style(
    files: list[Path],
    tokenizer,
    *,
    max_length: int = 256,
    limit: int | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
):
    """The seed's way: every example padded to `max_length`, one ``pd.concat`` per row. Returns the DataFrame.

    `limit` / `max_seconds` stop early (the benchmark bounds this loop; its per-row cost grows with the frame).
    """
    import time

    import pandas as pd

    t0 = time.perf_counter()
    rng = random.Random(seed)
    bos, eos, usr, sys_, pad = special_ids(tokenizer)
    df = pd.DataFrame(columns=["input_ids", "attention_mask", "labels"])
    for n, turns in enumerate(iter_turns(files, rng)):
        if (limit is not None and n >= limit) or (max_seconds is not None and time.perf_counter() - t0 > max_seconds):
            break
        ids, _ = encode_turns(turns, tokenizer, bos, eos, usr, sys_)
        ids = ids[:max_length]
        n_pad = max_length - len(ids)
        row = {
            "input_ids": ids + [pad] * n_pad,
            "attention_mask": [1] * len(ids) + [0] * n_pad,
            "labels": ids + [-100] * n_pad,
        }
        df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)  # the seed's DataFrame.append, row by row
    return df


def plain_loop(files: list[Path], tokenizer, *, max_length: int = 256, limit: int | None = None, seed: int = 0):
    """The same per-dialogue loop into Python lists, no padding, no DataFrame; returns an Arrow ``Dataset``."""
    from datasets import Dataset

    rng = random.Random(seed)
    bos, eos, usr, sys_, _ = special_ids(tokenizer)
    all_ids, all_roles = [], []
    for n, turns in enumerate(iter_turns(files, rng)):
        if limit is not None and n >= limit:
            break
        ids, roles = encode_turns(turns, tokenizer, bos, eos, usr, sys_)
        all_ids.append(ids[:max_length])
        all_roles.append(roles[:max_length])
    return Dataset.from_dict({"input_ids": all_ids, "roles": all_roles, "length": [len(x) for x in all_ids]})

"""The PII scrubbing step of the pipeline: a batched ``datasets.map`` over raw records, before cleaning.

Per dialogue: participants' names inside the texts (민준아, 서연님, 김민준이) become the same seeded pseudonyms the
speakers get (``FakeNamer.person``, the ``#@이름#`` machinery), then :func:`pii.scrub_text` replaces personal
numbers and addresses. Counts per type go to a ``_pii`` column that :func:`pii_counts` sums per file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from .names import FakeNamer, has_final_consonant
from .pii import placeholder, scrub_text
from .pii_runs import scrub_runs

SURNAME_CHARS = set(
    "김이박최정강조윤장임한오서신권황안송류유전홍고문양손배백허남심노하곽성차주우구민진나지엄채원천방"
    "공현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예봉경사부가복태목형피두감음"
)
TWO_CHAR_SURNAMES = ("남궁", "황보", "제갈", "선우", "독고", "사공", "서문")
NOT_NAMES = frozenset(
    "엄마 아빠 어머니 아버지 여보 자기 언니 오빠 누나 형님 동생 할머니 할아버지 이모 삼촌 고모 선생님 친구 나 나야 "
    "사장님 팀장님 과장님 부장님 대표님 회사 우리집 가족".split()
)  # display names that are relations or roles, not names: left in the text
ROLE_WORDS = frozenset({"user", "assistant", "system", "human", "bot", "gpt", "usr", "sys", "model", "speaker"})
SAMPLE_PREFIX = "sample_data/"  # sources of the embedded sample (pipeline.expand_paths)
NAME_SUFFIX = "님|씨|아|야|이"
HANGUL_NAME = re.compile(r"[가-힣]{2,5}")
LATIN_NAME = re.compile(r"[A-Za-z]{3,}")


@lru_cache(maxsize=65536)
def name_forms(speaker: str) -> dict[str, bool]:
    """``{form: is_full_name}``: the Hangul words of a display name (김민준 → 김민준 and 민준) and Latin ones.

    Cached: callers must not change the returned dict."""
    forms: dict[str, bool] = {}
    for word in HANGUL_NAME.findall(speaker):
        if word in NOT_NAMES:
            continue
        surname = 2 if word[:2] in TWO_CHAR_SURNAMES and len(word) >= 4 else 1
        if len(word) - surname >= 2 and word[0] in SURNAME_CHARS or surname == 2:
            forms[word] = True
            forms.setdefault(word[surname:], False)
        else:
            forms.setdefault(word, False)
    for word in LATIN_NAME.findall(speaker):
        if word.lower() not in ROLE_WORDS:
            forms.setdefault(word, False)
    return forms


@lru_cache(maxsize=4096)
def _participants(speakers: tuple[str, ...]) -> tuple[re.Pattern[str] | None, dict[str, tuple[str, bool]]]:
    owners: dict[str, tuple[str, bool]] = {}
    for speaker in speakers:
        for form, full in name_forms(speaker).items():
            owners.setdefault(form, (speaker, full))
    if not owners:
        return None, owners
    alternatives = "|".join(re.escape(form) for form in sorted(owners, key=len, reverse=True))
    pattern = re.compile(rf"(?<![가-힣A-Za-z])({alternatives})({NAME_SUFFIX})?(?![A-Za-z])", re.IGNORECASE)
    return pattern, owners


def replace_names(text: str, speakers: list[str], namer: FakeNamer, counts: Counter[str] | None = None) -> str:
    """Participants' names (with 님/씨/아/야/이) in ``text`` → their pseudonyms, the particle fitted to the new
    name.
    """
    pattern, owners = _participants(tuple(dict.fromkeys(speakers)))
    if pattern is None:
        return text
    return _replace(pattern, owners, text, namer, counts)


def _replace(
    pattern: re.Pattern[str], owners: dict[str, tuple[str, bool]], text: str, namer: FakeNamer,
    counts: Counter[str] | None,
) -> str:  # fmt: skip

    def sub(match: re.Match[str]) -> str:
        form, suffix = match.group(1), match.group(2) or ""
        speaker, full = owners.get(form) or owners[next(f for f in owners if f.lower() == form.lower())]
        surname, given = namer.person(speaker)
        new = surname + given if full else given
        if suffix in ("아", "야"):
            suffix = "아" if has_final_consonant(new[-1]) else "야"
        elif suffix == "이":
            suffix = "이" if has_final_consonant(new[-1]) else ""
        if counts is not None:
            counts["name"] += 1
        return new + suffix

    return pattern.sub(sub, text)


def scrub_dialogue(
    speakers: list[str], texts: list[str], namer: FakeNamer, replacement: str = "placeholder"
) -> tuple[list[str], list[str], Counter[str]]:
    """Pseudonymous speakers, scrubbed texts and the counts per type for one dialogue."""
    counts: Counter[str] = Counter()
    replace = namer.fake if replacement == "fake" else placeholder
    distinct = tuple(dict.fromkeys(speakers))
    pattern, owners = _participants(distinct)
    if pattern is None:  # no participant has a name-like display name (AIHub P01, roles)
        texts = [scrub_text(text, replace, counts) for text in texts]
        return speakers, scrub_runs(texts, replace, counts), counts
    real = frozenset(owners)
    for speaker in distinct:
        namer.person(speaker, avoid=real)  # no participant is renamed to another participant's real name
    texts = [scrub_text(_replace(pattern, owners, text, namer, counts), replace, counts) for text in texts]
    texts = scrub_runs(texts, replace, counts)  # what merging consecutive messages would join
    pseudonyms = ["".join(namer.person(s)) if name_forms(s) else s for s in speakers]
    return pseudonyms, texts, counts


SPEAKER_LIST = re.compile(r"\(speakers: \[[^\]]*\]\)")
QUOTED_ASSISTANT = re.compile(r"assistant '[^']*'")


def withhold_names(note: str) -> str:
    """A loader warning without participants' names (they would reach the log, report.json and pushed files)."""
    note = SPEAKER_LIST.sub("(speakers' names withheld while PII scrubbing is on)", note)
    return QUOTED_ASSISTANT.sub("assistant (name withheld)", note)


def scrub_batch(
    batch: dict[str, list[Any]], replacement: str, name_seed: int, sources: list[str] | None = None
) -> dict[str, list[Any]]:
    """Batched ``datasets.map`` over raw records (``source``/``dialogue_id``/``payload``): scrub the payloads of
    ``sources`` (None = all); ``_pii`` holds each row's counts as JSON ("" when none)."""
    wanted = None if sources is None else set(sources)
    payloads, found = [], []
    names: dict[str, str] = {}
    for source, dialogue_id, payload in zip(batch["source"], batch["dialogue_id"], batch["payload"], strict=True):
        speakers, roles, texts, drops, notes = json.loads(payload)
        if not texts or (wanted is not None and source not in wanted):
            payloads.append(payload)
            found.append("")
            continue
        name = names.get(source)
        if name is None:
            name = names[source] = Path(source).name
        # the same key as the cleaning step's namer, so #@이름# masks and participants share one machinery
        namer = FakeNamer(name_seed, f"{name}#{dialogue_id}")
        new_speakers, new_texts, counts = scrub_dialogue(speakers, texts, namer, replacement)
        new_notes = [withhold_names(note) for note in notes]
        if counts or new_speakers != speakers or new_notes != notes:  # most rows: nothing to re-encode
            payload = json.dumps([new_speakers, roles, new_texts, drops, new_notes], ensure_ascii=False)
        payloads.append(payload)
        found.append(json.dumps(counts, sort_keys=True) if counts else "")
    return {"payload": payloads, "_pii": found}


def pii_counts(dataset: Any) -> dict[str, dict[str, int]]:
    """``{source: {type: count}}`` summed from the ``_pii`` column of a scrubbed raw dataset."""
    table = dataset.select_columns(["source", "_pii"]).with_format("arrow")[:]
    totals: dict[str, Counter[str]] = {}
    for row in table.filter(pc.not_equal(table["_pii"], "")).to_pylist():
        totals.setdefault(row["source"], Counter()).update(json.loads(row["_pii"]))
    return {source: dict(sorted(counts.items())) for source, counts in sorted(totals.items())}


def scrubbed_sources(dataset: Any, setting: str) -> list[str] | None:
    """Which sources to scrub for ``--scrub_pii`` ``on`` (None = all), ``off`` ([]) or ``auto`` (KakaoTalk files).

    ``auto`` leaves the embedded sample alone: its Kakao file is fiction we wrote, with no personal data.
    """
    if setting != "auto":
        return None if setting == "on" else []
    table = dataset.select_columns(["source", "_file"]).with_format("arrow")[:]
    rows = table.filter(pc.not_equal(table["_file"], "")).to_pylist()
    kakao = {row["source"] for row in rows if json.loads(row["_file"]).get("format") == "kakao"}
    return sorted(source for source in kakao if not source.startswith(SAMPLE_PREFIX))


def scrub_raw(raw: Any, args: Any, report: Any, num_proc: int | None = None) -> Any:
    """The pipeline's scrubbing step on the raw records (``args``: DataArguments); counts go to ``report.pii``."""
    setting = args.scrub_setting()
    sources = scrubbed_sources(raw, setting)
    report.pii = {"setting": setting, "replacement": args.pii_replacement, "scrubbed_files": 0, "total": {}}
    if sources == []:
        return raw
    scrubbed = raw.map(
        scrub_batch,
        batched=True,
        fn_kwargs={"replacement": args.pii_replacement, "name_seed": args.name_seed, "sources": sources},
        num_proc=num_proc,
        desc="scrub personal data",
    )
    files = pii_counts(scrubbed)
    total: Counter[str] = Counter()
    for counts in files.values():
        total.update(counts)
    scrubbed_files = len(sources) if sources is not None else len({s for s in raw.unique("source") if s})
    report.pii.update(scrubbed_files=scrubbed_files, total=dict(sorted(total.items())), files=files)
    return scrubbed


def privacy_line(pii: dict[str, Any]) -> str:
    """One sentence for the model card: what was scrubbed from the training data (from ``report["pii"]``)."""
    if not pii.get("scrubbed_files"):
        why = "--no_scrub_pii" if pii.get("setting") == "off" else (
            "the default scrubs KakaoTalk exports only, and the embedded sample is fiction; --scrub_pii scrubs all")
        return f"Personal data: not scrubbed ({why})."
    found = ", ".join(f"{kind} {n}" for kind, n in pii.get("total", {}).items()) or "none found"
    how = (
        "plausible fakes of the same shape" if pii.get("replacement") == "fake" else "placeholders such as [전화번호]"
    )
    return (f"Personal data scrubbed before training in {pii['scrubbed_files']} file(s), replaced by {how}: "
            f"{found}. Checked: resident and foreigner registration numbers, phone numbers, e-mail addresses, bank "
            "accounts, card numbers, passports, IPv4 addresses, URLs with credentials or queries, and participants' "
            "names (seeded pseudonyms).")  # fmt: skip

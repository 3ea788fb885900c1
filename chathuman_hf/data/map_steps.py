"""The ``datasets.map`` steps of the loading pipeline: clean every utterance (names replaced, drops counted),
then build the messages (role swap, max-turn splits) with one ``_record`` outcome per raw record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets import Features, List, Value

from .clean import CleaningOptions, clean_reply, clean_utterance
from .names import FakeNamer
from .reading import PAYLOAD_KEYS
from .records import is_record, record_outcome
from .tool_turns import TOOL_ROLE, carries_tools
from .turns import TurnOptions, build_messages, role_swapped, split_max_turns

STRINGS = List(Value("string"))
MESSAGES = List({"role": Value("string"), "content": Value("string")})
TURN_FEATURES = Features(
    {
        "source": Value("string"),
        "dialogue_id": Value("string"),
        "messages": MESSAGES,
        "_kept": Value("bool"),
        "_drops": STRINGS,
        "_notes": STRINGS,
        "_file": Value("string"),
        "_record": Value("string"),
    }
)

CLEAN_MEMO_SIZE = 200_000  # cleaned utterances remembered per process (repeated short replies are common)
_CLEAN_MEMO: dict[str, dict[str, tuple[str, str | None]]] = {}


def clean_batch(batch: dict[str, list[Any]], options: dict[str, Any], name_seed: int) -> dict[str, list[Any]]:
    """Unpack and clean every utterance of a batch of raw records; dropped utterances are counted in ``_drops``."""
    cleaning = CleaningOptions(**options)
    # an utterance without "@" never reaches the namer, so its result depends on the text and options only
    memo = _CLEAN_MEMO.setdefault(json.dumps(options, sort_keys=True), {})
    if len(memo) > CLEAN_MEMO_SIZE:
        memo.clear()
    names: dict[str, str] = {}
    out: dict[str, list[Any]] = {key: [] for key in PAYLOAD_KEYS}
    for source, dialogue_id, payload in zip(batch["source"], batch["dialogue_id"], batch["payload"], strict=True):
        speakers, roles, texts, drops, notes = json.loads(payload)
        name = names.get(source)
        if name is None:
            name = names[source] = Path(source).name
        namer = FakeNamer(name_seed, f"{name}#{dialogue_id}")
        kept: tuple[list[str], list[str], list[str]] = ([], [], [])
        for speaker, role, text in zip(speakers, roles, texts, strict=True):
            if carries_tools(role, text):  # tool definitions, calls and results are data: kept verbatim
                cleaned, reason = text, None
            elif role == "assistant" and "</think>" in text:  # a leading think block is kept (data/reasoning.py)
                cleaned, reason = clean_reply(text, cleaning, namer)
            elif "@" in text:
                cleaned, reason = clean_utterance(text, cleaning, namer)
            else:
                hit = memo.get(text)
                if hit is None:
                    hit = memo[text] = clean_utterance(text, cleaning)
                cleaned, reason = hit
            if reason:
                drops.append(reason)
                continue
            kept[0].append(speaker)
            kept[1].append(role)
            kept[2].append(cleaned)
        for key, value in zip(PAYLOAD_KEYS, (*kept, drops, notes), strict=True):
            out[key].append(value)
    return out


def turns_batch(batch: dict[str, list[Any]], options: dict[str, Any]) -> dict[str, list[Any]]:
    """Build messages for a batch; role swap and max-turn splitting may add rows."""
    turn_options = TurnOptions(**options)
    out: dict[str, list[Any]] = {name: [] for name in TURN_FEATURES}
    # read each column once: indexing a datasets LazyBatch per row is a dict lookup + format call each time
    sources, dialogue_ids, all_drops = batch["source"], batch["dialogue_id"], batch["_drops"]
    all_speakers, all_roles, all_texts = batch["speakers"], batch["roles"], batch["texts"]
    all_notes, all_files = batch["_notes"], batch["_file"]
    for i in range(len(sources)):
        source, dialogue_id = sources[i], dialogue_ids[i]
        drops = list(all_drops[i])
        messages: list[dict[str, str]] = []
        if all_texts[i] or dialogue_id:  # a record whose every utterance was dropped still counts as lost
            messages, turn_drops = build_messages(all_speakers[i], all_roles[i], all_texts[i], turn_options)
            drops.extend(turn_drops)
        counted = is_record({"dialogue_id": dialogue_id, "_notes": all_notes[i]})
        variants = [(dialogue_id, messages)] if messages else [(dialogue_id, [])]
        if messages and turn_options.role_swap and TOOL_ROLE not in all_roles[i] and (
            len({s for s, r in zip(all_speakers[i], all_roles[i], strict=True) if r != "system"}) <= 2
        ):
            swapped = role_swapped(messages)
            if swapped:
                variants.append((f"{dialogue_id}#swap", swapped))
        first, start = True, len(out["source"])
        for variant_id, variant in variants:
            parts = split_max_turns(variant, turn_options.max_dialogue_turns) if variant else [[]]
            for k, part in enumerate(parts):
                out["source"].append(source)
                out["dialogue_id"].append(variant_id if len(parts) == 1 else f"{variant_id}#{k}")
                out["messages"].append(part)
                out["_kept"].append(bool(part))
                out["_drops"].append(drops if first else [])
                out["_notes"].append(all_notes[i] if first else [])
                out["_file"].append(all_files[i] if first else "")
                out["_record"].append("")
                first = False
        out["_record"][start] = record_outcome(counted, dialogue_id, drops, any(out["_kept"][start:]))
    return out


def clean_turns_batch(
    batch: dict[str, list[Any]], cleaning: dict[str, Any], name_seed: int, turn_options: dict[str, Any]
) -> dict[str, list[Any]]:
    """``clean_batch`` then ``turns_batch`` on one batch of raw records (what ``load_dialogues`` maps)."""
    cleaned = clean_batch(batch, cleaning, name_seed)
    cleaned.update(source=batch["source"], dialogue_id=batch["dialogue_id"], _file=batch["_file"])
    return turns_batch(cleaned, turn_options)


def kept_mask(kept: list[bool]) -> list[bool]:
    """Batched filter predicate over the ``_kept`` column: a normalized dialogue survived."""
    return kept

"""Where a model and its data come from: the base model's license and each data source's provenance."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

# Licenses of base models we know; anything else is read from the base model's own card, or marked "other".
KNOWN_LICENSES = {"skt/kogpt2-base-v2": "cc-by-nc-sa-4.0"}
SCRATCH_LICENSE = "apache-2.0"


def base_model_license(name_or_path: str | None) -> str:
    """License inherited from the base model: known Hub models, a local model's card, else ``other``."""
    if not name_or_path:
        return SCRATCH_LICENSE
    if name_or_path in KNOWN_LICENSES:
        return KNOWN_LICENSES[name_or_path]
    card = Path(name_or_path) / "README.md"
    if card.is_file():
        match = re.match(r"^---\n(.*?)\n---", card.read_text(encoding="utf-8"), re.S)
        if match:
            meta = yaml.safe_load(match.group(1)) or {}
            if meta.get("license"):
                return str(meta["license"])
    return "other"


def source_provenance(source: str, fmt: str | None) -> str:
    """Where a data source comes from, in one line."""
    if source.startswith("sample_data"):
        return "embedded sample written by the chathuman_hf authors (Apache-2.0)"
    if "chatbotdata" in source.lower():
        return "songys/Chatbot_data (MIT)"
    if fmt and fmt.startswith("aihub"):
        return "AIHub (aihub.or.kr); AIHub's terms of use apply, not redistributable"
    if fmt == "kakao":
        return "KakaoTalk export; make sure every participant agreed"
    return "user-provided file"


def grouped_sources(sources: dict[str, int], files: dict[str, dict[str, str]]) -> list[tuple[str, str, int, str]]:
    """(source or folder, format, dialogues, provenance); many files of one folder are summed as ``folder/*``."""
    groups: dict[str, dict[str, Any]] = {}
    by_parent: dict[str, int] = {}
    for src in sources:
        by_parent[str(Path(src).parent)] = by_parent.get(str(Path(src).parent), 0) + 1
    for src, n in sorted(sources.items()):
        parent = str(Path(src).parent)
        fmt = files.get(src, {}).get("format", "")
        key = f"{parent}/*" if by_parent[parent] > 3 and parent not in (".", "sample_data") else src
        entry = groups.setdefault(key, {"format": fmt, "n": 0, "src": src})
        entry["n"] += n
    return [(k, v["format"], v["n"], source_provenance(v["src"], v["format"])) for k, v in groups.items()]

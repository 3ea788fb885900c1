"""Shared pytest fixtures: paths to the repo and the shared data, and a tiny saved chat model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CHATBOT_CSV = SHARED / "data" / "ChatbotData.csv"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def chatbot_csv() -> Path:
    if not CHATBOT_CSV.exists():
        pytest.skip(f"{CHATBOT_CSV} is absent: the real-data tests need ../shared/data beside the checkout")
    return CHATBOT_CSV


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny GPT-2 + locally trained tokenizer saved as a chat model directory (built once per session)."""
    from tests.helpers.tiny_models import make_tiny_model_dir

    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny_model"))

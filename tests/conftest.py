"""Shared pytest fixtures: paths to the repo, the shared data and tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

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

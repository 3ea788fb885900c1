"""The revision the feedback log records for a served model directory (``models/revision.py``)."""

from __future__ import annotations

import os
import re

from chathuman_hf.models.revision import model_revision

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_a_hub_snapshot_is_its_commit(tmp_path):
    snapshot = tmp_path / "models--skt--kogpt2-base-v2" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    assert model_revision(snapshot) == COMMIT
    (tmp_path / "snapshots" / "main").mkdir(parents=True)
    assert model_revision(tmp_path / "snapshots" / "main") != "main"  # a branch name is not a commit


def test_a_saved_directory_is_a_fingerprint_that_changes_when_a_file_is_saved_again(tmp_path):
    model = tmp_path / "final"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "gpt2"}')
    weights = model / "model.safetensors"
    weights.write_bytes(b"\0" * 64)
    os.utime(weights, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    first = model_revision(model)
    assert re.fullmatch(r"files:[0-9a-f]{16}", first) and model_revision(str(model)) == first
    (model / "README.md").write_text("# card, edited after upload")
    assert model_revision(model) == first  # the card is not the model
    weights.write_bytes(b"\1" * 64)  # same name and size, saved again
    assert model_revision(model) != first

"""Which saved model answered: a short, cheap revision string for a model directory (written in the feedback log).

A directory in the Hugging Face cache (``.../snapshots/<commit>``) is that Hub commit. Any other directory is
``files:<16 hex>``: a SHA-256 over the names, sizes and modification times (ns) of the files at its top (the model
card, ``*.md``, left out). It reads no weights, so it costs nothing for a 10 GB model; saving again (training, a
merge) always gives a new revision, and so does copying the directory without keeping times (``cp -p`` keeps them).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

HUB_COMMIT = re.compile(r"[0-9a-f]{40}")


def model_revision(model_dir: str | Path) -> str:
    """The Hub commit of a cached snapshot, else ``files:`` and a fingerprint of the directory's files."""
    path = Path(model_dir).absolute()
    if path.parent.name == "snapshots" and HUB_COMMIT.fullmatch(path.name):
        return path.name
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file() and p.suffix != ".md"):
        stat = file.stat()  # follows links: the Hub cache's blobs, a model linked into place
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return f"files:{digest.hexdigest()[:16]}"

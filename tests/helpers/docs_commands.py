"""The shell commands of README.md and docs/*.md: every line of a ```bash block is one command (a trailing ``\\``
continues it; whole-line ``#`` comments are skipped). Output and third-party commands go in ```text/```console blocks.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class DocCommand:
    doc: str  # path relative to the repository, e.g. "docs/serving.md"
    line: int  # 1-based line of the command's first line
    text: str  # the command as written (continuations joined), for bash -c
    argv: tuple[str, ...]  # shlex tokens without a trailing comment

    @property
    def key(self) -> str:
        """The command's tokens joined by single spaces: what the registry in tests/test_docs.py is keyed by."""
        return " ".join(self.argv)


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def commands_in(path: Path) -> list[DocCommand]:
    """Every command of ``path``'s ```bash blocks, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for block in BASH_BLOCK.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        lines = block.group(1).splitlines()
        i = 0
        while i < len(lines):
            start, parts = i, [lines[i]]
            while parts[-1].rstrip().endswith("\\") and i + 1 < len(lines):
                parts[-1] = parts[-1].rstrip()[:-1]
                i += 1
                parts.append(lines[i])
            i += 1
            joined = " ".join(p.strip() for p in parts).strip()
            if not joined or joined.startswith("#"):
                continue
            argv = tuple(shlex.split(joined, comments=True))
            found.append(DocCommand(str(path.relative_to(REPO)), first + start, joined, argv))
    return found


def all_commands() -> list[DocCommand]:
    return [command for path in doc_files() for command in commands_in(path)]


def docs_command(doc: str, prefix: str) -> list[str]:
    """The argv of the one command in ``doc`` (relative path) whose key starts with ``prefix``: for a test that runs
    the documented command itself, so the docs cannot drift from what is tested."""
    matches = [c for c in commands_in(REPO / doc) if c.key.startswith(prefix)]
    assert len(matches) == 1, f"{doc}: expected one command starting with {prefix!r}, found {len(matches)}"
    return list(matches[0].argv)

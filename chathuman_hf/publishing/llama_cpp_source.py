"""Where llama.cpp's converter comes from: the ``llama-cpp-python`` source package, which ships llama.cpp (and so
``convert_hf_to_gguf.py``, its ``conversion`` package and ``gguf-py``) together with the runtime.

The converter is not an importable package and is not installed by ``pip install llama-cpp-python`` (the wheel keeps
only the runtime), so it is unpacked once into a cache folder from the source package of the same version:

    python -m chathuman_hf.publishing.llama_cpp_source   # pip download (online, once), unpack ~3 MB of Python

After that the GGUF export works offline. ``LLAMA_CPP_DIR`` (or ``--llama_cpp_dir``) may instead name a llama.cpp
checkout or an unpacked source package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DEFAULT_VERSION = "0.3.36"  # the llama-cpp-python release the export is tested with
CONVERTER = "convert_hf_to_gguf.py"
_KEEP = (CONVERTER, "conversion/", "gguf-py/gguf/", "LICENSE")


class ConverterNotFoundError(ValueError):
    """No llama.cpp converter could be found or fetched (one-line message with the fix)."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chathuman_hf" / "llama.cpp"


def runtime_version() -> str:
    """The installed llama-cpp-python's version (converter and runtime from one release), else the tested one."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama_cpp_python")
    except PackageNotFoundError:
        return DEFAULT_VERSION


def _tree(path: Path) -> Path | None:
    for candidate in (path, path / "vendor" / "llama.cpp"):
        if (candidate / CONVERTER).is_file() and (candidate / "gguf-py").is_dir():
            return candidate
    return None


def unpack_sdist(sdist: Path, dest: Path) -> Path:
    """Unpack the converter (script, ``conversion/``, ``gguf-py``) from a llama-cpp-python sdist into ``dest``."""
    with tarfile.open(sdist) as tar:
        members = []
        for m in tar.getmembers():
            parts = m.name.split("/", 1)
            inner = parts[1] if len(parts) == 2 else ""
            if inner.startswith("vendor/llama.cpp/") and inner[len("vendor/llama.cpp/"):].startswith(_KEEP):
                m.name = inner[len("vendor/llama.cpp/"):]
                members.append(m)
        if not members:
            raise ConverterNotFoundError(f"{sdist} holds no vendor/llama.cpp/{CONVERTER}: not a llama-cpp-python "
                                         "source package.")
        dest.mkdir(parents=True, exist_ok=True)
        tar.extractall(dest, members=members, filter="data")
    return dest


def fetch_converter(version: str | None = None) -> Path:
    """Download llama-cpp-python's source package with pip (no build) and unpack its converter into the cache."""
    version = version or runtime_version()
    dest = cache_root() / version
    if _tree(dest):
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", tmp,
               f"llama-cpp-python=={version}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        sdists = sorted(Path(tmp).glob("*.tar.gz"))
        if done.returncode != 0 or not sdists:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ConverterNotFoundError(
                f"could not download llama-cpp-python=={version}'s source package ({last}); run "
                "`python -m chathuman_hf.publishing.llama_cpp_source` once online, or set LLAMA_CPP_DIR to a "
                "llama.cpp checkout.")
        return unpack_sdist(sdists[0], dest)


def find_converter(explicit: str | Path | None = None, *, download: bool = True) -> Path:
    """The folder holding ``convert_hf_to_gguf.py``: ``explicit``, ``$LLAMA_CPP_DIR``, the cache, else a download."""
    for given in (explicit, os.environ.get("LLAMA_CPP_DIR")):
        if given:
            tree = _tree(Path(given))
            if tree is None:
                raise ConverterNotFoundError(f"{given} has no {CONVERTER} with gguf-py beside it: point it at a "
                                             "llama.cpp checkout or an unpacked llama-cpp-python source package.")
            return tree
    cached = cache_root() / runtime_version()
    if _tree(cached):
        return cached
    if not download:
        raise ConverterNotFoundError(f"llama.cpp's converter is not in {cached}: run "
                                     "`python -m chathuman_hf.publishing.llama_cpp_source` once online.")
    return fetch_converter()


if __name__ == "__main__":
    print(fetch_converter(sys.argv[1] if len(sys.argv) > 1 else None))

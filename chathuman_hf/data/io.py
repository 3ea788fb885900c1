"""Reading text files in the encodings Korean data comes in (UTF-8, UTF-8 with BOM, CP949)."""

from __future__ import annotations

from pathlib import Path

from .errors import DataFormatError

AUTO_ENCODINGS = ("utf-8", "cp949")


def decode_bytes(raw: bytes, encoding: str | None = None, *, file: str = "") -> tuple[str, str]:
    """Decode ``raw``; returns ``(text, encoding_used)`` where the encoding is ``utf-8-sig``, ``utf-8`` or ``cp949``.

    With ``encoding=None`` a UTF-8 BOM means ``utf-8-sig``, then UTF-8 and CP949 are tried in turn.
    """
    if encoding:
        try:
            return raw.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as err:
            raise DataFormatError(
                f"cannot decode as {encoding} ({err}); try --encoding auto", file=file, reason="undecodable_file"
            ) from err
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return raw[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as err:
            raise DataFormatError(
                f"starts with a UTF-8 BOM but is not UTF-8 ({err})", file=file, reason="undecodable_file"
            ) from err
    errors = []
    for candidate in AUTO_ENCODINGS:
        try:
            return raw.decode(candidate), candidate
        except UnicodeDecodeError as err:
            errors.append(f"{candidate}: byte {err.start}")
    raise DataFormatError(
        f"undecodable bytes (expected UTF-8, UTF-8 with BOM or CP949; failed at {', '.join(errors)})",
        file=file,
        reason="undecodable_file",
    )


def read_text(path: str | Path, encoding: str | None = None) -> tuple[str, str]:
    """Read a file as text; returns ``(text, encoding_used)``. ``encoding`` None/"auto" detects it."""
    if encoding == "auto":
        encoding = None
    return decode_bytes(Path(path).read_bytes(), encoding, file=str(path))

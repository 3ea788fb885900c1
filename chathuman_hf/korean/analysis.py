"""Korean text analysis with Kiwi: speech level (존댓말/반말) and morphemes.

    printf '밥 먹었어?\\n밥 드셨어요?\\nㅋㅋㅋ\\n' | python -m chathuman_hf.korean speech-level

prints ``LABEL<TAB>utterance`` per input line, in order: ``plain``, ``polite`` or ``undetermined``.

The level comes from the sentence-final ending (Kiwi tag ``EF``) of the last sentence that has one; a sentence
ending on a connective (``EC``: 했는데, 배고파서) counts as its ending too. ``요`` attached as a particle (저도요,
그래서요, 했는데요) makes it polite; subject honorifics alone (께서, -시-) do not (교수님께서 오셨어? is plain).
An utterance with no ending at all is judged by a known answer word (네/아니요 polite, 응/아니 plain), otherwise it
is ``undetermined`` (ㅋㅋㅋ, 헐, ㅠㅠ, 진짜?). Needs ``kiwipiepy`` (``pip install -e ".[korean]"``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

POLITE, PLAIN, UNDETERMINED = "polite", "plain", "undetermined"
# Endings (EF forms) whose last syllables mark 해요체/하십시오체; everything else final is 반말/해라체.
POLITE_ENDING_SUFFIXES = ("요", "죠", "니다", "니까", "시오", "시다", "소서")
# Answer words that carry a level on their own when nothing else in the utterance has an ending.
POLITE_WORDS = frozenset({"네", "넵", "넹", "예", "옙", "아니요", "아뇨", "아니에요"})
PLAIN_WORDS = frozenset(
    {"응", "응응", "웅", "엉", "어", "ㅇㅇ", "ㅇㅋ", "아니", "안녕", "그래", "그치", "그렇지", "오키", "콜"}
)
# The system message that asks for a level (``--speech_level_control`` in training, ``--speech_level`` in chat).
LEVEL_INSTRUCTIONS = {PLAIN: "반말로 대답해.", POLITE: "존댓말로 대답해."}
MIRROR = "mirror"  # chat time: answer at the level of the user's last message
SPEECH_LEVEL_CHOICES = ("none", PLAIN, POLITE, MIRROR)
# Kiwi tags that never end a sentence: punctuation, symbols, emoticons, foreign/hanja/numbers
_SKIP_TAGS = ("SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW", "SWK", "SB", "SL", "SH", "SN", "W_")


@lru_cache(maxsize=1)
def kiwi() -> Any:
    """The one Kiwi analyser of this process (loading its model takes seconds, so it is loaded once, lazily)."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as err:  # optional dependency
        raise ImportError('Korean analysis needs kiwipiepy: pip install -e ".[korean]"') from err
    with warnings.catch_warnings():  # kiwipiepy warns that num_workers=0 (no thread pool) changed meaning in 0.21
        warnings.simplefilter("ignore", DeprecationWarning)
        return Kiwi(num_workers=0)


def _sentences(tokens: Iterable[Any]) -> list[list[Any]]:
    groups: dict[int, list[Any]] = {}
    for tok in tokens:
        groups.setdefault(tok.sent_position, []).append(tok)
    return [groups[k] for k in sorted(groups)]


def ending_index(words: list[Any]) -> int | None:
    """Index of the final ending among a sentence's ``words`` (tokens without punctuation), None when none."""
    for i in range(len(words) - 1, -1, -1):
        tag, last = words[i].tag, i == len(words) - 1
        if tag == "EF" or (tag == "EC" and last) or (words[i].form == "요" and tag in ("JX", "EF")):
            return i
        if words[i].form == "요" and tag == "MM" and last and i > 0 and words[i - 1].tag == "EC":
            return i  # Kiwi reads the 요 of 하면요 as a determiner (MM)
    return None


def _sentence_level(tokens: list[Any]) -> str | None:
    """The level of one sentence from its final ending, or None when it has none."""
    words = [t for t in tokens if not t.tag.startswith(_SKIP_TAGS)]
    ending = ending_index(words)
    if ending is None:
        return None
    if any(t.form == "요" and t.tag in ("JX", "EF", "MM") for t in words[ending:]):
        return POLITE
    form = words[ending].form
    if form in ("니까", "으니까"):
        return PLAIN  # 하니까 is 반말 though 니까 also ends 합니까 (ᆸ니까/습니까)
    return POLITE if form.endswith(POLITE_ENDING_SUFFIXES) else PLAIN


def _word_level(text: str) -> str:
    word = "".join(ch for ch in text if ch.isalnum() or "\u3131" <= ch <= "\u318e")
    if word in POLITE_WORDS:
        return POLITE
    if word in PLAIN_WORDS:
        return PLAIN
    return UNDETERMINED


def speech_level_of_tokens(text: str, tokens: Iterable[Any]) -> str:
    """Speech level of ``text`` from its Kiwi tokens (see the module docstring for the rules)."""
    sentences = _sentences(tokens)
    for sentence in reversed(sentences):
        level = _sentence_level(sentence)
        if level is not None:
            return level
    for sentence in reversed(sentences):  # no ending anywhere: a known answer word (네, 응) decides
        start, end = sentence[0].start, sentence[-1].end
        level = _word_level(text[start:end])
        if level != UNDETERMINED:
            return level
    return _word_level(text)


def speech_level(text: str) -> str:
    """``polite``, ``plain`` or ``undetermined`` for one utterance."""
    if not text.strip():
        return UNDETERMINED
    return speech_level_of_tokens(text, kiwi().tokenize(text))


def with_level_instruction(messages: list[dict[str, str]], level: str | None) -> list[dict[str, str]]:
    """``messages`` with the instruction for ``level`` as the leading system message (appended on its own line to
    a system message already there); ``None``/``undetermined``: unchanged. The one place the instruction enters."""
    if level not in LEVEL_INSTRUCTIONS:
        return list(messages)
    instruction = LEVEL_INSTRUCTIONS[level]
    if messages and messages[0]["role"] == "system":
        head = messages[0]["content"]
        return [{"role": "system", "content": f"{head}\n{instruction}" if head else instruction}, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def without_level_instruction(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """``messages`` with any level instruction taken out of the leading system message (dropped when left empty)."""
    if not messages or messages[0]["role"] != "system":
        return list(messages)
    lines = [line for line in messages[0]["content"].split("\n") if line not in LEVEL_INSTRUCTIONS.values()]
    head = [{"role": "system", "content": "\n".join(lines)}] if any(line.strip() for line in lines) else []
    return [*head, *messages[1:]]


def parse_speech_level(value: str | None) -> str | None:
    """``plain``/``polite``/``mirror`` from a chat option or request field; ``None``/``none``: no instruction."""
    key = (value or "none").strip().lower()
    if key not in SPEECH_LEVEL_CHOICES:
        raise ValueError(f"speech_level must be one of {', '.join(SPEECH_LEVEL_CHOICES)}, got {value!r}")
    return None if key == "none" else key


def requested_level(messages: list[dict[str, str]], choice: str | None) -> str | None:
    """The level a reply to ``messages`` is asked for: ``choice``, or with ``mirror`` the level of the last user
    message that has one (``None`` when none has)."""
    if choice != MIRROR:
        return choice
    for message in reversed(messages):
        if message["role"] == "user" and (level := speech_level(message["content"])) != UNDETERMINED:
            return level
    return None


def morphemes(text: str) -> list[str]:
    """Kiwi morphemes of ``text`` as ``form/TAG`` strings (a tokenizer-independent unit for n-gram metrics)."""
    if not text.strip():
        return []
    return [f"{t.form}/{t.tag}" for t in kiwi().tokenize(text)]


def _speech_level_cli(lines: Iterable[str], out: Any) -> int:
    count = 0
    for line in lines:
        text = line.rstrip("\r\n")
        out.write(f"{speech_level(text)}\t{text}\n")
        count += 1
    out.flush()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chathuman_hf.korean", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("speech-level", help="Read one utterance per line on stdin; print LABEL<TAB>utterance.")
    parser.parse_args(argv)
    try:
        kiwi()
    except ImportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    stdin = sys.stdin.reconfigure(encoding="utf-8", errors="replace") or sys.stdin  # type: ignore[union-attr]
    sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    _speech_level_cli(stdin, sys.stdout)
    return 0


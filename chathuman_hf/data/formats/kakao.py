"""KakaoTalk "대화 내보내기" exports: PC, Android and iOS text layouts and the ``Date,User,Message`` CSV export.

Messages are split into dialogues at long silences.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import DataFormatError
from . import RawRecord, issue, note, record
from .tables import csv_reader

TIME = r"(?P<ampm>오전|오후) (?P<hour>\d{1,2}):(?P<minute>\d{2})"
PC_MESSAGE = re.compile(rf"^\[(?P<name>[^\]]+)\] \[{TIME}\] ?(?P<text>.*)$")
PC_DATE = re.compile(r"^-+ (?P<year>\d{4})년 (?P<month>\d{1,2})월 (?P<day>\d{1,2})일 \S+ -+$")
ANDROID_MESSAGE = re.compile(
    rf"^(?P<year>\d{{4}})년 (?P<month>\d{{1,2}})월 (?P<day>\d{{1,2}})일 {TIME}, (?P<rest>.*)$"
)
IOS_MESSAGE = re.compile(rf"^(?P<year>\d{{4}})\. (?P<month>\d{{1,2}})\. (?P<day>\d{{1,2}})\. {TIME}, (?P<rest>.*)$")
MOBILE_DATE = re.compile(r"^(\d{4}년 \d{1,2}월 \d{1,2}일|\d{4}\. \d{1,2}\. \d{1,2}\.) ?\S*요일$")
HEADER = re.compile(r"(님과 카카오톡 대화|카카오톡 대화)$|^저장한 날짜 ?:")
SYSTEM_LINE = re.compile(
    r"님이 (들어왔습니다|나갔습니다|퇴장했습니다)\.?$|님을 (초대했습니다|초대하였습니다|내보냈습니다)\.?$"
    r"|^채팅방 관리자가|^(.+)님이 (.+)님을 초대"
)
SYSTEM_TEXT = re.compile(
    r"^(사진|사진 \d+장|이모티콘|동영상|음성메시지|보이스톡.*|페이스톡.*"
    r"|삭제된 메시지입니다\.?|메시지가 삭제되었습니다\.?"
    r"|파일: .*|샵검색: .*|지도: .*|연락처: .*)$"
)
KAKAO_LINE_PATTERNS = (PC_MESSAGE, ANDROID_MESSAGE, IOS_MESSAGE)
CSV_COLUMNS = ("date", "user", "message")


def _clock(match: re.Match[str]) -> tuple[int, int]:
    """24-hour ``(hour, minute)`` of a ``오전/오후 H:MM`` match; ValueError for an impossible time."""
    hour, minute = int(match["hour"]), int(match["minute"])
    if hour > 12 or minute > 59:
        raise ValueError(f"impossible KakaoTalk time '{match['ampm']} {match['hour']}:{match['minute']}' "
                         "(expected 오전/오후 0-12:00-59)")  # fmt: skip
    return hour % 12 + (12 if match["ampm"] == "오후" else 0), minute


def _date(match: re.Match[str]) -> datetime:
    try:
        return datetime(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError as err:
        raise ValueError(f"impossible KakaoTalk date {match['year']}-{match['month']}-{match['day']} ({err})") from err


def parse_messages(text: str, bad: list[tuple[int, str]] | None = None) -> tuple[list[tuple[datetime, str, str]], int]:
    """``[(time, name, text)]`` of every message (multi-line ones joined) and the number of system lines dropped.

    Lines with an impossible date or time are left out and listed in ``bad`` as ``(line number, why)``.
    """
    messages: list[list[Any]] = []
    system = 0
    day = datetime(1970, 1, 1)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped:
            continue
        try:
            if match := PC_DATE.match(stripped):
                day = _date(match)
                continue
            if MOBILE_DATE.match(stripped):
                continue
            if match := PC_MESSAGE.match(line):
                hour, minute = _clock(match)
                messages.append([day + timedelta(hours=hour, minutes=minute), match["name"], match["text"]])
                continue
            match = ANDROID_MESSAGE.match(line) or IOS_MESSAGE.match(line)
            if match:
                hour, minute = _clock(match)
                when = _date(match) + timedelta(hours=hour, minutes=minute)
        except ValueError as err:
            if bad is not None:
                bad.append((lineno, str(err)))
            continue
        if match:
            name, sep, body = match["rest"].partition(" : ")
            if not sep:  # "2024년 3월 1일 오후 9:15, 홍길동님이 들어왔습니다."
                system += 1
                continue
            messages.append([when, name, body])
            continue
        if SYSTEM_LINE.search(stripped):
            system += 1
        elif messages:
            messages[-1][2] += "\n" + line
        elif not HEADER.search(stripped):
            system += 1  # text before the first message that is not the export header
    kept = []
    for when, name, body in messages:
        if SYSTEM_TEXT.match(body.strip()):
            system += 1
        else:
            kept.append((when, name, body))
    return kept, system


def parse_csv_messages(text: str) -> tuple[list[tuple[datetime, str, str]], int]:
    """Messages of a macOS/PC CSV export (``Date,User,Message`` with ``2024-03-01 21:15:00`` dates)."""
    reader = csv_reader(text)
    header = [cell.strip().lower() for cell in next(reader)]
    date_i, user_i, message_i = (header.index(name) for name in CSV_COLUMNS)
    messages, system = [], 0
    for row in reader:
        if len(row) <= max(date_i, user_i, message_i):
            system += 1 if any(cell.strip() for cell in row) else 0
            continue
        try:
            when = datetime.fromisoformat(row[date_i].strip())
        except ValueError:
            system += 1
            continue
        body = row[message_i]
        if SYSTEM_TEXT.match(body.strip()) or SYSTEM_LINE.search(body.strip()):
            system += 1
        else:
            messages.append((when, row[user_i].strip(), body))
    return messages, system


def is_csv_export(text: str) -> bool:
    """A CSV whose header is ``Date,User,Message`` (KakaoTalk for macOS/PC CSV export)."""
    header = text.lstrip("\ufeff").split("\n", 1)[0].strip().lower().replace('"', "")
    return [cell.strip() for cell in header.split(",")] == list(CSV_COLUMNS)


def split_at_silences(
    messages: list[tuple[datetime, str, str]], silence_minutes: float | None
) -> list[list[tuple[datetime, str, str]]]:
    """Start a new dialogue wherever the gap between messages exceeds ``silence_minutes`` (None/0: never)."""
    dialogues: list[list[tuple[datetime, str, str]]] = []
    limit = timedelta(minutes=silence_minutes) if silence_minutes else None
    for message in messages:
        if not dialogues or (limit is not None and message[0] - dialogues[-1][-1][0] > limit):
            dialogues.append([])
        dialogues[-1].append(message)
    return dialogues


def parse(text: str, source: str, options: dict[str, Any]) -> Iterator[RawRecord]:
    """Dialogues from a KakaoTalk export; ``options["assistant"]`` names the assistant, everyone else is the user.

    Without an assistant name the second distinct speaker of each dialogue plays the assistant (with a warning).
    """
    if not text.strip():
        raise DataFormatError("empty file (expected a KakaoTalk export)", file=source, reason="empty_file")
    bad: list[tuple[int, str]] = []
    messages, system = parse_csv_messages(text) if is_csv_export(text) else parse_messages(text, bad)
    if system:
        yield note(source, "kakao_system_line", system)
    for lineno, why in bad:
        yield issue(source, "malformed_record", f"line {lineno}", why)
    if not messages:
        raise DataFormatError(
            "no KakaoTalk messages found (expected lines like '[이름] [오후 9:15] 내용' or "
            "'2024년 3월 1일 오후 9:15, 이름 : 내용')",
            file=source,
            reason="kakao_no_messages",
        )
    assistant = options.get("assistant")
    speakers_seen = sorted({name for _, name, _ in messages})
    warnings = []
    if assistant and assistant not in speakers_seen:
        warnings.append(f"warning: {source}: assistant {assistant!r} is not a speaker here (speakers: "
                        f"{speakers_seen}); every message becomes a user turn")  # fmt: skip
    elif not assistant:
        warnings.append(f"warning: {source}: no assistant named; the second speaker of each dialogue plays the "
                        f"assistant (speakers: {speakers_seen}); pass --assistant NAME to choose")  # fmt: skip
    stem = Path(source).stem
    for index, dialogue in enumerate(split_at_silences(messages, options.get("silence_minutes", 60))):
        names = [name for _, name, _ in dialogue]
        if assistant:
            plays = assistant
        else:
            distinct = list(dict.fromkeys(names))
            plays = distinct[1] if len(distinct) > 1 else None
        roles = ["assistant" if name == plays else "user" for name in names]
        row = record(source, f"{stem}:{index}", names, [body for _, _, body in dialogue], roles=roles)
        if warnings and index == 0:
            row["_notes"] = warnings
        yield row

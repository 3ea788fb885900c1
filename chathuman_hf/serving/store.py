"""Per-visitor chat sessions kept on the server, with an idle TTL and a cap on live sessions (LRU eviction); one
message of a session at a time, the others waiting in the engine's bounded queue."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from chathuman_hf.chat import ChatSession
from chathuman_hf.chat.admission import Admission

SESSION_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")  # used with fullmatch: "abc\n" is refused (``$`` would allow it)
BAD_SESSION_ID = "session_id must be 1-64 characters of letters, digits, '-' or '_'."


def check_session_id(session_id: str) -> str:
    """``session_id`` when it is valid; a ``ValueError`` that does not repeat it otherwise (it may be huge)."""
    if not SESSION_ID.fullmatch(session_id):
        raise ValueError(BAD_SESSION_ID)
    return session_id


@dataclass
class SessionEntry:
    session: ChatSession
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class SessionStore:
    """Maps session ids to ``ChatSession`` objects; idle sessions expire after ``ttl`` seconds."""

    def __init__(self, factory: Callable[[], ChatSession], *, ttl: float = 1800.0, max_sessions: int = 1000,
                 clock: Callable[[], float] = time.monotonic, admission: Admission | None = None) -> None:
        if max_sessions < 1 or ttl <= 0:
            raise ValueError(f"max_sessions must be >= 1 and ttl > 0 (got {max_sessions}, {ttl}).")
        self.factory = factory
        self.ttl = ttl
        self.max_sessions = max_sessions
        self.clock = clock
        self._entries: OrderedDict[str, SessionEntry] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = {"expired": 0, "capacity": 0}
        self.admission = admission
        self.waiting = 0  # requests waiting for their session's earlier message to finish

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._entries)

    def _expire(self, now: float) -> None:
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.last_used <= self.ttl:
                break
            del self._entries[key]
            self.evicted["expired"] += 1

    def get(self, session_id: str) -> SessionEntry:
        """The session for ``session_id``, created if new or expired (the least recently used is evicted)."""
        check_session_id(session_id)
        now = self.clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(session_id)
            if entry is None:
                while len(self._entries) >= self.max_sessions:
                    self._entries.popitem(last=False)
                    self.evicted["capacity"] += 1
                entry = SessionEntry(self.factory(), now)
                self._entries[session_id] = entry
            entry.last_used = now
            self._entries.move_to_end(session_id)
            return entry

    def reset(self, session_id: str) -> bool:
        """Forget a session's history; ``False`` when no such live session exists (``ValueError``: invalid id)."""
        check_session_id(session_id)
        with self._lock:
            entry = self._entries.get(session_id)
        if entry is None:
            return False
        with self.turn(entry):
            entry.session.reset()
        return True

    @contextmanager
    def turn(self, entry: SessionEntry) -> Iterator[None]:
        """Hold ``entry``'s session for one message. Waiting for its earlier message counts in the engine's queue
        (``admission``): ``EngineBusy`` (503) at once when the queue is full, or when the request timeout passes."""
        if not entry.lock.acquire(blocking=False):
            if self.admission is None:
                entry.lock.acquire()
            else:
                deadline = self.admission.enter()
                with self._lock:
                    self.waiting += 1
                try:
                    got = entry.lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
                finally:
                    with self._lock:
                        self.waiting -= 1
                    self.admission.leave()  # the engine admits the reply itself
                if not got:
                    raise self.admission.expired("behind this session's earlier message")
        try:
            yield
        finally:
            entry.lock.release()

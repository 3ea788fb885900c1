"""How many replies a ChatEngine takes at once: running + queued up to a bound, a deadline per request."""

from __future__ import annotations

import math
import threading
import time


class EngineBusy(RuntimeError):
    """No room for another reply now (queue full, or a queued request reached its deadline): retry later.

    ``retry_after`` is the number of seconds worth waiting, the ``Retry-After`` of the server's 503."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Admission:
    """Counts model requests in flight; refuses one more past ``max_batch_size + max_queue`` (never unbounded).

    Each admitted request gets a deadline ``timeout`` seconds away: still queued then, it is refused with
    ``EngineBusy``; still generating, its reply is cut there (as by ``max_new_tokens``)."""

    def __init__(self, max_batch_size: int, max_queue: int, timeout: float) -> None:
        if max_batch_size < 1 or max_queue < 0 or timeout <= 0:
            raise ValueError(f"max_batch_size must be >= 1, max_queue >= 0 and request_timeout > 0 (got "
                             f"{max_batch_size}, {max_queue}, {timeout}).")
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.timeout = timeout
        self.in_flight = 0
        self.refused = 0
        self.reply_seconds = 1.0  # moving average of a reply's time in the engine, for Retry-After
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self.max_batch_size + self.max_queue

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the replies ahead, in batches, times the average reply time."""
        waves = math.ceil((self.in_flight + 1) / self.max_batch_size)
        return int(min(60, max(1, math.ceil(self.reply_seconds * waves))))

    def enter(self) -> float:
        """Admit one request and return its deadline (``time.monotonic()`` based), or raise ``EngineBusy``."""
        with self._lock:
            if self.in_flight >= self.capacity:
                self.refused += 1
                wait = self.retry_after()
                raise EngineBusy(f"The server is busy: {self.in_flight} replies are running or queued (limit "
                                 f"{self.capacity}); retry in {wait} s.", wait)
            self.in_flight += 1
        return time.monotonic() + self.timeout

    def leave(self, seconds: float | None = None) -> None:
        """A request is done; ``seconds`` (its time in the engine) updates the average when it finished normally."""
        with self._lock:
            self.in_flight -= 1
            if seconds is not None:
                self.reply_seconds = 0.8 * self.reply_seconds + 0.2 * seconds

    def expired(self, where: str = "in the queue") -> EngineBusy:
        """The error for a request that waited (``where``) until its deadline."""
        with self._lock:
            self.refused += 1
            wait = self.retry_after()
        return EngineBusy(f"The server is busy: the request waited {self.timeout:g} s {where}; retry in {wait} s.",
                          wait)

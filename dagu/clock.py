"""Time sources. Code outside this module never calls datetime.now() or time.time()."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone


class Clock:
    """The real clock."""

    def now(self) -> datetime:
        """Aware current time in UTC."""
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Block the calling thread."""
        if seconds > 0:
            time.sleep(seconds)


def wait_until(done, timeout: float, interval: float = 0.05, clock: Clock | None = None) -> bool:
    """Check done() every interval until it is true (True) or timeout seconds pass (False).

    For waiting on another process's progress (a runner taking or leaving a run), which
    arrives through files or the database and cannot be waited on directly."""
    clock = clock or _REAL
    deadline = clock.monotonic() + timeout
    while True:
        if done():
            return True
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            return False
        clock.sleep(min(interval, remaining))


_REAL = Clock()


class FakeClock(Clock):
    """A clock that moves only when told to; sleep() advances it at once."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2025, 1, 1, tzinfo=timezone.utc)
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

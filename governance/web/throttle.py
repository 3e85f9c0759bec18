"""A limit on failed sign-ins per actor name, so a password cannot be guessed online at argon2's pace.

Kept in the server's memory: a restart forgets it, and each server process counts on its own.
"""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_NAMES = 10_000  # names tracked at once; a flood of made-up names cannot grow it past this


class SignInThrottle:
    """At most `limit` failed sign-ins for one name within `window` seconds; after that the name is
    refused without checking any password until its oldest failure is `window` seconds old."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, name: str, now: float | None = None) -> float:
        """Seconds until `name` may try again; 0 when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent(name, now)
            if len(recent) < self.limit:
                return 0.0
            return recent[0] + self.window - now

    def failed(self, name: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if name not in self._failures and len(self._failures) >= MAX_NAMES:
                self._failures.pop(next(iter(self._failures)))
            recent = self._recent(name, now)
            recent.append(now)
            self._failures[name] = recent

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)

    def _recent(self, name: str, now: float) -> deque[float]:
        recent = self._failures.get(name, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent

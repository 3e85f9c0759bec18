"""A limit on sign-in attempts per actor name and per client address, so a password cannot be guessed
online at argon2's pace, neither by many requests at once nor by one client trying many names.

An attempt is counted when it starts, under one lock, before its password is checked: forty requests
at once for one name get `limit` checks, not as many as pass the test before the first one fails.
A sign-in that succeeds takes its own attempt back (and, for its name, the failures before it).

Memory is bounded without forgetting anyone: names and clients are counted in a fixed number of
buckets chosen by a keyed hash (a key made at start, so nobody can aim at a bucket), each holding at
most `limit` recent attempts. Two names that share a bucket share its limit, which is stricter,
never looser; a flood of made-up names fills buckets but cannot push a real name's failures out.
Kept in the server's memory: a restart forgets it, and each server process counts on its own.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque

BUCKETS = 1 << 16  # per kind (names, clients): at most BUCKETS x limit timestamps are ever held


class _Counter:
    """Recent attempts per key in a fixed number of buckets; each attempt is (time, tag of its key)."""

    def __init__(self, limit: int, window: float, buckets: int):
        self.limit, self.window, self.buckets = limit, window, buckets
        self._key = secrets.token_bytes(16)
        self._buckets: dict[int, deque[tuple[float, bytes]]] = {}

    def _tag(self, key: str) -> bytes:
        return hashlib.blake2b(key.encode(), key=self._key, digest_size=8).digest()

    def _recent(self, tag: bytes, now: float) -> deque[tuple[float, bytes]]:
        index = int.from_bytes(tag[:4], "big") % self.buckets
        recent = self._buckets.get(index)
        if recent is None:
            recent = self._buckets[index] = deque(maxlen=self.limit)
        while recent and recent[0][0] <= now - self.window:
            recent.popleft()
        return recent

    def wait(self, key: str, now: float) -> float:
        recent = self._recent(self._tag(key), now)
        return recent[0][0] + self.window - now if len(recent) >= self.limit else 0.0

    def count(self, key: str, now: float) -> None:
        tag = self._tag(key)
        self._recent(tag, now).append((now, tag))

    def take_back(self, key: str, now: float, *, all_of_it: bool) -> None:
        """Forget the key's latest attempt, or every attempt of the key; others in its bucket stay."""
        tag = self._tag(key)
        recent = self._recent(tag, now)
        kept = list(recent)
        for position in range(len(kept) - 1, -1, -1):
            if kept[position][1] == tag:
                del kept[position]
                if not all_of_it:
                    break
        recent.clear()
        recent.extend(kept)

    def held(self) -> int:
        return sum(len(recent) for recent in self._buckets.values())


class SignInThrottle:
    """At most `limit` sign-in attempts for one name, and `client_limit` for one client address,
    within `window` seconds; past either the request is refused without checking any password until
    the oldest attempt counted against it is `window` seconds old."""

    def __init__(self, limit: int, window: float, client_limit: int | None = None, *, buckets: int = BUCKETS):
        self.window = window
        self._names = _Counter(limit, window, buckets)
        self._clients = _Counter(client_limit or limit, window, buckets)
        self._lock = threading.Lock()

    def attempt(self, name: str, client: str, now: float | None = None) -> float:
        """Counts an attempt by `client` for `name` and returns 0 when it may go on; else the seconds
        until it may, counting nothing. Check and count are one step, so no two requests both slip in."""
        now = time.monotonic() if now is None else now
        with self._lock:
            wait = max(self._names.wait(name, now), self._clients.wait(client, now))
            if wait > 0:
                return wait
            self._names.count(name, now)
            self._clients.count(client, now)
            return 0.0

    def succeeded(self, name: str, client: str, now: float | None = None) -> None:
        """The password was right: the name starts afresh; the client's attempt is not held against it."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._names.take_back(name, now, all_of_it=True)
            self._clients.take_back(client, now, all_of_it=False)

    def held(self) -> int:
        """How many attempts are held in memory, names and clients together."""
        with self._lock:
            return self._names.held() + self._clients.held()

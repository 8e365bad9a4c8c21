"""API keys with scopes, stored hashed, and a rate limit per key.

    >>> import tempfile, pathlib
    >>> keys = KeyStore(pathlib.Path(tempfile.mkdtemp()) / "keys.db")
    >>> secret = keys.create(["read"], name="newsroom", rate_per_minute=600)
    >>> secret.startswith("ts_")
    True
    >>> k = keys.verify(secret)
    >>> (k.name, k.scopes, k.allows("read"), k.allows("ingest"))
    ('newsroom', ('read',), True, False)
    >>> keys.verify("ts_not-a-key") is None
    True

An ``advertiser`` key acts for one advertiser (its ``subject``) and a ``user`` key for one user:
the ads endpoints show them only their own campaigns or profile.

Keys are 256-bit random secrets (``ts_`` + 43 URL-safe characters). Only their SHA-256 is stored:
with that much entropy a fast hash cannot be brute-forced, so a slow password hash (bcrypt,
argon2) would add latency to every request and no safety. Lookups compare digests, so the time
taken does not depend on how much of a guessed key is right. The ``admin`` scope grants every
other scope.

Rate limits are token buckets per key (``rate_per_minute``, bursts up to the same number), kept
in the process (``RateLimiter``), or in the store when several server processes share a
PostgreSQL one (``SharedRateLimiter``), so a key's limit holds across them. A request over the
limit gets ``429`` and ``Retry-After`` in seconds.
"""
from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from townsquare.store.base import Store
from townsquare.store.sidecar import connect

KEYS_FILE = "keys.db"        # in the home folder, beside (not inside) the store
SCOPES = ("ingest", "read", "admin", "advertiser", "user")
PREFIX = "ts_"
DEFAULT_RATE = 600           # requests per minute per key (10/s sustained, bursts of 600)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,                 -- public id: the first 8 characters after the prefix
    digest TEXT NOT NULL UNIQUE,         -- sha256 of the whole key, hex
    name TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL,                -- space-separated
    rate_per_minute INTEGER NOT NULL,
    created_at INTEGER NOT NULL,         -- unix ms
    revoked_at INTEGER,                  -- unix ms, NULL while valid
    subject TEXT                         -- whose data the key acts for: an advertiser id
                                         -- (scope advertiser) or a user (scope user)
)
"""


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    rate_per_minute: int
    created_at: int
    revoked: bool = False
    subject: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes),
                "rate_per_minute": self.rate_per_minute, "created_at": self.created_at,
                "revoked": self.revoked, "subject": self.subject}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate scope names; returns them sorted and unique."""
    if not scopes:
        raise ValueError(f"give at least one scope: {', '.join(SCOPES)}")
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValueError(f"unknown scope {bad[0]!r}; scopes are {', '.join(SCOPES)}")
    return tuple(sorted(set(scopes)))


class KeyStore:
    """API keys in a small SQLite file (``<home>/keys.db``), apart from the posts so a store copy
    or export never carries credentials."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db = connect(self.path)          # WAL, shared by threads, busy timeout
        self._db.execute(_SCHEMA)
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(api_keys)")}
        if "subject" not in cols:                # a keys.db from before ads (issue 6)
            self._db.execute("ALTER TABLE api_keys ADD COLUMN subject TEXT")
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    def close(self) -> None:
        self._db.close()

    def create(self, scopes: list[str], *, name: str = "",
               rate_per_minute: int = DEFAULT_RATE, subject: str | None = None) -> str:
        """A new key; returns the secret (shown once, never stored). ``subject``: the advertiser
        an ``advertiser`` key acts for, or the user a ``user`` key belongs to (required for
        those scopes: such a key only ever sees its subject's campaigns or profile)."""
        scopes_t = check_scopes(scopes)
        if rate_per_minute < 1:
            raise ValueError(f"rate_per_minute must be >= 1, got {rate_per_minute}")
        needs = [s for s in scopes_t if s in ("advertiser", "user")]
        if needs and not (subject and subject.strip()):
            raise ValueError(f"a key with the {needs[0]} scope needs a subject (the "
                             f"{'advertiser id' if needs[0] == 'advertiser' else 'user'} it acts for)")
        if len(needs) > 1:
            raise ValueError("one key cannot be both an advertiser's and a user's")
        body = secrets.token_urlsafe(32)
        secret = PREFIX + body
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys(id, digest, name, scopes, rate_per_minute, created_at, "
                "subject) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (body[:8], _digest(secret), name, " ".join(scopes_t), rate_per_minute,
                 int(time.time() * 1000), subject.strip() if subject else None))
        return secret

    def verify(self, secret: str) -> ApiKey | None:
        """The key for a presented secret, or None (unknown or revoked). Cached for 5 s, so a
        revocation takes effect within that."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        d = _digest(secret)
        now = time.monotonic()
        hit = self._cache.get(d)
        if hit is not None and now - hit[0] < 5.0:
            return hit[1]
        with self._lock:
            row = self._db.execute(
                "SELECT id, name, scopes, rate_per_minute, created_at, revoked_at, digest, "
                "subject FROM api_keys WHERE digest = ?", (d,)).fetchone()
        key = None
        if row is not None and secrets.compare_digest(row[6], d) and row[5] is None:
            key = ApiKey(row[0], row[1], tuple(row[2].split()), row[3], row[4], False, row[7])
        self._cache[d] = (now, key)
        return key

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, scopes, rate_per_minute, created_at, revoked_at, subject "
                "FROM api_keys ORDER BY created_at, id").fetchall()
        return [ApiKey(r[0], r[1], tuple(r[2].split()), r[3], r[4], r[5] is not None, r[6])
                for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            n = self._db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND "
                                 "revoked_at IS NULL", (int(time.time() * 1000), key_id)).rowcount
        self._cache.clear()
        return n > 0


class RateLimit(Protocol):
    """A rate limit per key: ``take(key)`` returns 0 when the request may go, else the seconds
    to wait."""

    def take(self, key: ApiKey) -> int: ...


class RateLimiter:
    """Token buckets per key id: ``take(key)`` returns 0 when allowed, else the seconds to wait.

    >>> rl = RateLimiter(clock=lambda: 0.0)
    >>> k = ApiKey("k1", "", ("read",), rate_per_minute=2, created_at=0)
    >>> [rl.take(k) for _ in range(3)]
    [0, 0, 30]
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}    # id -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: ApiKey) -> int:
        rate = key.rate_per_minute / 60.0                       # tokens per second
        cap = float(key.rate_per_minute)
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key.id, (cap, now))
            tokens = min(cap, tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[key.id] = (tokens - 1.0, now)
                return 0
            self._buckets[key.id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))


class SharedRateLimiter:
    """The token buckets of ``RateLimiter`` kept in a PostgreSQL store, so that a key's limit
    holds across every API worker and machine (server mode). ``store``: a callable giving this
    thread's store (``Runtime.reader``)."""

    def __init__(self, store: Callable[[], Store]):
        self._store = store

    def take(self, key: ApiKey) -> int:
        return self._store().take_token(key.id, key.rate_per_minute)


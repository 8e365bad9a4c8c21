"""Per-source progress and health, for ``townsquare stats``, ``/v1/stats`` and the logs.

    >>> s = SourceStats(source="bluesky", kind="bluesky", locator="bluesky:wss://js.example/")
    >>> s.on_connect(now_s=1000.0)
    >>> s.on_event(received_s=1001.0, source_ms=1000_500)
    >>> s.on_written(posts=40, now_s=1001.0); s.on_written(posts=60, now_s=1005.0)
    >>> d = s.to_dict(now_s=1010.0)
    >>> d["connected_since"], d["lag_ms"], d["posts_per_s"]
    ('1970-01-01T00:16:40.000Z', 500, 10.0)

``posts_per_s`` is the rate over the last ``RATE_WINDOW_S`` seconds (posts committed, duplicates
included: a duplicate costs the same work); ``lag_ms`` is how far the last event's own time (the
post's creation, or Jetstream's ``time_us``) was behind this machine's clock when it arrived.

A collector runs in its own process (``townsquare follow``) or inside the server; either way it
publishes its snapshot to ``HOME/follow/NAME.stats.json`` every few seconds (``write_stats``,
``stats_path``) so that ``townsquare stats`` and ``/v1/stats`` read every source's health
(``read_stats`` of ``state_folder(HOME)``) without talking to the collector. A snapshot not
refreshed for ``STALE_AFTER_S`` is marked ``stale``: its collector stopped or died.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_stats(folder / "bluesky.stats.json", d, now_s=1010.0)
    >>> [(r["source"], r["stale"]) for r in read_stats(folder, now_s=1100.0)]
    [('bluesky', True)]
"""
from __future__ import annotations

import os
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from townsquare.posts import format_time, parse_time_ms

RATE_WINDOW_S = 10.0
STALE_AFTER_S = 30.0
STATS_SUFFIX = ".stats.json"
STATE_FOLDER = "follow"           # in the home folder: stats snapshots and cursors


def state_folder(home: str | Path) -> Path:
    """Where followed sources keep their state: ``HOME/follow``."""
    return Path(home) / STATE_FOLDER


def file_stem(name: str) -> str:
    """A source name as a file name: no separator survives, so it stays in its folder.

    >>> file_stem("mastodon:m.example"), file_stem("../x")
    ('mastodon_m.example', '.._x')
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "source"


def stats_path(folder: str | Path, name: str) -> Path:
    """The snapshot file of the source ``name`` in ``folder``."""
    return Path(folder) / f"{file_stem(name)}{STATS_SUFFIX}"


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else format_time(int(seconds * 1000))


@dataclass(slots=True)
class SourceStats:
    """Counters of one followed source; the collector and its source update them."""

    source: str                       # the dataset name its posts are stored under
    kind: str                         # x, bluesky, mastodon, ndjson
    locator: str                      # where frames come from (no credentials)
    connected: bool = False
    connected_since_s: float | None = None
    last_event_s: float | None = None     # when the last frame arrived, this machine's clock
    last_source_ms: int | None = None     # the last event's time by the source's clock
    lag_ms: int | None = None
    frames: int = 0                   # frames read (keep-alives not counted)
    keepalives: int = 0
    posts: int = 0                    # posts committed (inserted, updated or unchanged)
    inserted: int = 0
    deletes: int = 0                  # delete events committed
    quarantined: int = 0              # frames (or posts in them) that could not be read
    skipped: int = 0                  # posts without text (image-only): nothing to search
    dropped: int = 0                  # frames dropped on a full queue (overflow="drop-oldest")
    partial_frames: int = 0           # frames cut by a disconnect, never complete
    reconnects: int = 0
    batches: int = 0
    queue_depth: int = 0
    last_error: str | None = None
    _window: deque = field(default_factory=deque, repr=False)

    def on_connect(self, now_s: float) -> None:
        self.connected = True
        self.connected_since_s = now_s

    def on_disconnect(self, error: str | None) -> None:
        self.connected = False
        self.connected_since_s = None
        if error:
            self.last_error = error

    def on_event(self, received_s: float, source_ms: int | None) -> None:
        self.frames += 1
        self.last_event_s = received_s
        if source_ms is not None:
            self.last_source_ms = source_ms
            self.lag_ms = max(0, int(received_s * 1000) - source_ms)

    def on_written(self, posts: int, now_s: float) -> None:
        self.posts += posts
        self.batches += 1
        self._window.append((now_s, posts))
        self._trim(now_s)

    def _trim(self, now_s: float) -> None:
        while self._window and self._window[0][0] < now_s - RATE_WINDOW_S:
            self._window.popleft()

    def posts_per_s(self, now_s: float) -> float:
        self._trim(now_s)
        return round(sum(n for _, n in self._window) / RATE_WINDOW_S, 1)

    def to_dict(self, now_s: float) -> dict[str, Any]:
        """A JSON-able snapshot; times as ISO 8601 UTC."""
        return {
            "source": self.source, "kind": self.kind, "locator": self.locator,
            "connected": self.connected, "connected_since": _iso(self.connected_since_s),
            "last_event": _iso(self.last_event_s),
            "last_source_time": _iso(None if self.last_source_ms is None
                                     else self.last_source_ms / 1000),
            "lag_ms": self.lag_ms, "posts_per_s": self.posts_per_s(now_s),
            "frames": self.frames, "keepalives": self.keepalives, "posts": self.posts,
            "inserted": self.inserted, "deletes": self.deletes, "quarantined": self.quarantined,
            "skipped": self.skipped, "dropped": self.dropped,
            "partial_frames": self.partial_frames, "reconnects": self.reconnects,
            "batches": self.batches, "queue_depth": self.queue_depth,
            "last_error": self.last_error,
        }


def write_stats(path: Path, snapshot: dict[str, Any], now_s: float) -> None:
    """Publish a snapshot (atomically: a reader sees the old one or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps({**snapshot, "updated": _iso(now_s)}))
    os.replace(tmp, path)


def read_stats(folder: Path, now_s: float, stale_after_s: float = STALE_AFTER_S
               ) -> list[dict[str, Any]]:
    """Every published snapshot in ``folder``, by source name, each with ``stale``."""
    out = []
    for f in sorted(Path(folder).glob(f"*{STATS_SUFFIX}")):
        try:
            snap = orjson.loads(f.read_bytes())
            updated_s = parse_time_ms(snap["updated"]) / 1000
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue                       # half-written by an older version, or not ours
        snap["stale"] = now_s - updated_s > stale_after_s
        out.append(snap)
    return out

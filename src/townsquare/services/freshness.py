"""Freshness by arm: how far each of search's indexes is behind the store, in posts and seconds.

    >>> from townsquare.store import open_store
    >>> with open_store(":memory:") as store:
    ...     arm_lags(store, lexical=None)["e5"]
    {'model': None, 'posts': 0, 'seconds': 0.0, 'through_seq': 0}

Three arms answer a query, each behind its own watermark on the store's ingest order (``seq``):

``lexical``        the tantivy index (FTS5, the source of truth, is never behind: without a
                   tantivy index, or in a store that indexes itself, the lag is 0).
``fast_semantic``  the fast embedding tier (``embed.tiers``, ``m2v-e5``), when one runs in this
                   process; ``None`` otherwise.
``e5``             the e5 vectors written by the embedding stage.

``posts`` counts posts ingested (or changed) after the arm's watermark (``through_seq``);
``seconds`` is how long ago the first of them was ingested (``Store.ingested_at_after``; e5:
``Store.embedding_lag``), 0.0 when none is pending. The fast tier adds its model's ``state``
(``ready``, or ``distilling`` with its progress, ...) and ``indexed``: the posts only it holds.
A fast tier lives in the process that searches (the server). The server's indexer publishes
where its indexes stand (``publish_indexes``: ``HOME/indexes.json``, every second, removed when
it stops), and ``townsquare stats`` (:func:`home_arm_lags`), which runs no tier and must not
open a running server's tantivy index, counts the server's lags from it; ``fast_semantic`` is
None without a fresh snapshot (no server, or one that stopped ``STALE_AFTER_S`` ago) or when
the server runs no fast tier.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

from townsquare.embed.tiers import TieredVectors
from townsquare.protocols import LexicalIndex
from townsquare.services.indexes import LEXICAL_DIR, lexical_index
from townsquare.store.base import Store
from townsquare.store.lock import LOCK_FILE, holder

__all__ = ["INDEXES_FILE", "arm_lags", "home_arm_lags", "publish_indexes", "unpublish_indexes"]

INDEXES_FILE = "indexes.json"
STALE_AFTER_S = 30.0       # a snapshot older than this: its process stopped or died


def arm_lags(store: Store, *, lexical: LexicalIndex | None,
             tiers: TieredVectors | None = None,
             e5_lag: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"lexical": ..., "fast_semantic": ..., "e5": ...}``, each ``{"posts", "seconds", ...}``.
    ``e5_lag``: ``store.embedding_lag()`` when the caller read it already (it counts the posts
    behind e5: one range count per request, not one per reader)."""
    newest = store.max_seq()
    e5 = e5_lag if e5_lag is not None else store.embedding_lag()
    lex_posts = lexical.lag(newest, store) if lexical is not None else 0
    lex_through = newest - lex_posts
    return {
        "lexical": {"posts": lex_posts, "seconds": _age(store, lex_through) if lex_posts else 0.0,
                    "through_seq": lex_through},
        "fast_semantic": tiers.freshness(store) if tiers is not None else None,
        "e5": {"model": e5["model"], "posts": e5["pending_posts"],
               "seconds": e5["oldest_pending_age_s"], "through_seq": e5["processed_through_seq"]},
    }


def _age(store: Store, through_seq: int) -> float:
    """Seconds since the first post after ``through_seq`` was ingested (0.0: none)."""
    oldest = store.ingested_at_after(through_seq)
    return 0.0 if oldest is None else round(max(0.0, time.time() - oldest / 1000), 1)


def home_arm_lags(store: Store, home: Path) -> dict[str, Any]:
    """:func:`arm_lags` of a home as a command sees it (``townsquare stats``).

    A server on the home keeps its indexes and publishes where they stand (``publish_indexes``):
    its lexical and fast-tier watermarks, counted here against the store. Without one, the
    tantivy index is opened when it was built and no other process writes the home (opening
    it may rebuild it: never under a server or an ``ingest``, whose index it is; the lexical
    arm is then None, as the fast tier is without a server)."""
    snap = _read_snapshot(Path(home) / INDEXES_FILE)
    if snap is None:
        mine = holder(Path(home) / LOCK_FILE) is None
        lexical = (lexical_index(store, home)
                   if mine and (Path(home) / LEXICAL_DIR).is_dir() else None)
        out = arm_lags(store, lexical=lexical)
        if not mine:
            out["lexical"] = None
        return out
    out = arm_lags(store, lexical=None)
    newest = store.max_seq()
    for arm, through in (("lexical", snap["lexical_through"]),
                         ("fast_semantic", (snap["fast"] or {}).get("through_seq"))):
        if through is None:               # FTS5 alone (lexical), or no fast tier
            continue
        pending = max(0, newest - int(through))
        out[arm] = {"posts": pending, "seconds": _age(store, int(through)) if pending else 0.0,
                    "through_seq": int(through)}
    if snap["fast"] is None:
        out["fast_semantic"] = None
    else:
        f = snap["fast"]
        out["fast_semantic"] = {"model": f["model"], "state": f["state"],
                                **out["fast_semantic"], "indexed": f["indexed"]}
    return out


def publish_indexes(home: Path, lexical: LexicalIndex | None,
                    tiers: TieredVectors | None) -> None:
    """Leave where a server's lexical index and fast tier stand in ``HOME/indexes.json``
    (atomically) for :func:`home_arm_lags`; the server's indexer calls it every second."""
    fast = None
    if tiers is not None:
        f = tiers.freshness()
        fast = {k: f[k] for k in ("model", "state", "through_seq", "indexed")}
    path = Path(home) / INDEXES_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps({
        "lexical_through": getattr(lexical, "watermark", None) if lexical is not None else None,
        "fast": fast, "pid": os.getpid(), "at": time.time()}))
    os.replace(tmp, path)


def unpublish_indexes(home: Path) -> None:
    """Remove this process's snapshot (its indexes are no longer kept when it stops)."""
    path = Path(home) / INDEXES_FILE
    snap = _read_snapshot(path, stale_after_s=float("inf"))
    if snap is not None and snap.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _read_snapshot(path: Path, stale_after_s: float = STALE_AFTER_S) -> dict[str, Any] | None:
    try:
        snap = orjson.loads(path.read_bytes())
        fresh = time.time() - float(snap["at"]) <= stale_after_s
        return snap if fresh and {"lexical_through", "fast"} <= set(snap) else None
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None                        # none, half-written by an older version, not ours

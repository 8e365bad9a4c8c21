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

``posts`` counts posts ingested (or changed) after the arm's watermark. ``seconds`` is the age of
the oldest of them where the store says it (e5: ``Store.embedding_lag``), else how long the arm
has had anything pending (the fast tier records when it last caught up); ``None`` when neither
is known (a tantivy index read by ``townsquare stats``, which never refreshes it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from townsquare.embed.tiers import TieredVectors
from townsquare.protocols import LexicalIndex
from townsquare.services.indexes import LEXICAL_DIR, lexical_index
from townsquare.store.base import Store

__all__ = ["arm_lags", "home_arm_lags"]


def arm_lags(store: Store, *, lexical: LexicalIndex | None,
             tiers: TieredVectors | None = None) -> dict[str, Any]:
    """``{"lexical": ..., "fast_semantic": ..., "e5": ...}``, each ``{"posts", "seconds", ...}``."""
    newest = store.max_seq()
    e5 = store.embedding_lag()
    lex_posts = lexical.lag(newest) if lexical is not None else 0
    out: dict[str, Any] = {
        "lexical": {"posts": lex_posts, "seconds": 0.0 if lex_posts == 0 else None,
                    "through_seq": newest - lex_posts},
        "fast_semantic": None,
        "e5": {"model": e5["model"], "posts": e5["pending_posts"],
               "seconds": e5["oldest_pending_age_s"], "through_seq": e5["processed_through_seq"]},
    }
    if tiers is not None:
        out["fast_semantic"] = {**tiers.freshness(),
                                "through_seq": max(tiers.fast_seq, tiers.e5_watermark())}
    return out


def home_arm_lags(store: Store, home: Path) -> dict[str, Any]:
    """:func:`arm_lags` of a home as a command sees it (``townsquare stats``): its tantivy index
    when one was built (opening it never creates one), no fast tier (each search process runs
    its own)."""
    lexical = lexical_index(store, home) if (Path(home) / LEXICAL_DIR).is_dir() else None
    return arm_lags(store, lexical=lexical)

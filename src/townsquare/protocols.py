"""The typed seams between search, the store's derived indexes and the embedders.

    >>> from townsquare.protocols import Embedder, VectorIndex
    >>> class Hashing:                       # anything with this shape is an Embedder
    ...     name, dim = "hash-4", 4
    ...     def query(self, text): return np.eye(4, dtype=np.float32)[hash(text) % 4]
    ...     def passages(self, texts): return np.stack([self.query(t) for t in texts])
    >>> isinstance(Hashing(), Embedder), isinstance(Hashing(), VectorIndex)
    (True, False)

Protocols, not base classes: the search engine, the summarizer and the ad server need only
these few methods, and tests, benchmarks and the HTTP service pass their own wrappers (a
locked index shared by request threads, a fake embedder) without inheriting anything. Each is
``runtime_checkable``, which checks that the methods exist (not their signatures);
``tests/test_protocols.py`` checks that the real classes satisfy them:

================ =====================================================================
``Embedder``     ``townsquare.embed.models``' embedders (``get_embedder``)
``VectorIndex``  ``townsquare.embed.sync.StoreVectors`` (faiss beside the store) and
                 ``InStoreVectors`` (the store's own index: pgvector in PostgreSQL)
``LexicalIndex`` ``townsquare.search.lexindex.LexicalIndex`` (tantivy beside the store)
================ =====================================================================

This module sits on the ground floor: it imports only ``typing``, numpy and the query AST.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from townsquare.query import Node

__all__ = ["Embedder", "LexicalIndex", "Nearest", "VectorIndex"]


@runtime_checkable
class Embedder(Protocol):
    """Text in, L2-normalized float32 vectors out, so that a dot product is a cosine."""

    name: str        # what the store records as the model of its vectors
    dim: int

    def query(self, text: str) -> np.ndarray:
        """One search query: ``(dim,)`` float32, unit norm."""
        ...

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Documents (posts): ``(n, dim)`` float32, unit rows; ``(0, dim)`` for none."""
        ...


@runtime_checkable
class VectorIndex(Protocol):
    """Nearest posts by embedding, kept in step with the store's vectors."""

    @property
    def model(self) -> str | None:
        """The embedding model of the vectors it holds (None before any)."""
        ...

    def __len__(self) -> int:
        """How many vectors it holds."""
        ...

    def search(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """``(post id, cosine)`` of the ``k`` nearest to the unit vector ``q``, best first."""
        ...

    def refresh(self) -> int:
        """Catch up with the vectors written since the last refresh; returns how many."""
        ...

    def vectors_of(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids found (m,), their unit vectors (m, dim) float32)``, in the order of ``ids``:
        the e5 vectors it holds (what the feedback round averages)."""
        ...

    def nearest(self, q: np.ndarray, k: int, max_seq: int | None = None, *,
                ef: int | None = None) -> Nearest:
        """``search`` as arrays, with the ranking fields the index keeps beside the vectors of
        the posts embedded at or before ``max_seq`` (``has_fields``); the store reads the
        others' (an index may keep none). ``ef``: the HNSW beam width for this search (None:
        wide enough to find ``k``; an index that is exact, or that needs the beam to be ``k``
        to return ``k``, ignores it)."""
        ...


class Nearest(NamedTuple):
    """A vector search's neighbours, best first (``VectorIndex.nearest``).

    >>> Nearest.of_pairs([(7, 0.9), (3, 0.8)]).ids.tolist()
    [7, 3]
    """
    ids: np.ndarray           # (n,) int64
    scores: np.ndarray        # (n,) float64 cosines
    has_fields: np.ndarray    # (n,) bool: ``fields`` holds the post's, as of its embedding
    fields: np.ndarray        # (n, 5) int64 created_at, likes, reposts, replies, quotes

    @classmethod
    def of_pairs(cls, pairs: Sequence[tuple[int, float]]) -> Nearest:
        """From ``search``'s ``(id, cosine)`` pairs: no fields."""
        n = len(pairs)
        return cls(np.fromiter((p for p, _ in pairs), np.int64, n),
                   np.fromiter((s for _, s in pairs), np.float64, n),
                   np.zeros(n, dtype=bool), np.zeros((n, 5), dtype=np.int64))


@runtime_checkable
class LexicalIndex(Protocol):
    """Fast top-k BM25 over post texts with the query's operators, derived from the store (which
    stays exact): what ``search.engine`` calls. Its query and hit types live in ``search``
    (this module imports nothing above the ground floor), hence ``Any`` here."""

    def lag(self, max_seq: int | None = None, store: Any = None) -> int:
        """Posts not indexed yet, up to ``max_seq`` (default: the store's newest), read through
        ``store`` (the caller's connection; default the index's own)."""
        ...

    def refresh(self, progress: Callable[[int], object] | None = None) -> int:
        """Index what the store gained since the last refresh; returns how many posts."""
        ...

    def share(self, part: str) -> float:
        """Share of indexed posts holding ``part`` (a phrase: its rarest word), in [0, 1]."""
        ...

    def unsettled(self) -> int:
        """At most how many indexed posts wait to be indexed again with the language the late
        stage has given them since (``refresh`` does it)."""
        ...

    def compile(self, node: Node, *, now_ms: int, max_seq: int | None = None) -> Any:
        """``node`` as this index's query plus the residual the store still checks on its hits
        (``search.lexquery.Compiled``: ``.query``, ``.residual``, a ``Node`` or None)."""
        ...

    def any_query(self, parts: list[str], node: Node | None, *, now_ms: int,
                  max_seq: int | None = None) -> Any | None:
        """Like ``compile``, for posts holding ANY of ``parts`` (words or phrases) that satisfy
        ``node`` (None: no condition); None when no part has a word."""
        ...

    def search(self, query: Any, k: int, *, order: str = "rank", count: bool = False,
               fields: bool = True, max_seq: int | None = None) -> Any:
        """The top ``k`` hits of a compiled query among posts with ``seq`` at most ``max_seq``,
        by BM25 (``rank``) or newest first (``time``) (``search.lexindex.Hits``: ``.ids``,
        ``.keys``, the ranking fields ``.fields`` as ``search.rank.RankColumns``, ``.total``)."""
        ...

"""What a search returns: ``SearchResponse`` (the page, its cursor, timings, what the semantic
stage did, how deep the lexical lists were read) and its ``SearchHit`` rows, as the CLI's
``--json`` and ``GET /v1/search`` give them.

    >>> from townsquare.posts import Post
    >>> h = hit_of(Post(id=7, text="flood", source="t", created_at=0), 1.0, {}, ["lexical"], 0)
    >>> h.to_dict()["url"]
    'https://x.com/i/status/7'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from townsquare.posts import Post, format_time
from townsquare.store.base import Shown

__all__ = ["SearchHit", "SearchResponse", "hit_of"]


@dataclass(slots=True)
class SearchHit:
    id: int
    text: str
    created_at: int
    author: str | None
    author_id: int | None
    lang: str | None
    score: float
    parts: dict[str, float]
    matched: list[str]                 # the lists that found it: "lexical", "semantic", ...
    near_duplicates: int               # other posts of its near-duplicate group in the store

    def to_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "text": self.text, "created_at": format_time(self.created_at),
                "author": self.author, "author_id": str(self.author_id) if self.author_id else None,
                "lang": self.lang, "score": round(self.score, 6),
                "parts": {k: round(v, 6) for k, v in self.parts.items()},
                "matched": self.matched, "near_duplicates": self.near_duplicates,
                "url": f"https://x.com/i/status/{self.id}"}


@dataclass(slots=True)
class SearchResponse:
    query: str
    mode: str
    results: list[SearchHit]
    next_cursor: str | None
    timings_ms: dict[str, float]
    semantic: dict[str, Any]
    # ``top``: how deep each lexical list was read (``SearchConfig.lexical_first_depth``)
    lexical_depth: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "mode": self.mode,
                "results": [h.to_dict() for h in self.results],
                "next_cursor": self.next_cursor, "timings_ms": self.timings_ms,
                "semantic": self.semantic, "lexical_depth": self.lexical_depth}


def hit_of(p: Post | Shown, score: float, parts: dict, matched: list[str],
           dup_count: int) -> SearchHit:
    """A result from a post, whole or as ``Store.shown`` reads it (the same field names)."""
    return SearchHit(id=p.id, text=p.text, created_at=p.created_at, author=p.author_handle,
                     author_id=p.author_id, lang=p.lang, score=score, parts=parts,
                     matched=matched, near_duplicates=dup_count)

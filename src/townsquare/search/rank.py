"""Ranking: reciprocal rank fusion of the lexical and semantic lists, then recency and engagement.

    >>> w = RankWeights()
    >>> fused = rrf({"lexical": [10, 11], "semantic": [11, 12]}, w)
    >>> sorted(fused, key=lambda i: -fused[i])[0]     # in both lists: first
    11

The score of a post in ``top`` mode (all weights in ``RankWeights``, documented and tunable):

    relevance  = RRF(d) / RRF_max                       in [0, 1]
    RRF(d)     = sum over lists L holding d of  w_L / (k + rank_L(d))     (ranks from 1)
                 lists: "lexical" (BM25, every query word), "any_terms" (BM25, any query word;
                 for queries of two or more words), "semantic" (cosine to the query embedding),
                 "feedback" (cosine to the query embedding moved towards the first round's top
                 posts: pseudo-relevance feedback, see ``search.engine``)
    recency    = 0.5 ** (age_hours / half_life_hours)  in (0, 1]; age against the stream's newest post
    engagement = log1p(likes + 2 * reposts + replies + quotes) / log1p(engagement_cap), clipped to 1
    score      = relevance + recency_weight * recency + engagement_weight * engagement

Why RRF: BM25 scores and cosine similarities live on unrelated scales; fusing by rank needs no
calibration and is the standard strong baseline for hybrid retrieval (Cormack et al., 2009; k=60).
Recency and engagement are small additive terms: they order posts of similar relevance (the
newest, most shared report of an event first) without letting a viral off-topic post jump ahead.
Age is measured against the newest post in the store, not the wall clock, so an archive (these
datasets are from 2012-2019) ranks the same way a live stream does.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from townsquare.posts import Post


class RankFields(NamedTuple):
    """What ranking reads of a post, in ``Store.rank_fields``'s order: a ranked candidate set
    of thousands is scored without reading each post whole. A ``Post`` has the same fields."""
    created_at: int
    like_count: int | None = None
    retweet_count: int | None = None
    reply_count: int | None = None
    quote_count: int | None = None


@dataclass(frozen=True, slots=True)
class RankWeights:
    rrf_k: int = 60                   # RRF's damping constant
    lexical: float = 1.0              # weight of the BM25 list (all query words) in RRF
    any_terms: float = 1.0            # weight of the BM25 list of posts with ANY query word
    semantic: float = 1.0             # weight of the embedding list in RRF
    feedback: float = 1.0             # weight of the pseudo-relevance feedback list in RRF
    recency_weight: float = 0.10
    half_life_hours: float = 24.0
    engagement_weight: float = 0.05
    engagement_cap: int = 10_000      # engagement at which the engagement term reaches 1

    def __post_init__(self):
        if self.rrf_k < 0:
            raise ValueError(f"rrf_k must be >= 0, got {self.rrf_k}")
        for name in ("lexical", "any_terms", "semantic", "feedback", "recency_weight",
                     "engagement_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.half_life_hours <= 0:
            raise ValueError(f"half_life_hours must be > 0, got {self.half_life_hours}")
        if self.engagement_cap < 1:
            raise ValueError(f"engagement_cap must be >= 1, got {self.engagement_cap}")


def rrf(lists: dict[str, list[int]], w: RankWeights) -> dict[int, float]:
    """Normalized RRF score per id: 1.0 for an id ranked first in every list."""
    weights = {"lexical": w.lexical, "any_terms": w.any_terms, "semantic": w.semantic,
               "feedback": w.feedback}
    active = [name for name, ids in lists.items() if ids]
    best = sum(weights.get(name, 1.0) for name in active) / (w.rrf_k + 1) or 1.0
    out: dict[int, float] = {}
    for name in active:
        wl = weights.get(name, 1.0)
        for rank, pid in enumerate(lists[name], start=1):
            out[pid] = out.get(pid, 0.0) + wl / (w.rrf_k + rank)
    return {pid: s / best for pid, s in out.items()}


def recency(created_at_ms: int, reference_ms: int, w: RankWeights) -> float:
    """0.5 ** (age in half-lives); posts newer than the reference count as age 0.

    >>> recency(0, 24 * 3600 * 1000, RankWeights(half_life_hours=24))
    0.5
    """
    age_h = max(0.0, (reference_ms - created_at_ms) / 3_600_000)
    return 0.5 ** (age_h / w.half_life_hours)


def engagement(p: Post | RankFields, w: RankWeights) -> float:
    """log-scaled interactions in [0, 1]; posts without counts score 0.

    >>> engagement(Post(id=1, text="x", source="t", like_count=10_000), RankWeights())
    1.0
    >>> engagement(Post(id=1, text="x", source="t"), RankWeights())
    0.0
    """
    n = (p.like_count or 0) + 2 * (p.retweet_count or 0) + (p.reply_count or 0) + (p.quote_count or 0)
    return min(1.0, math.log1p(n) / math.log1p(w.engagement_cap))


def final_scores(relevance: dict[int, float], posts: Mapping[int, Post | RankFields],
                 reference_ms: int, w: RankWeights) -> dict[int, dict[str, float]]:
    """Per id: the score and its parts (relevance, recency, engagement); ids without an entry
    in ``posts`` (deleted meanwhile) are left out.

    >>> s = final_scores({7: 1.0}, {7: RankFields(created_at=0)}, 0, RankWeights())
    >>> round(s[7]["score"], 3)
    1.1
    """
    out = {}
    for pid, rel in relevance.items():
        p = posts.get(pid)
        if p is None:
            continue
        rec = recency(p.created_at, reference_ms, w)
        eng = engagement(p, w)
        out[pid] = {"score": rel + w.recency_weight * rec + w.engagement_weight * eng,
                    "relevance": rel, "recency": rec, "engagement": eng}
    return out


def order(scores: dict[int, dict[str, float]]) -> list[int]:
    """Ids best first; ties broken by the larger (newer) id, so the order is deterministic."""
    return sorted(scores, key=lambda pid: (-scores[pid]["score"], -pid))

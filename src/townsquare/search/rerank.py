"""A learned re-ranking of the hybrid ranking below its head: logistic regression on where RRF put
each candidate, how near its embedding is to the query and to the feedback round's moved query,
which lists found it, and how far its time is from the time of the ranking's first posts.

    >>> import numpy as np
    >>> X = features(4, np.array([0.9, np.nan, 0.85, 0.8]), np.array([0.9, np.nan, 0.9, 0.7]),
    ...              {"lexical": [10, 11], "semantic": [10, 12, 13]}, [10, 11, 12, 13])
    >>> X.shape
    (4, 12)
    >>> m = RerankModel("test", np.eye(12)[2] * 10, -8.0, keep_top=1)
    >>> m.order([10, 11, 12, 13], X)[0]
    [10, 12, 11, 13]

Why: RRF ranks a candidate by its ranks in the lists, not by how near it is to what the query
is about. Deep in the ranking (below the first 50, down to the ~2,400th candidate: what pages
after the first and MAP@1000 read), two kinds of feedback from the fused ranking's first 50
posts separate the event's posts from the rest better than the rank does:

- in embedding space, the cosine to the query moved towards those posts (a second Rocchio
  round);
- in time, the hours from their median time (``hours_from``). An event's posts cluster in time,
  and a deep candidate far from when the first posts were made is mostly another event's that
  shares their words: temporal feedback, as in the time-based relevance models of microblog
  search (Keikha et al. 2011; Choi and Croft 2012).

On the tuning half of eval/search.py's events (2-fold by event, eval/fit_rerank.py), MAP@1000
against the fusion alone, with the cosines only / with the time too: English 0.718 -> 0.744 /
0.846, French 0.596 -> 0.636 / 0.723, Spanish 0.587 -> 0.634 / 0.748. How much the time adds
depends on how concentrated in time a query's relevant posts are, and on how few other events
share its words at that time: the eval's events are collections from different weeks, so
there it adds the most; in a live stream of concurrent events it adds less. The head stays as
fused (``keep_top``, 50): there the rank already carries the lexical evidence the cosines lack,
re-ranking it all lowered the mean nDCG@10 (0.878 -> 0.864), and a first page inside it skips
the re-ranking (eval/fit_rerank.py's ``FIRST_PAGE``).

The weights are fitted per embedding model (cosines are on its scale) by
``python eval/fit_rerank.py --write-results`` on the tuning half only, and shipped beside this
module (``rerank_model.json``); a model without fitted weights is not re-ranked.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["FEATURES", "HEAD", "LISTS", "MODEL_FILE", "RerankModel", "features", "hours_from",
           "model_for", "vector_features"]

MODEL_FILE = Path(__file__).with_name("rerank_model.json")
LISTS = ("lexical", "any_terms", "semantic", "feedback", "expansion")
# The moved query is the centroid of the fused ranking's first HEAD posts (one per near-duplicate
# group), and the cosines are also taken relative to their mean there. eval/fit_rerank.py's
# objective on the tuning half (keep_top 50): HEAD 10 0.6803, 20 0.6825, 50 0.6891, 100 0.6881,
# 200 0.6832; the query's own share of the moved query (0.1, ``feedback_query_weight``) against
# 0.0 or 0.3: within 0.0003.
HEAD = 50
FEATURES = ("log_position", "rrf_position", "cos_moved", "cos_query", "cos_moved_vs_head",
            "cos_query_vs_head") + tuple(f"in_{name}" for name in LISTS) + (
            "log_hours_from_head",)
HOUR_MS = 3_600_000


def features(n: int, cos_query: np.ndarray, cos_moved: np.ndarray,
             lists: Mapping[str, Sequence[int]], ranked: Sequence[int],
             hours_from_head: np.ndarray | None = None,
             member: Callable[[Sequence[int]], np.ndarray] | None = None) -> np.ndarray:
    """(n, len(FEATURES)) float64: one row per candidate of ``ranked`` (its first ``n``), in
    that order. ``cos_query``, ``cos_moved``: (n,) cosines to the query's and the moved query's
    vectors, NaN for a candidate with no vector (given the lowest cosine present: such a row
    is not re-ranked, ``RerankModel.order``). Positions are RRF's (0 first); ``rrf_position``
    is 60 / (60 + position), RRF's own shape. ``hours_from_head``: (n,) hours between each
    candidate's time and the fused head's median time (``hours_from``; None: 0 for all),
    as ``log_hours_from_head`` = log1p(hours). ``member``: ``_membership`` of ``ranked``
    when the caller has it (one sort of the candidates a query)."""
    pos = np.arange(n, dtype=np.float64)                                        # (n,)
    missing = np.isnan(cos_moved) | np.isnan(cos_query)                         # (n,)
    cols = []
    for cos in (cos_moved, cos_query):
        have = cos[~missing]
        low = float(have.min()) if len(have) else 0.0
        cols.append(np.where(missing, low, cos))                                # (n,)
    cm, cq = cols
    member = member or _membership(np.asarray(ranked[:n], dtype=np.int64))
    found = [member(lists.get(name, ())) for name in LISTS]                     # (n,) each
    hours = np.zeros(n) if hours_from_head is None else np.asarray(hours_from_head, float)[:n]
    return np.column_stack([np.log1p(pos), 60.0 / (60.0 + pos), cm, cq,
                            cm - cm[:HEAD].mean() if n else cm,
                            cq - cq[:HEAD].mean() if n else cq,
                            *found, np.log1p(hours)]).astype(np.float64)        # (n, 12)


def hours_from(created_at: np.ndarray, in_head: np.ndarray) -> np.ndarray:
    """(n,) hours between each candidate's ``created_at`` (n,) ms and the median time of the
    head's posts (``in_head``: (n,) bool; none: the median of all). Temporal feedback, as the
    moved query is in embedding space: an event's posts cluster in time, so the time of the
    fused ranking's first posts says when the query's event happened, and a deep candidate
    far from it is likely another event's that shares its words (the temporal relevance
    models of microblog search, Keikha et al. 2011; Choi and Croft 2012)."""
    t = np.asarray(created_at, dtype=np.float64)                                # (n,)
    if not len(t):
        return t
    head = t[np.asarray(in_head, dtype=bool)]
    return np.abs(t - float(np.median(head if len(head) else t))) / HOUR_MS


def _membership(ids: np.ndarray):
    """``member(some)``: (n,) bool, which of ``ids`` (unique) are in ``some``. One sort of
    ``ids``, then a binary search per list: cheaper than ``np.isin``'s sort of both, list after
    list, for a query's ~2,400 candidates and its five lists (~0.1 ms against ~1 ms)."""
    by = np.argsort(ids, kind="stable")
    sorted_ids = ids[by]

    def member(some: Sequence[int]) -> np.ndarray:
        out = np.zeros(len(ids), dtype=bool)
        some = np.asarray(some, dtype=np.int64)
        if len(ids) and len(some):
            at = np.minimum(np.searchsorted(sorted_ids, some), len(ids) - 1)
            out[by[at[sorted_ids[at] == some]]] = True
        return out
    return member


def vector_features(ranked: Sequence[int], found: np.ndarray, V: np.ndarray, qv: np.ndarray,
                    head: Sequence[int], query_weight: float,
                    lists: Mapping[str, Sequence[int]],
                    created_at: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(features, which candidates have a vector)`` for every candidate of ``ranked``, from
    the vectors found for them (``found``: (m,) ids in ``ranked``'s order, ``V`` (m, dim)):
    cosines to the query ``qv`` and to the query moved towards the fused head (``head``: its
    first posts, one per near-duplicate group), ``query_weight`` of it the query's own
    (Rocchio, a second round on the final fusion, as ``SearchConfig.feedback_query_weight``
    sets the first); ``created_at``: (n,) ms of ``ranked``'s posts, for the hours from the
    head's median time (None: 0)."""
    ids = np.asarray(ranked, dtype=np.int64)                                      # (n,)
    member = _membership(ids)
    here = member(found)
    head = np.asarray(head, dtype=np.int64)
    top = np.isin(found, head)                                                     # (m,)
    moved = (query_weight * qv + (1.0 - query_weight) * V[top].mean(axis=0)
             if top.any() else qv)                                                 # (dim,)
    moved = moved / max(float(np.linalg.norm(moved)), 1e-12)
    cos_q = np.full(len(ids), np.nan)
    cos_m = np.full(len(ids), np.nan)
    # einsum, not ``@``: BLAS would wake its thread pool for these small products, and its
    # threads spin on, taking a core from the next query's stages (bench/search.py's hybrid
    # p50 at 1.1M posts: 24 ms with ``@`` on the 2 cores)
    QM = np.stack([qv, moved]).astype(np.float32)                                  # (2, dim)
    cos_q[here], cos_m[here] = np.einsum("md,kd->km", V, QM)                       # (2, m)
    hours = None if created_at is None else hours_from(created_at, member(head))
    return features(len(ids), cos_q, cos_m, lists, ranked, hours, member), here


@dataclass(frozen=True)
class RerankModel:
    """Logistic regression over ``FEATURES`` for one embedding model: ``probability`` of a
    candidate being relevant; ``order`` keeps the first ``keep_top`` candidates as fused and
    sorts the rest by it. ``fitted``: how and on what the weights were chosen (for the record)."""

    embedder: str
    coef: np.ndarray                   # (len(FEATURES),)
    intercept: float
    keep_top: int = 20
    fitted: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        coef = np.asarray(self.coef, dtype=np.float64).reshape(-1)
        if coef.shape != (len(FEATURES),):
            raise ValueError(f"coef must have {len(FEATURES)} weights ({', '.join(FEATURES)}), "
                             f"got {coef.shape[0]}")
        if not np.isfinite(coef).all() or not math.isfinite(self.intercept):
            raise ValueError("coef and intercept must be finite")
        if self.keep_top < 0:
            raise ValueError(f"keep_top must be >= 0, got {self.keep_top}")
        object.__setattr__(self, "coef", coef)

    def probability(self, X: np.ndarray) -> np.ndarray:
        """(n,) P(relevant) for the rows of ``X`` (n, len(FEATURES))."""
        # einsum, not ``@``, as for the cosines (``vector_features``): no BLAS call, whose
        # thread pool could spin on after it (not measured here on its own: the spinning that
        # was, faiss's, is in ``VectorIndex.vectors_of``)
        z = np.einsum("nd,d->n", np.asarray(X, dtype=np.float64), self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def order(self, ranked: Sequence[int], X: np.ndarray,
              movable: np.ndarray | None = None) -> tuple[list[int], np.ndarray]:
        """``(ranked re-ordered, probabilities in ranked's order)``: the first ``keep_top`` as
        they were, the rest by probability, ties by their fused position (stable). Only the
        ``movable`` candidates (default all; the engine: those with a vector) move, among the
        places they hold: a post not embedded yet keeps its fused place, so the lag of the
        embedding stage never buries a fresh lexical match."""
        p = self.probability(X)                                                       # (n,)
        slots = np.arange(min(self.keep_top, len(ranked)), len(ranked))              # (r,)
        if movable is not None:
            slots = slots[np.asarray(movable, dtype=bool)[slots]]
        ids = np.asarray(ranked, dtype=np.int64)                                      # (n,)
        out = ids.copy()
        out[slots] = ids[slots[np.argsort(-p[slots], kind="stable")]]
        return out.tolist(), p

    def to_dict(self) -> dict:
        return {"embedder": self.embedder, "features": list(FEATURES),
                "coef": [round(float(c), 8) for c in self.coef],
                "intercept": round(float(self.intercept), 8), "keep_top": self.keep_top,
                "fitted": self.fitted}

    @classmethod
    def from_dict(cls, d: Mapping) -> RerankModel:
        if list(d.get("features", ())) != list(FEATURES):
            raise ValueError(f"re-ranking weights for features {d.get('features')}, this code "
                             f"computes {list(FEATURES)}: refit with eval/fit_rerank.py")
        return cls(d["embedder"], np.asarray(d["coef"], dtype=np.float64), float(d["intercept"]),
                   int(d.get("keep_top", 20)), dict(d.get("fitted", {})))


def save(models: Sequence[RerankModel], path: Path = MODEL_FILE) -> None:
    """Write ``models`` (one per embedding model) to ``path`` as JSON, by model name."""
    data = {m.embedder: m.to_dict() for m in sorted(models, key=lambda m: m.embedder)}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


@lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, RerankModel]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: RerankModel.from_dict(d) for name, d in data.items()}


def model_for(embedder: str | None, path: Path = MODEL_FILE) -> RerankModel | None:
    """The fitted re-ranking for embedding model ``embedder``; None when there is none."""
    if embedder is None:
        return None
    return _load(path).get(embedder)

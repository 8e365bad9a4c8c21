"""Ranking: reciprocal rank fusion of the lexical and semantic lists, then recency and engagement.

    >>> w = RankWeights()
    >>> rrf({"lexical": [10, 11], "semantic": [11, 12]}, w).best()[0]    # in both lists: first
    11

The score of a post in ``top`` mode (all weights in ``RankWeights``, documented and tunable):

    relevance  = RRF(d) / RRF_max                       in [0, 1]
    RRF(d)     = sum over lists L holding d of  w_L / (k + rank_L(d))     (ranks from 1)
                 lists: "lexical" (BM25, every query word), "any_terms" (BM25, any query word;
                 for queries of two or more words), "semantic" (cosine to the query embedding),
                 "feedback" (cosine to the query embedding moved towards the first round's top
                 posts), "expansion" (BM25 of posts holding any of the words those top posts
                 share, ``expansion_terms``): pseudo-relevance feedback, see ``search.engine``
    recency    = 0.5 ** (age_hours / half_life_hours)  in (0, 1]; age against the stream's newest post
    engagement = log1p(likes + 2 * reposts + replies + quotes) / log1p(engagement_cap), clipped to 1
    score      = relevance * (1 + recency_weight * recency + engagement_weight * engagement)

Why RRF: BM25 scores and cosine similarities live on unrelated scales; fusing by rank needs no
calibration and is the standard strong baseline for hybrid retrieval (Cormack et al., 2009).
A query in another language than the stream's has no post holding every one of its words: the
"lexical" list is empty, and the expansion list (the words of its best posts, in the stream's
language) is the lexical evidence it lacks, so its weight is multiplied by ``cross_language``.

Recency and engagement scale relevance by at most ``1 + recency_weight + engagement_weight``:
they order posts of similar relevance (the newest, most shared report of an event first) and
cannot lift a post far down the fusion, at rank 500 say, above a relevant one at rank 200, nor
a viral off-topic post above the event's posts. (As additive terms they did: beyond rank ~200
the RRF differences are smaller than the recency term.) Age is measured against the newest post
in the store, not the wall clock, so an archive (these datasets are from 2012-2019) ranks the
same way a live stream does.

The defaults were chosen on the tuning half of ``eval/search.py``'s events (split seed 11; see
``eval/tune_search.py`` and ``eval/results/tune_search.md``), never on its test half.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from townsquare.posts import Post
from townsquare.text.normalize import WORD, lower_strip_accents

_LINK = re.compile(r"https?://\S+")     # a link's slug is no word of the post


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
    """Fusion weights. The defaults were chosen on the tuning half of eval/search.py's events
    (seed 11) by eval/tune_search.py, with SearchConfig's feedback settings: there MAP@1000
    English 0.705 (x1.431 the reference BM25's), French 0.586, Spanish 0.549, nDCG@10 0.946,
    0.823, 0.861 (previous defaults: 0.592, 0.475, 0.388; 0.934, 0.867, 0.814).

    The rerun of 2026-12-06 (the expansion words come from the first round since 42feddf)
    moved ``semantic`` from 1.0 to 0.5: objective 0.632 -> 0.636. On the same tuning half the
    fast tier's hybrid (eval/search.py, ``fit-e5``) gains too, MAP@1000 English 0.579 -> 0.610,
    French 0.488 -> 0.495, Spanish 0.430 -> 0.432; nDCG@10 loses a little in both (e5: French
    0.827 -> 0.823, Spanish 0.874 -> 0.861), within the script's guard."""
    # RRF's damping constant. A larger k measured a little better in depth on the tuning half
    # (eval/tune_search.py --sweep rrf_k: objective 60 0.649, 250 0.654, 400 0.655), but it
    # widens what recency and engagement reorder within one list (~15% of k + rank: the first
    # ~10 ranks at 60, ~60 at 400), which the archive's MAP cannot see and a live stream's top
    # page would: kept at 60.
    rrf_k: int = 60
    lexical: float = 2.0              # weight of the BM25 list (all query words) in RRF
    any_terms: float = 0.25           # weight of the BM25 list of posts with ANY query word
    semantic: float = 0.5             # weight of the embedding list in RRF
    feedback: float = 3.0             # weight of the pseudo-relevance feedback list in RRF
    expansion: float = 1.0            # weight of the expansion-word BM25 list in RRF
    cross_language: float = 4.0       # the expansion's weight times this when "lexical" is empty
    recency_weight: float = 0.10
    half_life_hours: float = 24.0
    engagement_weight: float = 0.05
    engagement_cap: int = 10_000      # engagement at which the engagement term reaches 1

    def __post_init__(self):
        if self.rrf_k < 0:
            raise ValueError(f"rrf_k must be >= 0, got {self.rrf_k}")
        for name in ("lexical", "any_terms", "semantic", "feedback", "expansion",
                     "cross_language", "recency_weight", "engagement_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.half_life_hours <= 0:
            raise ValueError(f"half_life_hours must be > 0, got {self.half_life_hours}")
        if self.engagement_cap < 1:
            raise ValueError(f"engagement_cap must be >= 1, got {self.engagement_cap}")


def list_weights(lists: Mapping[str, list[int]], w: RankWeights) -> dict[str, float]:
    """Each list's RRF weight for this query: ``w``'s, the expansion's multiplied by
    ``cross_language`` when no post holds every query word (an empty "lexical" list); lists
    of other names weigh 1.

    >>> list_weights({"lexical": [], "expansion": [1]}, RankWeights(expansion=1, cross_language=3.0))
    {'lexical': 2.0, 'expansion': 3.0}
    """
    base = {"lexical": w.lexical, "any_terms": w.any_terms, "semantic": w.semantic,
            "feedback": w.feedback, "expansion": w.expansion}
    out = {name: base.get(name, 1.0) for name in lists}
    if "expansion" in out and not lists.get("lexical"):
        out["expansion"] *= w.cross_language
    return out


def rrf(lists: Mapping[str, Sequence[int]], w: RankWeights) -> Fused:
    """Normalized RRF score per id: 1.0 for an id ranked first in every list. One numpy pass:
    each list's contributions ``w_L / (k + rank)`` are summed per id by ``bincount``, in the
    lists' order, as a loop over them would add them."""
    weights = list_weights(lists, w)
    active = [name for name, ids in lists.items() if len(ids)]
    if not active:
        return Fused(np.zeros(0, np.int64), np.zeros(0))
    best = sum(weights[name] for name in active) / (w.rrf_k + 1) or 1.0
    ids = np.concatenate([np.asarray(lists[name], dtype=np.int64) for name in active])  # (m,)
    part = np.concatenate([weights[name] / (w.rrf_k + np.arange(1, len(lists[name]) + 1))
                           for name in active])                                        # (m,)
    if len(active) == 1:               # one list (a term or a phrase alone): sorted, not summed
        got = _sorted_unique(ids)
        if got is not None:
            return Fused(ids[got], part[got] / best)
    uniq, inv = np.unique(ids, return_inverse=True)
    return Fused(uniq, np.bincount(inv, weights=part, minlength=len(uniq)) / best)


class Fused(Mapping[int, float]):
    """``rrf``'s result as columns: ``ids`` (ascending, unique) and their ``score``; a mapping
    id -> score for the few reads by id, ``best`` for the ids best first.

    >>> f = rrf({"lexical": [5, 3], "semantic": [5]}, RankWeights())
    >>> f.best(), round(f[5], 3)
    ([5, 3], 1.0)
    """

    def __init__(self, ids: np.ndarray, score: np.ndarray):
        self.ids = ids                  # (n,) int64, ascending
        self.score = score              # (n,) float64

    def best(self, n: int | None = None) -> list[int]:
        """The first ``n`` ids (all: None) by score, ties broken by the larger (newer) id."""
        return self.ids[np.lexsort((-self.ids, -self.score))][:n].tolist()

    def __getitem__(self, pid: int) -> float:
        i = int(np.searchsorted(self.ids, pid))
        if i == len(self.ids) or self.ids[i] != pid:
            raise KeyError(pid)
        return float(self.score[i])

    def __iter__(self):
        return iter(self.ids.tolist())

    def __len__(self) -> int:
        return len(self.ids)


class RankColumns(NamedTuple):
    """Candidates' ranking fields as columns, one row per id: what ``final_scores`` reads. The
    tantivy index reads them from its fast fields with its hits (``search.lexindex``); ``of``
    builds them from ``Store.rank_fields``' rows or posts; ``join`` stacks chunks."""
    ids: np.ndarray               # (n,) int64
    created_at: np.ndarray        # (n,) int64, ms
    engagement: np.ndarray        # (n,) int64: likes + 2 * reposts + replies + quotes

    @classmethod
    def of(cls, fields: Mapping[int, Post | RankFields | tuple]) -> RankColumns:
        """From ``{id: Post or RankFields or (created_at, likes, reposts, replies, quotes)}``.

        >>> RankColumns.of({7: (5, 1, 2, None, 0)}).engagement.tolist()
        [5]
        """
        # one conversion in C: the rows as floats (None: NaN, then 0), exact for integers
        # below 2**53 (times in ms, counts)
        rows = [f if isinstance(f, tuple) else (f.created_at, f.like_count, f.retweet_count,
                                                 f.reply_count, f.quote_count)
                for f in fields.values()]
        a = np.nan_to_num(np.array(rows, dtype=np.float64).reshape(len(rows), 5))    # (n, 5)
        eng = a[:, 1] + 2 * a[:, 2] + a[:, 3] + a[:, 4]
        return cls(np.fromiter(fields.keys(), np.int64, len(rows)), a[:, 0].astype(np.int64),
                   eng.astype(np.int64))

    @classmethod
    def of_counts(cls, ids: np.ndarray, rows: np.ndarray) -> RankColumns:
        """From ``ids`` (n,) and their (n, 5) int64 created_at, likes, reposts, replies, quotes
        (the vector index's columns, ``VectorIndex.fields_of``), as ``of`` computes them.

        >>> RankColumns.of_counts(np.array([7]), np.array([[5, 1, 2, 0, 0]])).engagement.tolist()
        [5]
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(len(ids), 5)                # (n, 5)
        eng = rows[:, 1] + 2 * rows[:, 2] + rows[:, 3] + rows[:, 4]
        return cls(np.asarray(ids, dtype=np.int64), rows[:, 0].copy(), eng)

    @classmethod
    def join(cls, parts: Iterable[RankColumns]) -> RankColumns:
        """The chunks' rows as one set, by ascending id, each id once."""
        parts = list(parts)
        if not parts:
            return cls(*(np.zeros(0, np.int64) for _ in range(3)))
        if len(parts) == 1 and (got := _sorted_unique(parts[0].ids)) is not None:
            return cls(*(column[got] for column in parts[0]))
        ids = np.concatenate([p.ids for p in parts])
        uniq, first = np.unique(ids, return_index=True)
        return cls(uniq, np.concatenate([p.created_at for p in parts])[first],
                   np.concatenate([p.engagement for p in parts])[first])

    def missing(self, ids: np.ndarray) -> np.ndarray:
        """The ids of ``ids`` with no row here (rows by ascending id, as ``join`` leaves them:
        a binary search per id).

        >>> cols = RankColumns.join([RankColumns.of({3: RankFields(0), 9: RankFields(0)})])
        >>> cols.missing(np.array([1, 3, 10]))
        array([ 1, 10])
        """
        if not len(self.ids):
            return ids
        at = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return ids[self.ids[at] != ids]


def expansion_terms(texts: Iterable[str], share: Callable[[str], float], n: int,
                    max_share: float) -> list[str]:
    """The ``n`` words that best sum up ``texts`` (a query's best posts) against the stream:
    each word scores (posts of ``texts`` holding it) x log(1 / its share of all posts), the idea
    of relevance-model query expansion (RM3; Lavrenko and Croft, 2001; Abdul-Jaleel et al.,
    2004). Left out: links, words under three characters, numbers, and words in more than
    ``max_share`` of all posts (``share``: a word's share, 0 when absent). Ties by the word.

    >>> docs = ["Quake hits Nepal https://t.co/x1", "Nepal quake: rescue", "the rescue"]
    >>> expansion_terms(docs, {"quake": .01, "hits": .02, "nepal": .001, "rescue": .01,
    ...                        "the": .5}.get, 2, 0.05)
    ['nepal', 'quake']
    """
    held: Counter[str] = Counter()
    for text in texts:
        held.update(set(WORD.findall(lower_strip_accents(_LINK.sub(" ", text)))))
    scored = {}
    for word, count in held.items():
        if len(word) < 3 or word.isdigit():
            continue
        s = share(word) or 0.0
        if 0.0 < s <= max_share:
            scored[word] = count * math.log(1.0 / s)
    return sorted(scored, key=lambda word: (-scored[word], word))[:n]


class Scores(Mapping[int, dict[str, float]]):
    """``final_scores``'s result: per candidate id, its score and parts, held as numpy columns
    (``ids`` ascending, ``score``, ``relevance``, ``recency``, ``engagement``, one row per id);
    reading ``scores[pid]`` finds its row by binary search and builds that id's dict, so only
    the page's posts pay for one."""

    def __init__(self, ids: np.ndarray, columns: dict[str, np.ndarray],
                 created_at: np.ndarray | None = None):
        self.ids = ids                                                   # (n,) int64, ascending
        self.columns = columns                                           # name -> (n,) float64
        # (n,) int64 ms, each id's post time (not a part of its score: the re-ranking reads it)
        self.created_at = created_at

    def __getitem__(self, pid: int) -> dict[str, float]:
        r = int(np.searchsorted(self.ids, pid))
        if r == len(self.ids) or self.ids[r] != pid:
            raise KeyError(pid)
        return {name: float(col[r]) for name, col in self.columns.items()}

    def __iter__(self):
        return iter(self.ids.tolist())

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids: Sequence[int]) -> dict[int, dict[str, float]]:
        """``{pid: self[pid]}`` for ``ids`` (all of them scored), in one pass per column."""
        at = np.searchsorted(self.ids, np.asarray(ids, dtype=np.int64))
        names = list(self.columns)
        values = zip(*(self.columns[name][at].tolist() for name in names))
        return {pid: dict(zip(names, v)) for pid, v in zip(ids, values)}


def final_scores(relevance: Mapping[int, float],
                 fields: RankColumns | Mapping[int, Post | RankFields], reference_ms: int,
                 w: RankWeights) -> Scores:
    """Per id: the score and its parts (relevance, recency, engagement); ids without ranking
    fields (deleted meanwhile) are left out. One numpy pass over the candidates (a first page
    ranks thousands): ``relevance`` as ``rrf``'s ``Fused`` and ``fields`` as ``RankColumns``
    (by ascending id, as ``RankColumns.join`` leaves them) are joined by id without a step per
    candidate in Python; plain mappings are converted first.

    >>> s = final_scores({7: 1.0}, {7: RankFields(created_at=0)}, 0, RankWeights())
    >>> round(s[7]["score"], 3)
    1.1
    """
    if not isinstance(relevance, Fused):
        ids = np.fromiter(relevance.keys(), np.int64, len(relevance))
        by_id = np.argsort(ids)
        relevance = Fused(ids[by_id],
                          np.fromiter(relevance.values(), np.float64, len(relevance))[by_id])
    cols = fields if isinstance(fields, RankColumns) else RankColumns.join([RankColumns.of(fields)])
    if np.array_equal(cols.ids, relevance.ids):
        # the same ids in the same order (one list's hits with their own columns): no join
        ids, rel, created, engagement = cols.ids, relevance.score, cols.created_at, cols.engagement
    else:
        at = np.minimum(np.searchsorted(cols.ids, relevance.ids), max(len(cols.ids) - 1, 0))
        found = (cols.ids[at] == relevance.ids if len(cols.ids)
                 else np.zeros(len(relevance.ids), dtype=bool))
        ids, at = relevance.ids[found], at[found]                                    # (n,)
        rel, created, engagement = relevance.score[found], cols.created_at[at], cols.engagement[at]
    age_h = np.maximum(0.0, (reference_ms - created) / 3_600_000)
    rec = 0.5 ** (age_h / w.half_life_hours)
    eng = np.minimum(1.0, np.log1p(engagement.astype(np.float64)) / math.log1p(w.engagement_cap))
    score = rel * (1.0 + w.recency_weight * rec + w.engagement_weight * eng)
    return Scores(ids, {"score": score, "relevance": rel, "recency": rec, "engagement": eng},
                  created)


def order(scores: Mapping[int, dict[str, float]]) -> list[int]:
    """Ids best first; ties broken by the larger (newer) id, so the order is deterministic."""
    if isinstance(scores, Scores):
        ids = scores.ids
        return ids[np.lexsort((-ids, -scores.columns["score"]))].tolist()
    return sorted(scores, key=lambda pid: (-scores[pid]["score"], -pid))


def heads(ranked: list[int], roots: dict[int, int], n: int) -> list[int]:
    """The first ``n`` posts of ``ranked``, one per near-duplicate group (``roots``)."""
    top: list[int] = []
    seen: set[int] = set()
    for pid in ranked:
        root = roots.get(pid, pid)
        if root not in seen:
            seen.add(root)
            top.append(pid)
            if len(top) == n:
                break
    return top


def proven_prefix(scores: Scores, ranked: list[int], n: int, lists: Mapping[str, Sequence[int]],
                  cut: Iterable[str], w: RankWeights, depth: int, *, complete: bool) -> bool:
    """Whether the first ``n`` ids of ``ranked`` (``order(scores)``, ``scores`` from
    ``rrf(lists)``) are, in that order, the first ``n`` that the same lists read deeper would
    give. The lists in ``cut`` were read to their first ``depth`` ids and may hold more: a post
    not read from such a list is at rank ``depth + 1`` or below there, so it could gain at most
    ``w_L / (k + depth + 1)`` of RRF (the normalization stays: the same lists are non-empty).
    Proven when each of the first ``n`` was read from every cut list (its score is final) and
    no other post, read or not, could reach the n-th score with every unread part at its most:
    early termination, as in Fagin's threshold algorithm. ``complete`` False: ``ranked`` holds
    fewer posts than the caller needs (``n`` is all of them), proven only if no list was cut.

    >>> w, lists = RankWeights(), {"lexical": [1, 2, 3]}
    >>> s = final_scores(rrf(lists, w), {i: RankFields(created_at=0) for i in (1, 2, 3)}, 0, w)
    >>> proven_prefix(s, order(s), 1, lists, ["lexical"], w, 3, complete=True)
    True
    >>> proven_prefix(s, order(s), 3, lists, ["lexical"], w, 3, complete=True)  # a 4th could pass
    False
    """
    cut = [name for name in cut if len(lists.get(name, ()))]
    if not cut:
        return True
    if not complete or n == 0:
        return False
    weights = list_weights(lists, w)
    best = sum(weights[name] for name, ids in lists.items() if len(ids)) / (w.rrf_k + 1) or 1.0
    gap = {name: weights[name] / (w.rrf_k + depth + 1) / best for name in cut}
    col = scores.columns
    at = int(np.searchsorted(scores.ids, ranked[n - 1]))
    bar = float(col["score"][at]) * (1.0 - 1e-9)       # float slack: a tie is not proven
    if (1.0 + w.recency_weight + w.engagement_weight) * sum(gap.values()) >= bar:
        return False                   # a post read from no list could still pass
    (only,) = gap if len(gap) == 1 else (None,)
    if only is not None and len(scores.ids) == len(lists[only]) and all(
            name == only or not len(ids) for name, ids in lists.items()):
        # One list, each of its posts scored (a term or a phrase alone): every read score is
        # final, and the head (the first n by score) is proven when no other read post reaches
        # the bar, i.e. no more than n do. What the columns below decide, without them.
        return int((col["score"] >= bar).sum()) <= n
    factor = 1.0 + w.recency_weight * col["recency"] + w.engagement_weight * col["engagement"]
    unread = np.zeros(len(scores.ids))                                   # (m,)
    for name, g in gap.items():
        unread += np.where(_member(scores.ids, lists[name]), 0.0, g)
    head = _member(scores.ids, ranked[:n])                               # (m,)
    if unread[head].any():             # a head post's score is not final
        return False
    rest = ~head
    return not (col["score"][rest] + factor[rest] * unread[rest] >= bar).any()


def _sorted_unique(ids: np.ndarray) -> np.ndarray | None:
    """The order that sorts ``ids`` (m,) ascending, or None when an id comes twice: for one
    list or one chunk (a search's hits, each post once), an ``argsort`` does ``np.unique``'s
    work for less (50 ids: ~3.4 us, against ~7.8 with ``return_inverse``, then no ``bincount``).

    >>> _sorted_unique(np.array([5, 2, 9])).tolist(), _sorted_unique(np.array([5, 2, 5]))
    ([1, 0, 2], None)
    """
    by = np.argsort(ids)               # (m,); any sort: ids that tie fall back
    s = ids[by]
    return None if len(s) > 1 and (s[1:] == s[:-1]).any() else by


def _member(ids: np.ndarray, some: Sequence[int]) -> np.ndarray:
    """Which of ``ids`` (ascending, unique) are in ``some``: by binary search, which for the few
    hundred ids of a shallow read costs less than ``np.isin``'s sort."""
    some = np.asarray(some, dtype=np.int64)
    at = np.minimum(np.searchsorted(ids, some), max(len(ids) - 1, 0))
    out = np.zeros(len(ids), dtype=bool)
    if len(ids):
        out[at[ids[at] == some]] = True
    return out

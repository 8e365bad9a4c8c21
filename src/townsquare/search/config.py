"""Search's settings and the error for a request it cannot serve: ``SearchConfig`` (depths,
the similarity floor, pseudo-relevance feedback, the HNSW beams, ``RankWeights``), each default
with the tuning-half measurement that chose it, and the calibrated similarity floors.

    >>> SearchConfig().semantic_ef, SearchConfig().feedback_ef
    (125, 250)
    >>> SearchConfig(semantic_ef=0)
    Traceback (most recent call last):
    ...
    ValueError: semantic_ef must be >= 1 or None, got 0
"""
from __future__ import annotations

from dataclasses import dataclass, field

from townsquare.search.rank import RankWeights

__all__ = ["SIMILARITY_FLOORS", "UNCALIBRATED_DEPTH", "SearchConfig", "SearchError"]

# The cosine below which a semantic neighbour is almost never relevant, per embedding model:
# calibrated by ``eval/search.py`` on the tuning half of its events (the highest cosine under
# which fewer than one neighbour in ten is relevant; see ``calibrate_floor`` there). A model
# not listed keeps its nearest ``UNCALIBRATED_DEPTH`` neighbours instead, as before floors.
SIMILARITY_FLOORS: dict[str, float] = {"e5-small-int8": 0.825}
UNCALIBRATED_DEPTH = 200
# ``semantic_depth`` is 1,000, the page's depth. On the eval store (184,551 e5 vectors, 2 shared
# cores) ``VectorIndex.search`` takes 7.9 ms p50 / 12.7 ms p95 at k=1,000 against 2.7 / 7.2 at
# 500, and finds 94% of the exact top 1,000 (efSearch = k; no second search when the beam is
# exhausted; before those fixes k=1,000 took ~100 ms and found 40%). A first page (limit 20)
# went from 15.2 to 24.2 ms p50 with the depth (two such searches: semantic and feedback).
# Both walks now run on narrower beams (``semantic_ef``, ``feedback_ef``), chosen on the tuning
# half: a beam narrower than the depth stays nearer the query, which costs no MAP@1000 there
# (bench/search.py at 1.1M posts: the query's own walk 3.9 -> 1.1 ms, hybrid p50 16.1 -> 12.0).


class SearchError(ValueError):
    """A request that cannot be served as asked (bad mode, limit or cursor)."""


@dataclass(frozen=True, slots=True)
class SearchConfig:
    lexical_depth: int = 1000       # BM25 candidates per lexical list (every word, any word)
    # Without a semantic stage, the lexical lists are read this deep first (or twice the posts
    # the page needs), then 4x deeper each round until no post further down can reach the page
    # (``SearchEngine._top_early``): the page is the one ``lexical_depth`` gives, exactly, for
    # less reading (0: always read ``lexical_depth``). On bench/search.py's 150 lexical queries
    # at 1.1M posts (pages of 20), 50 proves 144 first pages in one round; 30 (so 42), 141;
    # 100 with four times the page (84), 146; 50 was the fastest of the three.
    lexical_first_depth: int = 50
    # A word (or an OR of words) with keyword conditions (``lang:``, ``from:``, ``filter:``) that
    # at least this share of the posts pass ranks its words alone and checks the conditions in
    # the store on their candidates (``LexicalIndex.candidate_plan``): the same hits, without
    # scoring every post of the words' intersection with the conditions. 0: never. A cost
    # setting, not a quality one: below it the expected reads grow as 1 / share.
    filter_min_share: float = 0.3
    semantic_depth: int = 1000      # at most this many neighbours per semantic list (see above)
    # semantic candidates below this cosine are dropped; None: the model's calibrated floor
    # (``SIMILARITY_FLOORS``), or its nearest ``UNCALIBRATED_DEPTH`` for a model without one
    min_similarity: float | None = None
    # The query's own HNSW walk's beam (None: as wide as ``semantic_depth``, widened until it
    # finds that many). Tuning half of eval/search.py (seed 11), eval/tune_search.py's objective
    # (--sweep semantic_ef): None 0.649, 500 0.650, 250 0.647, 125 0.655, 64 0.644 (mean
    # nDCG@10 0.878, 0.879, 0.874, 0.878, 0.866): no quality lost down to 125, and the walk is
    # on the query's path (bench/search.py, hybrid at 1.1M posts). Per language it moves the
    # top of the page: at 125 against None, nDCG@10 on the tuning half French 0.826 -> 0.813,
    # Spanish 0.862 -> 0.880; on the test half (read once, after the choice) French 0.954 ->
    # 0.929, Spanish 0.908 -> 0.911, English MAP@1000 0.787 -> 0.790.
    semantic_ef: int | None = 125
    common_share: float = 0.05      # words in more of the posts stay out of the any-word list
    # Pseudo-relevance feedback (``_feedback``). Defaults chosen on the tuning half of
    # eval/search.py (seed 11) with eval/tune_search.py, with RankWeights' (figures there).
    feedback_docs: int = 20         # first-round posts whose vectors move the query (0: off)
    feedback_query_weight: float = 0.1   # share of the query's own vector in the moved query
    feedback_depth: int = 1000      # at most this many neighbours of the moved query
    # The feedback walk's HNSW beam (None: as wide as ``feedback_depth``, as the query's own
    # walk). Tuning half of eval/search.py (seed 11), the objective of eval/tune_search.py
    # (--sweep feedback_ef): 1,000 (= depth) 0.636, 500 0.642, 250 0.649, 125 0.648, 64 0.625. A
    # narrower beam stays in the moved query's own region, which is where its relevant posts
    # are, and the walk costs less (184,551 posts: 2.5 -> 1.0 ms; bench/search.py's hybrid p50
    # at 1.1M posts 15.89 -> 14.97 ms, the two runs back to back).
    feedback_ef: int | None = 250
    # Tried on the same tuning half, not kept (2026-12-06, objective 0.6485 at the defaults):
    # - several moved queries: the top 50 posts in 3 groups (k-means on their vectors, farthest
    #   point seeds), one walk each, merged by best cosine: 0.630 (by rank, interleaved: 0.609;
    #   the 3 walks 2,000 deep: 0.644). One centroid of the top 20 stays best.
    # - the feedback from 50 posts instead of 20: 0.647.
    # - the expansion list started while the query's neighbours are searched, from the lexical
    #   lists' head alone: its words matched those of the fused head for 0 of bench/search.py's
    #   50 hybrid queries (29% of the words on average), so it could not be reused.
    # - the learned re-ranking (``rerank`` below), at its first head of 20 posts (objective
    #   0.6818 with the flags of which lists found a post): each list's own rank (its RRF term)
    #   in place of the flags, 0.6734; the lexical list's added to them, 0.6825 (0.6825 without);
    #   the moved query of the first feedback round instead of one moved to the final head,
    #   0.6726. The head of 50 since: 0.6891 (``rerank.HEAD``).
    expansion_docs: int = 50        # fused top posts whose words make the expansion list (0: off)
    expansion_terms: int = 10       # words of theirs searched (any of them, BM25)
    expansion_depth: int = 1000     # BM25 candidates of the expansion list
    # The depths, measured on the tuning half (eval/tune_search.py's objective, 0.632 at these
    # depths with the semantic weight 1.0 used then; 0.636 with 0.5, the default since):
    # expansion 500 / 2,000: 0.621 / 0.640; feedback 500 / 2,000: 0.614 / 0.643; semantic
    # 500 / 2,000: 0.629 / 0.637; lexical 500 / 2,000: 0.631 / 0.632. Deeper lists find a
    # little more for a longer HNSW walk or BM25 list on the query's path (k = 500 -> 1,000
    # added ~1.5 ms to an HNSW search at 1.1M posts): kept at 1,000.
    weights: RankWeights = field(default_factory=RankWeights)
    # The learned re-ranking below the hybrid ranking's head (``search.rerank``), for an
    # embedding model with fitted weights (off: the fusion alone). Fitted and chosen on the
    # tuning half by eval/fit_rerank.py (2-fold by event): objective 0.6546 -> 0.7909, MAP@1000
    # English 0.718 -> 0.846, French 0.596 -> 0.723, Spanish 0.587 -> 0.748, nDCG@10 unchanged
    # (the first 50 stay as fused); on the test half (eval/search.py, read after the choice)
    # English 0.790 -> 0.876, French 0.741 -> 0.846, Spanish 0.674 -> 0.781. Its features
    # before the time from the head's median (``rerank.hours_from``) was added gave 0.6893 on
    # the tuning half, 0.814 / 0.795 / 0.727 on the test half. It reads every candidate's vector
    # (~2,400 a query) and costs ~5 ms where it runs (bench/search.py at 1.1M posts; a page of
    # 1,000 at 184,551 posts 25.8 -> 31.3 ms p50); a page that lies inside the kept head skips
    # it (most first pages). Re-ranking only the fused top K gains little (2-fold, side scripts:
    # English 0.715-0.726 at K = 100-1,000): its gain is relevant posts from beyond the first
    # 1,000 brought into them.
    rerank: bool = True

    def __post_init__(self):
        if self.lexical_depth < 1 or self.semantic_depth < 0 or self.expansion_depth < 1:
            raise ValueError("lexical_depth and expansion_depth must be >= 1 and "
                             "semantic_depth >= 0")
        for name in ("lexical_first_depth", "feedback_docs", "feedback_depth", "expansion_docs",
                     "expansion_terms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("semantic_ef", "feedback_ef"):
            ef = getattr(self, name)
            if ef is not None and ef < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {ef}")
        if not 0.0 <= self.filter_min_share <= 1.0:
            raise ValueError(f"filter_min_share must be in [0, 1], got {self.filter_min_share}")
        if not 0.0 <= self.feedback_query_weight <= 1.0:
            raise ValueError(f"feedback_query_weight must be in [0, 1], got "
                             f"{self.feedback_query_weight}")
        if self.min_similarity is not None and not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in [-1, 1], got {self.min_similarity}")

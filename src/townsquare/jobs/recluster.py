"""Re-clustering stories on Dask: workers extract the posts' features, the driver clusters.

    townsquare jobs recluster --since 2020-01-01 --until 2020-01-08 [--workers 2] [--json]
    townsquare jobs recluster --since 2020-01-01 --until 2020-01-08 --out week.json
    townsquare jobs recluster --replace-live          # rebuild HOME/stories.pkl (every post)
    townsquare jobs recluster --since ... --until ... --scheduler tcp://10.0.0.5:8786

    >>> from townsquare.stories.cluster import StoryClusterer, StoryPost
    >>> from townsquare.stories.text import features
    >>> p = StoryPost(1, 0, "Bridge closed after the flood", "ann")
    >>> a, b = StoryClusterer(), StoryClusterer()
    >>> a.add(p) == add_with_features(b, p, features(p.text))
    True

What runs where, and why. The story clusterer (``stories.cluster``) is online: each post's
vector is weighed by the document frequencies of the posts before it, joins the centroid the
posts before it built, and hashtags are split against the vocabulary so far. Its result depends
on the order of the posts, so the clustering itself is one sequential pass on the driver, in the
same order as the in-process path. What does not depend on the stream is each post's feature
extraction (``stories.text.features``: URL, mention and retweet stripping, tokenizing, folding
accents, plurals, CamelCase hashtags, word pairs): that runs on the workers, chunk by chunk, and
the driver feeds the returned features to the clusterer in order (``add_with_features`` is
``StoryClusterer.add`` with the features given). The stories are therefore the in-process
path's, post for post (``tests/jobs/test_recluster.py``), but the speed-up is bounded: features
are about 15% of the clustering's time on one core (Amdahl), so this job mostly takes the
tokenizing off the driver and reads the store while workers tokenize; its value is a
range re-clustered without touching the live state, on the same machinery as the other jobs.

Two inputs:

* a time range (``cluster_range``): the posts with ``since <= created_at < until``, in
  ``(created_at, id)`` order (a re-clustering of history sees posts in the order they were
  written, not the order a backfill ingested them); the stories of the range are returned as
  ``townsquare stories --json`` prints them, and the live state (``stories.pkl``) is untouched;
* every post in event time (``cluster_live``): exactly what ``StoryState.rebuild`` computes,
  with the ``seq`` watermark, so it can replace ``stories.pkl`` (``--replace-live``).
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from townsquare.jobs.runner import JobError, chunks, cluster_client, n_workers, ordered_map
from townsquare.stories.cluster import StoryClusterer, StoryConfig, StoryPost
from townsquare.stories.state import StoryState, posts_in, read_since, story_post
from townsquare.store.base import Store

if TYPE_CHECKING:                      # distributed is an optional dependency
    from distributed import Client



@dataclass(slots=True)
class ReclusterResult:
    state: StoryState                     # the clusterer (and watermark) built by the job
    posts: int = 0                        # posts fed to the clusterer
    chunks: int = 0
    workers: int = 0
    seconds: float = 0.0
    since_ms: int | None = None
    until_ms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def stories(self, limit: int | None = None, key_posts: int = 3) -> list[dict[str, Any]]:
        """The stories as ``townsquare stories --json`` prints them (every one by default),
        by their volume in the range."""
        st, c = self.state, self.state.clusterer
        n = limit if limit is not None else max(1, len(c.clusters))
        if self.since_ms is None and self.until_ms is None:
            views = st.stories(active_only=False, limit=n, recent_ms=c.newest_ms + 1,
                               key_posts=key_posts)
        else:
            views = st.stories(limit=n, since_ms=self.since_ms, until_ms=self.until_ms,
                               key_posts=key_posts)
        return [v.to_dict(with_posts=True) for v in views]

    def to_dict(self) -> dict[str, Any]:
        return {"posts": self.posts, "chunks": self.chunks, "workers": self.workers,
                "stories": len(self.state.clusterer.stories()),
                "unassigned_share": round(self.state.unassigned_share(), 4),
                "seconds": round(self.seconds, 2)}


# --- on the workers ---------------------------------------------------------------------------
def features_chunk(texts: list[str]) -> list[Counter]:
    """On a worker: each text's story features (``stories.text.features``), in order."""
    from townsquare.stories.text import features
    return [features(t) for t in texts]


# --- on the driver ----------------------------------------------------------------------------
def add_with_features(c: StoryClusterer, p: StoryPost, feats: Counter) -> int | None:
    """``c.add(p)`` with ``feats == features(p.text)`` computed on a worker; returns the cluster
    id (None: no usable words)."""
    return c.add(p, feats)


def range_posts(store: Store, since_ms: int | None, until_ms: int | None) -> Iterator[StoryPost]:
    """The posts with ``since_ms <= created_at < until_ms`` in ``(created_at, id)`` order (an
    index range read of the store)."""
    for p in store.posts_between(since_ms, until_ms):
        yield story_post(p)


def live_posts(store: Store, last_seq: list[int]) -> Iterator[StoryPost]:
    """Every post in event time (``created_at``, then id), as ``StoryState.rebuild`` reads them
    (``stories.state.read_since``); the highest ``seq`` read goes into ``last_seq[0]`` (the
    watermark; a deleted post's seq counts too). The ids are read first, up to the watermark, so
    a post ingested meanwhile is left to the next refresh, not read twice."""
    order, last_seq[0], _n = read_since(store, 0)
    for page in posts_in(store, order):
        yield from page


def check_range(since_ms: int | None, until_ms: int | None) -> None:
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        raise JobError("--until must be after --since")


def cluster_in_process(posts: list[StoryPost], config: StoryConfig | None = None) -> StoryClusterer:
    """The reference: one process, ``StoryClusterer.add`` on each post, then the final
    maintenance ``StoryState.refresh`` runs once caught up."""
    c = StoryClusterer(config)
    c.run(posts)
    if posts:
        c.maintain()
    return c


def _cluster(store: Store, posts: Iterator[StoryPost], config: StoryConfig | None, *,
             client: Client | None, workers: int, chunk: int,
             progress: Callable[[int], None] | None) -> ReclusterResult:
    st = StoryState(store, None, config)
    res = ReclusterResult(state=st)
    t0 = time.perf_counter()
    with cluster_client(client, workers) as cl:
        res.workers = n_workers(cl)
        # Workers get the texts; the chunk's StoryPosts stay here for the clusterer.
        work = ((([p.text for p in ch],), ch) for ch in chunks(posts, chunk))
        for ch, feats in ordered_map(cl, features_chunk, work):
            for p, f in zip(ch, feats):
                add_with_features(st.clusterer, p, f)
            res.posts += len(ch)
            res.chunks += 1
            if progress:
                progress(len(ch))
    if res.posts:
        st.clusterer.maintain()           # as StoryState.refresh does once caught up
    res.seconds = time.perf_counter() - t0
    return res


def cluster_range(store: Store, since_ms: int | None, until_ms: int | None,
                  config: StoryConfig | None = None, *, client: Client | None = None, workers: int = 2,
                  chunk: int = 2_000,
                  progress: Callable[[int], None] | None = None) -> ReclusterResult:
    """Re-cluster the posts of ``[since_ms, until_ms)`` on a Dask cluster (``client``; a local
    one of ``workers`` processes when None). The store is only read."""
    check_range(since_ms, until_ms)
    res = _cluster(store, range_posts(store, since_ms, until_ms), config, client=client,
                   workers=workers, chunk=chunk, progress=progress)
    res.since_ms, res.until_ms = since_ms, until_ms
    return res


def cluster_live(store: Store, config: StoryConfig | None = None, *, client: Client | None = None,
                 workers: int = 2, chunk: int = 2_000,
                 progress: Callable[[int], None] | None = None) -> ReclusterResult:
    """Every post in event time, as ``StoryState.rebuild`` does; the result's ``state`` has the
    watermark, ready to ``save()`` over ``stories.pkl`` once given its path."""
    last = [0]
    res = _cluster(store, live_posts(store, last), config, client=client, workers=workers,
                   chunk=chunk, progress=progress)
    res.state.watermark = last[0]
    return res

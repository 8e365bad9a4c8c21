"""Deleted posts leave the story clusterer: ``forget`` removes them and every trace of them.

    >>> from townsquare.stories.cluster import StoryClusterer, StoryConfig, StoryPost
    >>> posts = {i: StoryPost(i, i * 60_000, t, f"u{i}") for i, t in enumerate([
    ...     "Bridge collapse on route 9", "Route 9 bridge collapse, zqxw7 tower",
    ...     "The route 9 bridge collapse blocks traffic"])}
    >>> c = StoryClusterer(StoryConfig(min_posts=2))
    >>> c.run(posts.values())
    >>> alive = {0: posts[0], 2: posts[2]}
    >>> forget(c, [1], lambda ids: {i: alive[i] for i in ids if i in alive})
    1
    >>> [sorted(s.post_ids) for s in c.stories()], "zqxw7" in c.vocab, c.df["zqxw7"]
    ([[0, 2]], False, 0)

The clusterer keeps no text per post (only counts: centroids, term counts, document frequencies,
the hashtag vocabulary), so a deletion cannot be subtracted post by post: each story that held
a deleted post is made again from its surviving members (read from the store through
``members``), and the difference between its old and new term counts is what the deleted posts
held: those words' document frequencies go down (counts by hash, which hold no text), and a
word no story holds any more leaves every table (the vocabulary, the hashtag splits, the
inverted index): nothing of a deleted post stays in the clusterer's state, which
``stories.state`` then writes to disk again. Kept apart from ``stories.cluster``
(the clustering itself) as a concern of its own.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from townsquare.stories.cluster import (
    Cluster,
    StoryClusterer,
    StoryPost,
    _empty,
    _norm,
    _truncate,
)
from townsquare.stories.text import features

__all__ = ["features_now", "forget"]


def forget(sc: StoryClusterer, ids: Iterable[int],
           members: Callable[[list[int]], dict[int, StoryPost]]) -> int:
    """Forget deleted posts; returns how many of ``ids`` it held. ``members(ids)`` gives the
    posts among ``ids`` that still exist (the store's): a member missing there was deleted
    too, and goes now as well. Story ids stay; a story left too small is no longer shown.

    Each story that lost a post is recomputed from its surviving members (their features
    under the current hashtag splits; the centroid under the current document frequencies).
    The difference between its old and new term counts is what the deleted posts held: those
    features lose their document frequency, and one that no story holds any more leaves the
    vocabulary and the hashtag splits. Cost: featurizing each touched story."""
    held = {int(i) for i in ids if int(i) in sc.assignment}
    if not held:
        return 0
    roots: set[int] = set()
    for pid in held:
        cid = sc.assignment[pid]
        while sc.clusters[cid].merged_into is not None:
            _empty(sc.clusters[cid])           # a state from before _merge emptied it
            cid = sc.clusters[cid].merged_into
        roots.add(cid)
    removed: Counter = Counter()                 # feature -> posts estimated to lose it
    touched, n_removed = [], 0
    for rid in sorted(roots):
        c = sc.clusters[rid]
        alive = members([p for p in c.post_ids if p not in held])
        lost = [p for p in c.post_ids if p not in alive]
        for pid in lost:
            sc.assignment.pop(pid, None)
        survivors = [alive[p] for p in c.post_ids if p in alive]
        feats = [features_now(sc, p.text) for p in survivors]
        kept: Counter = Counter()
        for f in feats:
            kept.update(f)
        for f, k in (c.terms - kept).items():    # a word twice in a post counts once
            removed[f] += min(k, len(lost))
        n_removed += len(lost)
        touched.append((c, survivors, feats, kept))
    sc.n_docs = max(0, sc.n_docs - n_removed)
    for f, k in removed.items():
        sc.df.subtract(f, k)
        if " " not in f and not f.startswith("#") and f in sc.vocab:
            sc.vocab_total -= min(k, sc.vocab[f])
            sc.vocab[f] -= k
    for c, survivors, feats, kept in touched:
        _recompute(sc, c, survivors, feats, kept)
    still = set()                                # removed features some story still holds
    for c in sc.clusters.values():
        if c.merged_into is None and c.terms:
            still.update(removed.keys() & c.terms.keys())
    for f in removed:
        if f in still:
            sc.df.at_least(f, 1)
            if f in sc.vocab:
                sc.vocab[f] = max(1, sc.vocab[f])
        else:
            sc.vocab_total -= max(0, sc.vocab.pop(f, 0))
            if f.startswith("#"):
                sc._segments.pop(f[1:], None)
    sc.vocab_total = max(0, sc.vocab_total)
    for t in [t for t, cids in sc._index.items() if not cids]:
        del sc._index[t]                     # a state from before empty entries went
    return len(held)


def features_now(sc: StoryClusterer, text: str) -> Counter:
    """``features(text)`` with its hashtags split as ``sc``'s vocabulary splits them now
    (``StoryClusterer._split_hashtags`` without counting the words again)."""
    feats = features(text)
    for f in [f for f in feats if f.startswith("#")]:
        for w in sc._segments.get(f[1:], ((), 0))[0]:
            feats[w] += 1
    return feats


def _recompute(sc: StoryClusterer, c: Cluster, survivors: list[StoryPost],
               feats: list[Counter], terms: Counter) -> None:
    """``c`` made again from ``survivors`` (its members left, in their order)."""
    c.post_ids = [p.id for p in survivors]
    c.authors = Counter(p.author if p.author is not None else f"#{p.id}" for p in survivors)
    c.langs = Counter(p.lang for p in survivors if p.lang)
    c.terms = terms
    step = sc.config.interval_ms
    c.timeline = Counter(p.created_at - p.created_at % step for p in survivors)
    if survivors:
        c.first_ms = min(p.created_at for p in survivors)
        c.last_ms = max(p.created_at for p in survivors)
    centroid: dict[str, float] = {}
    for f in feats:
        for t, x in sc.vector(f).items():
            centroid[t] = centroid.get(t, 0.0) + x
    c.centroid = _truncate(centroid, sc.config.centroid_terms)
    c.norm = _norm(c.centroid)
    if c.retired or not survivors:
        sc._unindex(c)
    else:
        sc._reindex(c)

"""The late stage: language id and near-duplicate linking, behind the lexical path.

Posts are searchable as soon as ``write_batch`` commits; this stage then catches up in ingest order
(``seq``), like Earlybird's late-arriving fields. Its lag (posts not processed yet, and the age of
the oldest) is in ``townsquare stats``.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> from townsquare.store.base import Stored
    >>> from townsquare.posts import Post
    >>> s = SQLiteStore(":memory:")
    >>> text = "Bridge on Route 9 closed after the flood, use the north detour"
    >>> _ = s.write_batch([Stored(Post(id=1212092628029698048, text=text, source="t").normalized()),
    ...     Stored(Post(id=1212092628029698049, text="RT @x: " + text, source="t").normalized())], [])
    >>> LateStage(s).run().linked
    1
    >>> s.dup_of(1212092628029698049)
    1212092628029698048

Linking rule: a post is a near-duplicate of an earlier-processed post when their estimated Jaccard
similarity over word 3-shingles is at least ``THRESHOLD`` (0.7); it is linked to that post's
original, so each flood forms a star around one original (the first one processed). A native
repost (``repost_of_id``) is linked to its original when the store has it. Shingles, signatures and
band buckets: ``townsquare.text.shingles``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from townsquare.ingest.language import LanguageIdentifier
from townsquare.store.base import Enrichment, Store
from townsquare.text.shingles import THRESHOLD, band_buckets, jaccard, post_shingles, signature


@dataclass(slots=True)
class LateStageResult:
    processed: int = 0
    languages_detected: int = 0
    linked: int = 0
    seconds: float = 0.0


class LateStage:
    """Catch the store up: detect missing languages, sketch, and link near-duplicates."""

    def __init__(self, store: Store, *, language: LanguageIdentifier | None = None,
                 batch_size: int = 2000, threshold: float = THRESHOLD):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.store = store
        self.language = language or LanguageIdentifier()
        self.batch_size = batch_size
        self.threshold = threshold

    def run(self, *, max_posts: int | None = None,
            progress: Callable[[int], None] | None = None) -> LateStageResult:
        """Process pending posts until none is left (or ``max_posts``); returns what it did."""
        res = LateStageResult()
        t0 = time.perf_counter()
        while max_posts is None or res.processed < max_posts:
            limit = self.batch_size if max_posts is None else min(self.batch_size,
                                                                  max_posts - res.processed)
            pending = self.store.pending_enrichment(limit)
            if not pending:
                break
            e = Enrichment(watermark=pending[-1].seq)
            need_lang = [p for p in pending if p.lang is None]
            if need_lang:
                for p, lang in zip(need_lang, self.language.detect([p.text for p in need_lang])):
                    e.langs[p.id] = lang
                res.languages_detected += len(need_lang)
            self._link(pending, e)
            self.store.write_enrichment(e)
            res.processed += len(pending)
            res.linked += len(e.links)
            if progress:
                progress(len(pending))
        res.seconds = time.perf_counter() - t0
        return res

    def _link(self, pending, e: Enrichment) -> None:
        sigs: dict[int, bytes] = {}
        for p in pending:
            sig = signature(post_shingles(p.text))
            if sig is not None:
                sigs[p.id] = sig
                e.signatures[p.id] = sig
                e.buckets[p.id] = band_buckets(sig)
        keys = sorted({(b, k) for bks in e.buckets.values() for b, k in enumerate(bks)})
        stored = self.store.bucket_members(keys)
        batch_members: dict[tuple[int, int], list[int]] = {}
        cand_sigs = self.store.signatures(sorted({i for ids in stored.values() for i in ids}
                                                 - set(sigs)))
        roots = self.store.roots(sorted(set(cand_sigs) | {p.repost_of_id for p in pending
                                                          if p.repost_of_id}))
        for p in pending:
            if p.id not in sigs:
                continue
            if p.repost_of_id and p.repost_of_id in roots and p.repost_of_id != p.id:
                original = roots[p.repost_of_id]
            else:
                original = self._best_match(p.id, sigs, e.buckets[p.id], stored, batch_members,
                                            cand_sigs, roots, e.links)
            if original is not None and original != p.id:
                e.links[p.id] = original
            for key in enumerate(e.buckets[p.id]):
                batch_members.setdefault(key, []).append(p.id)

    def _best_match(self, pid, sigs, buckets, stored, batch_members, cand_sigs, roots, links):
        best: tuple[float, int] | None = None
        sig = sigs[pid]
        seen: set[int] = set()
        for key in enumerate(buckets):
            for other in stored.get(key, []) + batch_members.get(key, []):
                if other == pid or other in seen:
                    continue
                seen.add(other)
                other_sig = sigs.get(other) or cand_sigs.get(other)
                if other_sig is None:
                    continue
                j = jaccard(sig, other_sig)
                if j >= self.threshold:
                    root = links.get(other) or roots.get(other, other)
                    # Highest similarity wins; ties go to the smallest original id (deterministic).
                    if best is None or (j, -root) > (best[0], -best[1]):
                        best = (j, root)
        return best[1] if best else None

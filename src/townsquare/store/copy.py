"""Copy a whole store to another backend (embedded <-> PostgreSQL) without loss, and compare two.

    >>> from townsquare.store import open_store
    >>> from townsquare.store.base import Stored
    >>> from townsquare.posts import Post
    >>> src, dst = open_store(":memory:"), open_store(":memory:")
    >>> _ = src.write_batch([Stored(Post(id=1212092628029698048, text="Flood on Main St",
    ...                                  source="demo").normalized(), "a.csv", 2)], [])
    >>> copy_store(src, dst).posts, compare(src, dst)
    (1, [])

Everything goes through the ``Store`` interface (``townsquare.store.base``), so any pair of
backends works, and in batches of ``batch`` posts so memory stays bounded on large stores.
What is copied, in this order, and why the order:

1. **Tombstones** first (``dst.delete``, which records an id even if it was never stored): no
   copied post can then resurrect a deleted one, and in ``into_nonempty`` mode posts that SRC
   deleted are removed from DST too.
2. **Opt-outs.**
3. **Posts**, in SRC's ingest order (``posts_since``), each with one ``Stored`` per source in
   ``sources_of`` (that source's labels, file and line; the language follows with the
   enrichment, see ``_record`` for why). The record of the post's primary
   ``source`` goes last in its batch because, for a new id, the batch's last record of it writes
   the post row (and an upsert never changes ``source`` afterwards). With each batch: the
   near-duplicate links (``roots``), MinHash signatures with their LSH buckets rebuilt by
   ``band_buckets`` (``write_enrichment``), and the embeddings (``vectors_of`` ->
   ``write_vectors``) under the post's *new* seq, which DST assigns in write order.
4. **Quarantine.**

Watermarks: DST re-numbers ``seq`` (and assigns it in id order within one write), so a batch never
mixes posts SRC's late stage (or embedding step) had processed with posts still pending there;
after each all-processed batch, DST's watermark moves to the batch's highest new seq. Posts
pending in SRC stay pending in DST. When DST already held pending posts (``into_nonempty``), its
watermarks are left alone: moving them would skip DST's own pending posts, while leaving them
only means the copied posts get processed again (idempotent).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from townsquare.posts import Post
from townsquare.store.base import Enrichment, Store, Stored
from townsquare.text.shingles import band_buckets

# ``quarantine_items`` only takes a limit (no cursor), so the quarantine is read in one call.
_ALL = 1 << 62
_MAX_DIFFS = 50

Progress = Callable[[str, int, "int | None"], None]   # (kind, advance, total or None)


class CopyError(ValueError):
    """The copy cannot start (DST holds posts, or vectors of another model)."""


@dataclass(slots=True)
class CopyResult:
    """What was copied, per kind (``posts_*`` split as DST's ``write_batch`` counted them)."""

    posts: int = 0
    posts_inserted: int = 0
    posts_updated: int = 0
    posts_unchanged: int = 0
    sources: int = 0
    tombstones: int = 0
    opt_outs: int = 0
    quarantined: int = 0
    signatures: int = 0
    links: int = 0
    vectors: int = 0
    late_stage_watermark: int = 0    # DST's, after the copy
    embedding_watermark: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def watermarks(store: Store) -> tuple[int, int]:
    """``(late stage, embedding)`` watermarks: the highest seq each step has processed."""
    late = int(store.late_stage_lag()["processed_through_seq"])
    return late, store.embedded_through()


def copy_store(src: Store, dst: Store, *, batch: int = 2000, into_nonempty: bool = False,
               progress: Progress | None = None) -> CopyResult:
    """Copy everything in ``src`` into ``dst``; see the module docstring. Raises ``CopyError``
    when DST holds posts (unless ``into_nonempty``: then it merges, upserts being idempotent) or
    vectors of another embedding model."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    t0 = time.perf_counter()
    note = progress or (lambda kind, n, total: None)
    held = dst.count()
    if held and not into_nonempty:
        raise CopyError(f"the destination already holds {held} posts; copy into an empty store, "
                        f"or pass --into-nonempty to merge into it")
    model = src.embed_model()
    dst_model = dst.embed_model()
    if model is not None and dst_model not in (None, model):
        # A store holds one model's vectors (write_vectors refuses another): say so up front.
        raise CopyError(f"the destination holds {dst_model} vectors and the source {model} "
                        f"vectors; reset the destination's vectors first")
    res = CopyResult()

    # 1. Tombstones: before any post, so none comes back (write_batch skips deleted ids).
    gone = sorted(src.deleted_ids())
    note("tombstones", 0, len(gone))
    for i in range(0, len(gone), batch):
        chunk = gone[i:i + batch]
        dst.delete(chunk)
        res.tombstones += len(chunk)
        note("tombstones", len(chunk), None)
    del gone

    # 2. Opt-outs (author keys already normalized by author_key in SRC).
    authors = sorted(src.opted_out())
    if authors:
        res.opt_outs = len(authors)
        dst.opt_out(authors)

    # 3. Posts with provenance, near-duplicate state and vectors.
    late_src, emb_src = watermarks(src)
    # Advance a DST watermark only when nothing is pending behind it (see the module docstring).
    move_late = dst.late_stage_lag()["pending_posts"] == 0
    move_emb = model is not None and dst.embedding_pending() == 0
    if model is not None and dst_model is None:
        dst.write_vectors(model, [], 0)      # records the model even if SRC holds no vector yet
    note("posts", 0, src.count())
    for rows in _batches(src, batch, late_src, emb_src):
        ids = [pid for pid, _ in rows]
        done_late = rows[0][1] <= late_src      # the whole batch is on one side (see _batches)
        done_emb = rows[0][1] <= emb_src
        new_seq, langs = _write_posts(src, dst, ids, res)
        res.links += _write_enrichment(src, dst, ids, langs, res,
                                       max(new_seq.values(), default=0)
                                       if done_late and move_late else 0)
        vecs = src.vectors_of(ids)
        if vecs or (done_emb and move_emb):
            fallback = dst.max_seq()   # a post DST already had unchanged keeps its own seq
            assert model is not None
            dst.write_vectors(model, [(pid, new_seq.get(pid, fallback), vecs[pid])
                                      for pid in ids if pid in vecs],
                              max(new_seq.values(), default=0) if done_emb and move_emb else 0)
            res.vectors += len(vecs)
        note("posts", len(ids), None)

    # 4. Quarantine, written in batches (it is read in one call: the interface has no cursor).
    items = src.quarantine_items(limit=_ALL)
    note("quarantine", 0, len(items))
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        res.quarantined += dst.write_batch([], chunk).quarantined
        note("quarantine", len(chunk), None)
    res.late_stage_watermark, res.embedding_watermark = watermarks(dst)
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def _batches(src: Store, batch: int, late: int, emb: int) -> Iterator[list[tuple[int, int]]]:
    """``(id, seq)`` of SRC's posts in ingest order, in batches that never straddle a watermark:
    every post of a batch is on the same side of ``late`` and of ``emb``."""
    after = 0
    while True:
        rows = src.posts_since(after, batch)
        if not rows:
            return
        side = (rows[0][1] <= late, rows[0][1] <= emb)
        out = []
        for pid, seq, _text in rows:
            if (seq <= late, seq <= emb) != side:
                break     # the rest comes again in the next page
            out.append((pid, seq))
        after = out[-1][1]
        yield out


def _write_posts(src: Store, dst: Store, ids: Sequence[int],
                 res: CopyResult) -> tuple[dict[int, int], dict[int, str]]:
    """Write the posts ``ids`` of SRC with one record per source. Returns each written post's
    seq in DST (posts DST already had, unchanged, keep theirs and are not in it) and the
    languages, which are written with the enrichment (see ``_record``)."""
    posts = src.posts_by_id(ids)
    records: list[Stored] = []
    langs: dict[int, str] = {}
    for pid in ids:
        post = posts.get(pid)
        if post is None:
            continue      # deleted since posts_since read it
        if post.lang is not None:
            langs[pid] = post.lang
        sources = src.sources_of(pid)
        primary = sources.pop(post.source, None)
        for name, where in sorted(sources.items()):
            records.append(_record(post, name, where))
        # Last: for a new id the batch's last record writes the row, so `source` stays the
        # primary one. A post without provenance (integrity_check reports those) gets one.
        records.append(_record(post, post.source, primary or {}))
        res.sources += len(sources) + 1
    before = dst.max_seq()
    r = dst.write_batch(records, [])
    res.posts += len(posts)
    res.posts_inserted += r.inserted
    res.posts_updated += r.updated
    res.posts_unchanged += r.unchanged
    # The seqs DST just assigned: they follow `before` (DST has one writer at a time, and a
    # concurrent one only adds ids that are not ours).
    wanted, new_seq = set(ids), {}
    while rows := dst.posts_since(before, max(len(ids), 100)):
        new_seq.update((pid, seq) for pid, seq, _ in rows if pid in wanted)
        before = rows[-1][1]
    return new_seq, langs


def _record(post: Post, source: str, where: dict[str, Any]) -> Stored:
    # Not normalized() again: the stored text is already unescaped, and a second pass would turn
    # a literal "&lt;" in a post into "<".
    # Without its language: the store's per-source content hash (what makes re-ingesting a file a
    # no-op) covers the record as the source gave it, and most sources give no language (the
    # late stage found it). Written so, re-ingesting such a source into the copy finds its
    # records unchanged, as in the original; the language follows in write_enrichment, which
    # sets it where the post has none.
    p = dataclasses.replace(post, source=source, lang=None,
                            labels=dict(where.get("labels") or {}))
    return Stored(p, where.get("file"), where.get("line"))


def _write_enrichment(src: Store, dst: Store, ids: Sequence[int], langs: dict[int, str],
                      res: CopyResult, watermark: int) -> int:
    """Languages, near-duplicate links and MinHash signatures (LSH buckets rebuilt from them)
    of ``ids``; moves DST's late-stage watermark to ``watermark`` (0: leave it). Returns the
    links."""
    sigs = src.signatures(ids)
    links = {pid: root for pid, root in src.roots(ids).items() if root != pid}
    if sigs or links or langs or watermark:
        dst.write_enrichment(Enrichment(
            langs=langs, signatures=sigs,
            buckets={pid: band_buckets(sig) for pid, sig in sigs.items()},
            links=links, watermark=watermark))
    res.signatures += len(sigs)
    return len(links)


# --- verification ------------------------------------------------------------------------------
def compare(src: Store, dst: Store, *, batch: int = 2000, limit: int = _MAX_DIFFS) -> list[str]:
    """Differences between two stores, as sentences (empty: the same content). Compares posts
    field by field, provenance, near-duplicate roots, signatures, vector bytes, tombstones,
    opt-outs, quarantine, the embedding model and how many posts each step has pending. Stops
    after ``limit`` differences. Streams the posts: memory stays bounded."""
    diffs: list[str] = []

    def add(msg: str) -> bool:
        diffs.append(msg)
        return len(diffs) >= limit

    for msg in _compare_posts(src, dst, batch):
        if add(msg):
            return diffs + ["... more differences not listed"]
    for name, a, b in (("tombstones", src.deleted_ids(), dst.deleted_ids()),
                       ("opt-outs", src.opted_out(), dst.opted_out()),
                       ("quarantine", {_q(q) for q in src.quarantine_items(limit=_ALL)},
                        {_q(q) for q in dst.quarantine_items(limit=_ALL)})):
        for what, items in (("only in the source", a - b), ("only in the destination", b - a)):
            if items and add(f"{name} {what} ({len(items)}): "
                             f"{', '.join(map(str, sorted(items)[:5]))}"):
                return diffs
    checks = [("embedding model", src.embed_model(), dst.embed_model()),
              ("posts pending the late stage", src.late_stage_lag()["pending_posts"],
               dst.late_stage_lag()["pending_posts"]),
              ("posts pending embedding", src.embedding_pending(), dst.embedding_pending())]
    for name, a, b in checks:
        if a != b and add(f"{name}: {a!r} in the source, {b!r} in the destination"):
            return diffs
    return diffs


def _q(q: Any) -> tuple:
    return (q.file, q.line, q.source, q.reason, q.raw)


def _compare_posts(src: Store, dst: Store, batch: int) -> Iterator[str]:
    """Merge-join both stores' posts in id order; side data is compared a batch at a time."""
    a_it, b_it = src.iter_posts(batch), dst.iter_posts(batch)
    a, b = next(a_it, None), next(b_it, None)
    common: list[int] = []
    while a is not None or b is not None:
        if b is None or (a is not None and a.id < b.id):
            yield f"post {a.id} only in the source"
            a = next(a_it, None)
        elif a is None or b.id < a.id:
            yield f"post {b.id} only in the destination"
            b = next(b_it, None)
        else:
            for f in dataclasses.fields(Post):
                x, y = getattr(a, f.name), getattr(b, f.name)
                if x != y:
                    yield f"post {a.id}: {f.name} {x!r} in the source, {y!r} in the destination"
            common.append(a.id)
            if len(common) >= batch:
                yield from _compare_side(src, dst, common)
                common = []
            a, b = next(a_it, None), next(b_it, None)
    if common:
        yield from _compare_side(src, dst, common)


def _compare_side(src: Store, dst: Store, ids: list[int]) -> Iterator[str]:
    for pid in ids:
        x, y = src.sources_of(pid), dst.sources_of(pid)
        if x != y:
            yield f"post {pid}: sources {x!r} in the source, {y!r} in the destination"
    for name, method in (("near-duplicate root", "roots"), ("signature", "signatures"),
                         ("vector", "vectors_of")):
        x, y = getattr(src, method)(ids), getattr(dst, method)(ids)
        for pid in ids:
            if x.get(pid) != y.get(pid):
                yield (f"post {pid}: {name} differs ({_short(x.get(pid))} in the source, "
                       f"{_short(y.get(pid))} in the destination)")


def _short(v: Any) -> str:
    return f"{len(v)} bytes" if isinstance(v, (bytes, bytearray)) else repr(v)


__all__ = ["CopyError", "CopyResult", "compare", "copy_store", "watermarks"]

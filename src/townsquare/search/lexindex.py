"""A tantivy index beside the store: the lexical arm of search (``top`` by BM25, ``latest`` by
time) with the query's operators, on large stores.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> from townsquare.store.base import Stored
    >>> from townsquare.posts import Post
    >>> from townsquare.query import parse
    >>> s = SQLiteStore(":memory:")
    >>> _ = s.write_batch([Stored(Post(id=1212092628029698048, text="Flood on Main St", source="t").normalized())], [])
    >>> lx = LexicalIndex(s, None)
    >>> lx.refresh()
    1
    >>> lx.top(parse("flood main"), 10)
    ([(1212092628029698048, ...)], 1)

Why: SQLite's FTS5 scores every match of a query before it can sort by BM25, so a common word
costs time in proportion to its matches (measured: ~40 ms for "hurricane" at 184k posts, several
times that at 1M). tantivy keeps per-block maximum scores and skips blocks that cannot reach the
top k (block-max WAND), so the same query costs a few milliseconds at any size. FTS5 stays the
source of truth and the path for what the index cannot answer; this index is derived, like the
vector index: it catches up from the store's ``seq`` order (``refresh``), lives in
``<home>/lexical/`` and is rebuilt when missing or of another layout (``SCHEMA`` in its
``townsquare.json``; the rebuild reports progress like any catch-up: ``ingest --json``).

Deletions: ``refresh`` also reads the store's deletions log after its own watermark there and
deletes those posts' documents, so search stops proposing them at once. tantivy only marks a
deleted document, though: its words stay in the segment files until the segment is rewritten.
``compact`` rewrites the whole index from the store when anything was deleted since the last
rewrite (tantivy's Python API has no forced merge), then removes the old segment files: the
maintenance step (``services.maintenance``) runs it.

    >>> _ = s.delete([1212092628029698048])
    >>> lx.refresh(), lx.top(parse("flood"), 10), lx.purge_pending
    (1, ([], 0), 1)
    >>> lx.compact()["rebuilt"], lx.purge_pending
    (True, 0)

What it holds (``build_schema``): the text, and the fields operators filter by (language,
author, tags, ``filter:`` flags, ``created_at``, ``id``) and search ranks by (``created_at`` and
the counts, as fast-field columns), so that a query of words and operators is answered here
alone: ``lexquery`` compiles it, ``search`` returns the top k with each hit's ranking fields, and
no SQL runs before the page's posts are read. A hit's id and time are read from copies of those
columns passed through ``scramble`` (a multiplication mod 2^64, undone on read): in a stream's
order tantivy stores them as lines per block, whose metadata tantivy-py opens on every read
(~65-80 us a column for 20 hits at 1.1M posts, against ~5 us scrambled: ``bench/search.py``'s
column table). A first page reads both once: ~0.1-0.17 ms of a 1.5-2.7 ms lexical query
(measured in one process, each query's runs interleaved with reads of the plain columns: p50
term 1.64 -> 1.53 ms, operators 2.72 -> 2.55; the same pages and depths for all 150 queries of
``bench/search.py``). The cost is at indexing: two more columns, 16 bytes a post (109 -> 126 MB
at 1.1M posts), and 9-13% fewer posts/s (``bench/lexindex.py``, three runs back to back: a
fresh index 30,600 -> 26,600 posts/s in the first); the server's search freshness did not move
beyond noise (``bench/serve.py``).

What does not compile (counts, ``url:``, geo, ...) is checked in SQL on over-fetched candidates
(``LexicalIndex.checked``), falling back to FTS5 when too few survive. So are the keyword
conditions of a word (or an OR of words) that most posts pass (``candidate_plan``): the word
ranked alone by block-max WAND, its best posts checked, the query compiled whole when too few
pass (``flood lang:en`` at 1.1M posts: ~2.2 -> ~1.2 ms, measured in one process against the
plan off). A snapshot (``seq`` at most the cursor's) is a range on the ``seq`` column, applied
only when the index holds newer posts.

Freshness of the fields: a document is written when its post's text is (``seq``), and once more
when the late stage has given the post its language (``settled_through``); until then ``lang:``
stays a SQL check. The counts, and fields that a later record of the same post with the same
text fills in (an author, links), stay as first indexed until its text changes or the index
is rebuilt: they can lag the store for the ranking's engagement term and for ``filter:`` and
``from:`` on such merged posts (the store bumps ``seq`` only for a new text). Near-duplicate groups are not kept here (they change as posts
arrive): the engine reads them for the posts it shows.

Tokens: lowercase and ASCII folding over a simple word tokenizer, the same as FTS5's ``unicode61
remove_diacritics 2`` for Latin scripts (``index_tokens``). The query side is tokenized by
``index_tokens`` in Python to build term and phrase queries directly: user text never reaches
tantivy's query parser.

Phrases are read from the words' positions. Tried and not kept (2026-12-07): each two
neighbouring words indexed as one term, a phrase searched by its pairs (Elasticsearch's
``index_phrases``). A phrase's top 50 at 1.1M posts took ~0.03 ms instead of ~0.3 (p50; the
same matches, tested), and ``bench/search.py``'s phrase ratio went 1.76 -> 1.48x tantivy
(1.78 -> 1.24x in its interleaved pass). But a fresh index took posts 2x slower (48,930 ->
24,649/s, ``bench/lexindex.py``; the pairs' many terms, in Python and in tantivy), the index
grew 109 -> 190 MB, and at 5,700 posts/s the server's search freshness went from p50 326 ms /
p99 1.96 s to 2.79 s / 7.16 s, its tantivy refreshes from p50 89 to 838 ms (``bench/serve.py``,
the same machine minutes apart): a stream's freshness is worth more than phrase latency.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from townsquare import query as q
from townsquare.search.lexquery import (Compiled, compile_tantivy, index_tokens, split_filters,
                                        text_atoms, uses_lang)
from townsquare.search.rank import RankColumns
from townsquare.store.base import IndexRow, Store

_PAGE = 20_000
SCHEMA = 4          # bump when the fields change: an index of another layout is rebuilt
OVERFETCH = 2       # candidates read per needed hit of a query with a residual the store checks
# The candidate plan (``candidate_plan``) reads at most this many of the words' best posts. The
# store checks ~2.5 us a candidate, while tantivy scores a word's intersection with its
# conditions in ~1-3 ms at any depth: measured on bench/search.py's 1.1M posts (2026-12-07,
# p50 of 20 runs, five queries of words and keyword conditions), the plan wins at 100 reads
# (e.g. `flood lang:en` 2.04 -> 0.69 ms), splits at ~400 (3 faster, 4 slower) and loses at
# ~2,000 (a hybrid query's lists, 1,000 deep: 3.09 -> 7.05 ms). First pages read 100-250.
PLAN_MAX_READS = 256
# Semantic candidates are checked against a query's words here rather than in the store
# (``among``) when those words are in at least this many posts: the store's check costs ~2.5 ms
# plus ~0.3 ms per 1,000 posts holding them, this index's ~4.5 ms per 1,000 candidates (measured
# on bench/search.py's 1.1M posts, 2026-12-08: "hurricane", 129,000 posts, 39 -> ~5 ms).
AMONG_MIN_MATCHES = 10_000
_COUNTS = ("likes", "retweets", "replies", "quotes")     # Store.rank_fields' order
_MIXED = ("id_mixed", "created_mixed")                   # id, created_at through ``scramble``
__all__ = ["SCHEMA", "Hits", "LexicalIndex", "build_schema", "index_tokens", "scramble",
           "unscramble"]


def build_schema():
    """The index's fields. Integers are fast fields (columns read per hit without touching the
    stored document): ``id`` (``since_id:``/``max_id:`` and deletes), ``seq`` (the snapshot
    check), ``created_at`` (time ranges and ``latest`` order) and the four counts search ranks
    by; ``id_mixed`` and ``created_mixed`` are the same id and time through ``scramble``, the
    columns a hit's values are read from (why: ``scramble``). Keywords (``raw``, lowercased
    here): ``lang``, ``author``, ``tags`` (``#tag``, ``@handle``, ``$TAG``) and ``flags`` (the
    ``filter:`` names true of the post)."""
    import tantivy
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", stored=False, indexed=True, fast=True)
    sb.add_integer_field("seq", stored=False, indexed=True, fast=True)
    sb.add_integer_field("created_at", stored=False, indexed=True, fast=True)
    for name in _MIXED:
        sb.add_integer_field(name, stored=False, indexed=False, fast=True)
    for name in _COUNTS:
        sb.add_integer_field(name, stored=False, indexed=False, fast=True)
    sb.add_text_field("text", stored=False, tokenizer_name="folded")
    for name in ("lang", "author", "tags", "flags"):
        sb.add_text_field(name, stored=False, tokenizer_name="raw", index_option="basic")
    return sb.build()


@dataclass(slots=True)
class Hits:
    """One search of the index: ids best first (or newest first), their BM25 scores (``rank``
    order) or ``created_at`` (``time`` order), the ranking fields of each as columns (None when
    not asked for), and how many posts match the query (when counted)."""
    ids: list[int]
    keys: list
    fields: RankColumns | None = None
    total: int = 0


# Knuth's multiplicative hashing constant (2^64 / the golden ratio, made odd): an odd number
# is invertible mod 2^64, so multiplying by it is a bijection on 64-bit words.
_MUL = np.uint64(0x9E3779B97F4A7C15)
_MUL_INV = np.uint64(pow(int(_MUL), -1, 2**64))


def scramble(values) -> np.ndarray:
    """(n,) int64 -> (n,) int64: each value times an odd constant, mod 2^64 (a bijection that
    ``unscramble`` inverts). Why: tantivy stores a column whose values follow the document
    order closely (ids and times, in a stream's order) with its blockwise-linear codec, and
    every ``fast_field_values`` call opens that codec's metadata for every segment (~2,000
    blocks at 1.1M posts: ~70 us a call, however few hits are read). Scrambled, neighbouring
    values land far apart, no line fits a block, and tantivy bitpacks the column, which opens
    in constant time (~5 us for 20 hits; ``bench/search.py``'s column table). One multiplication,
    not a full mixer, because a query undoes it on every hit list: one numpy product (~2 us),
    where splitmix64's three rounds cost ~25 us a read, most of what the column saves."""
    return (np.asarray(values, dtype=np.int64).view(np.uint64) * _MUL).view(np.int64)


def unscramble(values) -> np.ndarray:
    """The inverse of ``scramble``: (n,) or (k, n) int64, multiplied by the constant's inverse
    mod 2^64."""
    return (np.asarray(values, dtype=np.int64).view(np.uint64) * _MUL_INV).view(np.int64)


def _add(writer, rows: list[IndexRow]) -> None:
    """Add one document per row to ``writer``, each as a JSON object that tantivy parses
    (``add_json``): ~7.5 us a post against ~17.5 for a ``tantivy.Document`` built from Python
    values (``bench/lexindex.py``), time the indexer holds the GIL beside the request threads
    under a stream. The rows come from the store (valid UTF-8, 64-bit integers): JSON carries
    every value exactly."""
    mixed = scramble(np.array([(r.id, r.created_at) for r in rows],
                              dtype=np.int64).reshape(-1, 2)).tolist()   # (n, 2): id, created_at
    for r, m in zip(rows, mixed):
        writer.add_json(orjson.dumps(_fields(r, m)).decode())


def _fields(r: IndexRow, mixed: list[int]) -> dict:
    """A row's document as field -> value(s), the schema's names (``build_schema``)."""
    doc = dict(id=r.id, seq=r.seq, created_at=r.created_at, text=r.text,
               id_mixed=mixed[0], created_mixed=mixed[1],
               likes=r.like_count or 0, retweets=r.retweet_count or 0,
               replies=r.reply_count or 0, quotes=r.quote_count or 0)
    if r.lang:
        doc["lang"] = r.lang.lower()
    if r.author_handle:
        doc["author"] = r.author_handle.lower()
    if r.hashtags or r.mentions or r.cashtags:      # most posts have none: no list built
        doc["tags"] = ([f"#{x.lower()}" for x in r.hashtags]
                       + [f"@{x.lower()}" for x in r.mentions]
                       + [f"${x.lower()}" for x in r.cashtags])
    if r.flags:
        doc["flags"] = list(r.flags)
    return doc


class LexicalIndex:
    """tantivy BM25 over post texts, kept in step with a store. ``path=None`` keeps it in RAM."""

    def __init__(self, store: Store, path: Path | None, *, heap_mb: int = 256,
                 keep_writer: bool = False):
        import tantivy
        self._t = tantivy
        self.store = store
        self.path = path
        self.schema = build_schema()
        self.watermark = 0
        # The deletions log's watermark, and how many deletions were applied since the index was
        # last rewritten (their words are still in the segment files until ``compact``). A file
        # written before the log existed reads 0: the whole log is applied at the next refresh.
        self.deleted_through = 0
        self.purge_pending = 0
        # Every document with seq <= settled_through was indexed after the late stage had given
        # its post a language; the later ones may lack it until it does (``refresh``).
        self.settled_through = 0
        meta = self._meta_path()
        if path is not None and meta is not None and meta.exists():
            try:
                saved = json.loads(meta.read_text())
                # an older layout, or ids scrambled another way (they would read back as
                # other numbers): rebuild
                if saved.get("schema") != SCHEMA or saved.get("scramble") != int(_MUL):
                    raise ValueError(saved.get("schema"))
                self.watermark = int(saved["watermark"])
                self.deleted_through = int(saved.get("deleted_through", 0))
                self.purge_pending = int(saved.get("purge_pending", 0))
                self.settled_through = int(saved.get("settled_through", 0))
                self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
            except (ValueError, KeyError, OSError):
                self.watermark = 0
        if self.watermark == 0:
            self.deleted_through = self.purge_pending = self.settled_through = 0
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir(parents=True, exist_ok=True)
            self.index = tantivy.Index(self.schema, path=str(path) if path else None)
        self.index.register_tokenizer("folded", tantivy.TextAnalyzerBuilder(
            tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase()).filter(
            tantivy.Filter.ascii_fold()).build())
        self.heap = heap_mb * 2**20
        # keep_writer=True (the server, refreshing every 0.2 s from its own thread): one writer
        # for the index's life, whose segment merges run in tantivy's threads between commits.
        # The default opens a writer per refresh and waits for its merges, which keeps a CLI
        # run's index compact but puts merge time (hundreds of ms on a large index) inside the
        # refresh, which is what bounds search freshness in the server (bench/serve.py).
        self._writer = (self.index.writer(heap_size=self.heap, num_threads=1)
                        if keep_writer else None)
        self.index.reload()
        self._searcher = self.index.searcher()
        # The watermark of the searcher queries use: ``watermark`` moves as a refresh adds
        # rows, before its commit publishes them, and a query that read it meanwhile took the
        # old searcher for complete (a post just ingested missing from ``latest``).
        self.published = self.watermark

    def _meta_path(self) -> Path | None:
        return self.path / "townsquare.json" if self.path is not None else None

    def lag(self, max_seq: int | None = None, store: Store | None = None) -> int:
        """Changes its searcher has not seen yet: posts ingested or changed after the watermark
        of the searcher queries use (``published``: a refresh in progress does not count), up
        to ``max_seq`` (default: the store's newest), and deletions not applied yet. ``store``:
        the caller's connection (default the index's own). In the server the index's own is the
        indexer's, busy with its refresh's long reads: a request thread that read through it
        would wait for them."""
        store = store or self.store
        posts = max(0, (store.max_seq() if max_seq is None else max_seq) - self.published)
        return posts + len(store.deletions_since(self.deleted_through, _PAGE))

    def unsettled(self) -> int:
        """At most how many indexed posts wait to be indexed again with the language the late
        stage has given them since (``refresh`` does it)."""
        return max(0, min(self.store.enriched_through(), self.watermark) - self.settled_through)

    def refresh(self, progress: Callable[[int], object] | None = None, *,
                settle: bool = True) -> int:
        """Delete what was deleted and index what was ingested since the last refresh; returns
        how many changes (deletions and posts). ``settle``: also index again the posts whose
        language arrived since they were indexed (``unsettled``). The server's indexer passes
        False: re-indexing every post a second time doubled the cost of its refreshes, which
        bound search freshness under a 5,700 posts/s stream (``bench/serve.py``: p99 0.9 s ->
        4 s); ``lang:`` is then checked in the store on the index's candidates instead."""
        # Every post up to the newest seq read first is committed: once the posts after the
        # watermark are read, the watermark may pass the seqs of posts deleted since (the newest
        # post deleted must not leave a lag of 1 for ever). The late stage's watermark is read
        # before any row, so that every row read at or below it carries its language.
        newest, enriched = self.store.max_seq(), self.store.enriched_through()
        gone = self.store.deletions_since(self.deleted_through, _PAGE)
        unsettled = settle and min(enriched, self.watermark) > self.settled_through
        if newest <= self.watermark and not gone and not unsettled:
            self.watermark = self.published = max(self.watermark, newest)   # nothing to commit
            return 0
        writer = self._writer or self.index.writer(heap_size=self.heap, num_threads=1)
        n, fresh = 0, self.watermark == 0     # a fresh index reads the posts left: skip the log
        while gone:
            if not fresh:
                self._delete(writer, [pid for _seq, pid in gone])
                n += len(gone)
                self.purge_pending += len(gone)
            self.deleted_through = gone[-1][0]
            gone = self.store.deletions_since(self.deleted_through, _PAGE)
        if unsettled:
            self._settle(writer, min(enriched, self.watermark))
        n += self._add_since(writer, progress)
        self.watermark = max(self.watermark, newest)
        self._commit(writer, settled=max(self.settled_through, enriched) if settle
                     else self.settled_through)
        return n

    def _settle(self, writer, through: int) -> None:
        """Index again the posts indexed before the late stage gave them a language, up to
        ``through``: in a live stream, each post is indexed on arrival and once more when its
        language is known, so that ``lang:`` is answered by the index."""
        seq = self.settled_through
        while rows := [r for r in self.store.index_rows_since(seq, _PAGE) if r.seq <= through]:
            self._delete(writer, [r.id for r in rows])
            _add(writer, rows)
            seq = rows[-1].seq

    def _delete(self, writer, ids: list[int]) -> None:
        """Delete the documents of ``ids`` added before this call (not those added after it:
        tantivy orders operations by opstamp, so a page's older documents go and its new ones,
        added next, stay). One delete for the page, not one per post: each call into tantivy
        lets go of the GIL and must win it back, which under a stream's load (request threads,
        the fast tier's thread) costs more than the delete (``bench/lexindex.py``'s
        ``replace`` row; ``bench/serve.py --findability``)."""
        writer.delete_documents_by_query(self._t.Query.term_set_query(self.schema, "id", ids))

    def _add_since(self, writer, progress: Callable[[int], object] | None) -> int:
        """Add the posts after the watermark to ``writer``'s next commit; how many."""
        n, replace = 0, self.watermark != 0   # a changed post replaces its old document
        rows = self.store.index_rows_since(self.watermark, _PAGE)
        while rows:
            if replace:
                self._delete(writer, [r.id for r in rows])
            _add(writer, rows)
            n += len(rows)
            self.watermark = rows[-1].seq
            if progress:
                progress(len(rows))
            rows = self.store.index_rows_since(self.watermark, _PAGE)
        return n

    def _commit(self, writer, *, settled: int, collect: bool = False) -> None:
        """Commit, save the watermarks, and search the new snapshot; ``settled``: the new
        ``settled_through``, taken once that snapshot is searched (queries compile ``lang:`` by
        it); ``collect``: then remove the files of segments no snapshot uses any more."""
        writer.commit()
        meta = self._meta_path()
        if meta is not None:
            tmp = meta.with_suffix(".tmp")
            tmp.write_text(json.dumps({"watermark": self.watermark, "schema": SCHEMA,
                                       "scramble": int(_MUL),
                                       "deleted_through": self.deleted_through,
                                       "purge_pending": self.purge_pending,
                                       "settled_through": settled}))
            os.replace(tmp, meta)
        self.index.reload()
        self._searcher = self.index.searcher()   # the old snapshot goes: its files may too
        self.published = self.watermark
        self.settled_through = settled
        if collect:
            writer.garbage_collect_files()
        if self._writer is None:
            writer.wait_merging_threads()

    def compact(self) -> dict:
        """When posts were deleted since the index was last written whole: write it again from
        the store, in the same folder (one commit swaps every segment for the new ones, so
        searches go on meanwhile), and remove the old segment files. What it did, as a dict.

        Cost: indexing every post again (a first ``refresh`` of the store), paid only after
        deletions. Deletions that arrive during the rewrite are applied at the next refresh."""
        t0 = time.perf_counter()
        self.refresh()
        if not self.purge_pending:
            return {"rebuilt": False, "documents": self._searcher.num_docs,
                    "seconds": round(time.perf_counter() - t0, 3)}
        writer = self._writer or self.index.writer(heap_size=self.heap, num_threads=1)
        writer.delete_all_documents()
        enriched = self.store.enriched_through()
        self.watermark, purged, newest = 0, self.purge_pending, self.store.max_seq()
        self._add_since(writer, None)
        self.watermark = max(self.watermark, newest)
        self.purge_pending = 0
        self._commit(writer, settled=enriched, collect=True)
        return {"rebuilt": True, "purged": purged, "documents": self._searcher.num_docs,
                "seconds": round(time.perf_counter() - t0, 3)}

    def close(self) -> None:
        """Let a kept writer finish its merges (the index is complete without them)."""
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None

    # --- queries -----------------------------------------------------------------------------------
    def compile(self, node: q.Node, *, now_ms: int, max_seq: int | None = None) -> Compiled:
        """``node`` as this index's query plus the residual the store checks (``lexquery``).
        ``lang:`` compiles once every post of the snapshot (``max_seq``) had its language when
        indexed. The snapshot itself is applied by ``search``."""
        newest = self.watermark if max_seq is None else min(max_seq, self.watermark)
        return compile_tantivy(node, self.schema, now_ms=now_ms,
                               lang_known=not uses_lang(node) or self.settled_through >= newest)

    def search(self, query, k: int, *, order: str = "rank", count: bool = False,
               fields: bool = True, max_seq: int | None = None, searcher=None) -> Hits:
        """The top ``k`` of a compiled ``query`` among posts with ``seq`` at most ``max_seq``
        (a snapshot): by BM25 (``rank``) or newest first (``time``, ties by the larger id, as
        the store orders them). ``fields``: read each hit's ranking fields from the index's
        columns. ``searcher``: the snapshot to search (default: the newest)."""
        # hits address this snapshot's segments: one searcher
        searcher = self._searcher if searcher is None else searcher
        # The seq range costs a check per match (about 1 ms for a common word at 1M posts):
        # left out when no document of this searcher is newer than the snapshot. The watermark
        # is read after the searcher and only grows before a new searcher is published, so it
        # bounds every document this searcher holds.
        if max_seq is not None and max_seq < self.watermark:
            Occur = self._t.Occur
            query = self._t.Query.boolean_query([(Occur.Must, query), (Occur.Must, (
                self._t.Query.range_query(self.schema, "seq", self._t.FieldType.Integer,
                                          None, max_seq)))])
        if order == "time":
            hits = self._newest(searcher, query, k)
        else:
            res = searcher.search(query, k, count=count)
            hits = res.hits
        addrs = [a for _, a in hits]
        keys = [key for key, _ in hits]
        total = res.count if order == "rank" and count else 0
        if not fields:
            return Hits(ids=_read(searcher, ("id_mixed",), addrs)[0].tolist(), keys=keys,
                        total=total)
        # rank order: (2, n) ids and created_at, unscrambled at once; newest first: the hits'
        # keys are their created_at
        mixed = _read(searcher, _MIXED if order == "rank" else ("id_mixed",), addrs)
        ids = mixed[0]
        created = mixed[1] if order == "rank" else np.array(keys, dtype=np.int64)
        # (4, n): likes, retweets, replies, quotes, as columns end to end
        counts = np.array([searcher.fast_field_values(f, addrs) for f in _COUNTS],
                          dtype=np.int64).reshape(4, -1)
        return Hits(ids=ids.tolist(), keys=keys, total=total, fields=RankColumns(
            ids, created, counts[0] + 2 * counts[1] + counts[2] + counts[3]))

    def checked(self, c: Compiled, depth: int, store: Store, *, order: str = "rank",
                now_ms: int, max_seq: int | None = None, reads: tuple[int, ...] = ()
                ) -> Hits | None:
        """The first ``depth`` hits of compiled query ``c`` that satisfy its residual (checked
        in ``store``, the caller's connection, on candidates read ``reads`` deep, by default
        over-fetched); None when a selective residual leaves too few of them (FTS5 and SQL
        then find every match)."""
        if c.residual is None:             # exact in the index: its top k is the answer
            return self.search(c.query, depth, order=order, max_seq=max_seq)
        for k in reads or (depth * OVERFETCH, depth * OVERFETCH * 8):
            hits = self.search(c.query, k, order=order, max_seq=max_seq)
            ok = store.filter_ids(hits.ids, c.residual, now_ms=now_ms, candidates=True)
            keep = [i for i, pid in enumerate(hits.ids) if pid in ok][:depth]
            if len(keep) == depth or len(hits.ids) < k:      # or every match was read
                hits.ids = [hits.ids[i] for i in keep]
                hits.keys = [hits.keys[i] for i in keep]
                return hits
        return None

    def among(self, ids: list[int], node: q.Node, *, now_ms: int, max_seq: int | None = None,
              min_matches: int | None = None) -> tuple[Hits, list[int]] | None:
        """Which of ``ids`` (a semantic list's candidates) satisfy ``node`` (a query's operators
        and exclusions), with their ranking fields: ``(hits, unknown)``, ``unknown`` the ids
        this index has not indexed (newer than its watermark: the store checks them). None
        where the store's check costs less (its words in fewer than ``min_matches`` posts,
        default ``AMONG_MIN_MATCHES``) or ``node`` needs a check the index cannot make.

        Why: the store checks a word by building the set of every post that holds it (SQLite
        materializes ``id IN (SELECT ...)`` whole), ~2.5 ms plus ~0.3 ms per 1,000 posts that
        hold it: ``storm -hurricane`` took ~40 ms at 1.1M posts (129,000 hold "hurricane").
        Here the candidates' ids are looked up and intersected with the words' postings:
        ~4.5 us a candidate, whatever the words (tantivy's ``term_set_query`` took ~11 ms for
        1,000 ids; a union of term queries ~4 ms)."""
        words = text_atoms(node)
        least = AMONG_MIN_MATCHES if min_matches is None else min_matches
        if not ids or not words or sum(self.share(w) for w in words) * (
                self._searcher.num_docs) < least:
            return None
        c = self.compile(node, now_ms=now_ms, max_seq=max_seq)
        if c.residual is not None:
            return None
        # ``published`` before the searcher: a refresh swaps the searcher, then ``published``,
        # so the searcher read after it holds at least the posts up to it
        published = self.published
        searcher = self._searcher
        Query, Occur = self._t.Query, self._t.Occur
        of_ids = Query.boolean_query([(Occur.Should, Query.term_query(self.schema, "id", pid))
                                      for pid in ids])
        hits = self.search(Query.boolean_query([(Occur.Must, of_ids), (Occur.Must, c.query)]),
                           len(ids), max_seq=max_seq, searcher=searcher)
        if max_seq is not None and max_seq <= published:
            return hits, []
        indexed = set(self.search(of_ids, len(ids), fields=False, max_seq=max_seq,
                                  searcher=searcher).ids)
        return hits, [pid for pid in ids if pid not in indexed]

    def _newest(self, searcher, query, k: int) -> list:
        """``(created_at, address)`` of the ``k`` newest matches, ties by the larger id: tantivy
        orders by one field, so the matches that share the last hit's time are all read and
        ordered by id here."""
        Q, Occur = self._t.Query, self._t.Occur
        hits = searcher.search(query, k, count=False, order_by_field="created_at").hits
        if len(hits) < k:
            return _by_id(searcher, hits)
        last = hits[-1][0]
        # the posts of that one millisecond from the inverted index (a short posting list),
        # not a scan of the created_at column over every match
        tie = Q.boolean_query([(Occur.Must, query), (Occur.Must, Q.range_query(
            self.schema, "created_at", self._t.FieldType.Integer, last, last,
            use_inverted_index=True))])
        res = searcher.search(tie, k, count=True)
        ties = res.hits if res.count <= k else searcher.search(tie, res.count, count=False).hits
        return (_by_id(searcher, [h for h in hits if h[0] > last])
                + _by_id(searcher, [(last, a) for _, a in ties]))[:k]

    def candidate_plan(self, node: q.Node, depth: int, *, now_ms: int, min_share: float
                       ) -> tuple[Compiled, int] | None:
        """For a query of words and keyword conditions (``lexquery.split_filters``) that at
        least ``min_share`` of the indexed posts pass (their document frequencies, conditions
        taken as independent): the words' query with the conditions as the residual the store
        checks, and how many of the words' best posts to read so that ``depth`` of them pass
        (1.5 times the expected number, at least 2 x ``depth``). None otherwise (0: never), and
        when that is more than ``PLAN_MAX_READS`` (a deep list: the query runs compiled)."""
        split = split_filters(node) if min_share > 0 else None
        searcher = self._searcher          # one snapshot for every count
        if split is None or not searcher.num_docs:
            return None
        words, filters, conds = split
        share = 1.0
        for field, value, excluded in conds:
            f = searcher.doc_freq(field, value) / searcher.num_docs
            share *= 1.0 - f if excluded else f
        if share < min_share:
            return None
        reads = max(2 * depth, math.ceil(1.5 * depth / share))
        if reads > PLAN_MAX_READS:         # the store's check would cost more than it saves
            return None
        c = compile_tantivy(words, self.schema, now_ms=now_ms, lang_known=True)
        if c.residual is not None:
            return None
        return Compiled(query=c.query, residual=filters), reads

    def share(self, part: str) -> float:
        """Share of indexed posts holding ``part`` (a phrase: its rarest word), in [0, 1]."""
        searcher = self._searcher          # one snapshot per call (a refresh swaps it)
        n = searcher.num_docs
        words = index_tokens(part)
        if not n or not words:
            return 0.0
        return min(searcher.doc_freq("text", w) for w in words) / n

    def any_query(self, parts: list[str], node: q.Node | None, *, now_ms: int,
                  max_seq: int | None = None) -> Compiled | None:
        """Posts holding ANY of ``parts`` (words or phrases) that satisfy ``node`` (the query's
        operators and exclusions; None: no condition); None when no part has a word."""
        Query, Occur = self._t.Query, self._t.Occur
        clauses = []
        for part in parts:
            words = index_tokens(part)
            if len(words) == 1:
                clauses.append((Occur.Should, Query.term_query(self.schema, "text", words[0])))
            elif words:
                clauses.append((Occur.Should, Query.phrase_query(self.schema, "text", words)))
        if not clauses:
            return None
        anyq = Query.boolean_query(clauses)
        if node is None:
            return Compiled(query=anyq, residual=None)
        cond = self.compile(node, now_ms=now_ms, max_seq=max_seq)
        return Compiled(query=Query.boolean_query([(Occur.Must, anyq), (Occur.Must, cond.query)]),
                        residual=cond.residual)

    def top(self, node: q.Node, k: int, *, since_ms: int | None = None,
            until_ms: int | None = None) -> tuple[list[tuple[int, float]], int] | None:
        """``([(id, bm25)], total matches)`` for the query's text, best first, within
        ``[since_ms, until_ms)`` when given; None when the query has no text this index can
        search. Operators the index holds are applied too (``compile``); the rest are not."""
        if not any(index_tokens(t) for t in q.positive_text(node)):
            return None
        bounds = [q.Op("since_ms", since_ms)] if since_ms is not None else []
        bounds += [q.Op("until_ms", until_ms)] if until_ms is not None else []
        c = self.compile(q.And((node, *bounds)) if bounds else node, now_ms=0)
        hits = self.search(c.query, k, count=True, fields=False)
        return list(zip(hits.ids, hits.keys)), hits.total


def _read(searcher, fields: tuple[str, ...], addrs: list) -> np.ndarray:
    """The values of scrambled columns (``_MIXED``) at ``addrs``: (len(fields), n) int64."""
    return unscramble(np.array([searcher.fast_field_values(f, addrs) for f in fields],
                               dtype=np.int64).reshape(len(fields), -1))


def _by_id(searcher, hits: list) -> list:
    """``(created_at, address)`` hits newest first, ties by the larger id."""
    ids = _read(searcher, ("id_mixed",), [a for _, a in hits])[0].tolist()
    order = sorted(range(len(hits)), key=lambda i: (-hits[i][0], -ids[i]))
    return [hits[i] for i in order]

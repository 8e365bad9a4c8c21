"""A tantivy index beside the store: fast top-k BM25 for ``top`` search on large stores.

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
source of truth and the path for everything else (``latest`` order, exact phrase semantics,
queries without text); this index is derived, like the vector index: it catches up from the
store's ``seq`` order (``refresh``), lives in ``<home>/lexical/`` and is rebuilt when missing.

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

Exactness: the index only proposes candidates for the positive text of a query (its words,
phrases and tags; exclusions of words too). The engine then keeps the candidates that satisfy the
whole query in SQL, so operators, exclusions and deletions are applied exactly; when too few
candidates survive a selective filter, the engine falls back to FTS5.

Tokens: lowercase and ASCII folding over a simple word tokenizer, the same as FTS5's ``unicode61
remove_diacritics 2`` for Latin scripts (``index_tokens``). The query side is tokenized by
``index_tokens`` in Python to build term and phrase queries directly: user text never reaches
tantivy's query parser.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from townsquare import query as q
from townsquare.store.base import Store
from townsquare.text.normalize import WORD, lower_strip_accents

_PAGE = 20_000
SCHEMA = 2          # bump when the fields change: an index of another layout is rebuilt


def index_tokens(text: str) -> list[str]:
    """Lowercase, strip accents, split into words: the index's tokens (``lower_strip_accents``
    is what tantivy's lowercaser and ASCII folding do to a word).

    >>> index_tokens("Séisme à l'Équateur: covid-19!")
    ['seisme', 'a', 'l', 'equateur', 'covid', '19']
    """
    return WORD.findall(lower_strip_accents(text))


class LexicalIndex:
    """tantivy BM25 over post texts, kept in step with a store. ``path=None`` keeps it in RAM."""

    def __init__(self, store: Store, path: Path | None, *, heap_mb: int = 256,
                 keep_writer: bool = False):
        import tantivy
        self._t = tantivy
        self.store = store
        self.path = path
        sb = tantivy.SchemaBuilder()
        sb.add_integer_field("id", stored=True, indexed=True, fast=True)
        sb.add_integer_field("created_at", stored=False, indexed=True, fast=True)
        sb.add_text_field("text", stored=False, tokenizer_name="folded")
        self.schema = sb.build()
        self.watermark = 0
        # The deletions log's watermark, and how many deletions were applied since the index was
        # last rewritten (their words are still in the segment files until ``compact``). A file
        # written before the log existed reads 0: the whole log is applied at the next refresh.
        self.deleted_through = 0
        self.purge_pending = 0
        meta = self._meta_path()
        if path is not None and meta is not None and meta.exists():
            try:
                saved = json.loads(meta.read_text())
                if saved.get("schema") != SCHEMA:          # an older layout: rebuild
                    raise ValueError(saved.get("schema"))
                self.watermark = int(saved["watermark"])
                self.deleted_through = int(saved.get("deleted_through", 0))
                self.purge_pending = int(saved.get("purge_pending", 0))
                self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
            except (ValueError, KeyError, OSError):
                self.watermark = 0
        if self.watermark == 0:
            self.deleted_through = self.purge_pending = 0
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

    def _meta_path(self) -> Path | None:
        return self.path / "townsquare.json" if self.path is not None else None

    def lag(self, max_seq: int | None = None) -> int:
        """Changes the index has not seen yet: posts ingested or changed after its watermark, up
        to ``max_seq`` (default: the store's newest), and deletions not applied yet."""
        posts = max(0, (self.store.max_seq() if max_seq is None else max_seq) - self.watermark)
        return posts + len(self.store.deletions_since(self.deleted_through, _PAGE))

    def refresh(self, progress: Callable[[int], object] | None = None) -> int:
        """Delete what was deleted and index what was ingested since the last refresh; returns
        how many changes (deletions and posts)."""
        # Every post up to the newest seq read first is committed: once the posts after the
        # watermark are read, the watermark may pass the seqs of posts deleted since (the newest
        # post deleted must not leave a lag of 1 for ever).
        newest = self.store.max_seq()
        gone = self.store.deletions_since(self.deleted_through, _PAGE)
        rows = self.store.posts_since(self.watermark, _PAGE)
        if not rows and not gone:
            self.watermark = max(self.watermark, newest)
            return 0
        writer = self._writer or self.index.writer(heap_size=self.heap, num_threads=1)
        n, fresh = 0, self.watermark == 0     # a fresh index reads the posts left: skip the log
        while gone:
            if not fresh:
                for _seq, pid in gone:
                    writer.delete_documents_by_term("id", pid)
                n += len(gone)
                self.purge_pending += len(gone)
            self.deleted_through = gone[-1][0]
            gone = self.store.deletions_since(self.deleted_through, _PAGE)
        n += self._add_since(writer, progress)
        self.watermark = max(self.watermark, newest)
        self._commit(writer)
        return n

    def _add_since(self, writer, progress: Callable[[int], object] | None) -> int:
        """Add the posts after the watermark to ``writer``'s next commit; how many."""
        n, replace = 0, self.watermark != 0   # a changed post replaces its old document
        rows = self.store.posts_since(self.watermark, _PAGE)
        while rows:
            created = self.store.created_at_of([r[0] for r in rows])
            for pid, _seq, text in rows:
                if replace:
                    writer.delete_documents_by_term("id", pid)
                writer.add_document(self._t.Document(id=pid, text=text,
                                                     created_at=created.get(pid, 0)))
            n += len(rows)
            self.watermark = rows[-1][1]
            if progress:
                progress(len(rows))
            rows = self.store.posts_since(self.watermark, _PAGE)
        return n

    def _commit(self, writer, *, collect: bool = False) -> None:
        """Commit, save the watermarks, and search the new snapshot; ``collect``: then remove
        the files of segments no snapshot uses any more."""
        writer.commit()
        meta = self._meta_path()
        if meta is not None:
            tmp = meta.with_suffix(".tmp")
            tmp.write_text(json.dumps({"watermark": self.watermark, "schema": SCHEMA,
                                       "deleted_through": self.deleted_through,
                                       "purge_pending": self.purge_pending}))
            os.replace(tmp, meta)
        self.index.reload()
        self._searcher = self.index.searcher()   # the old snapshot goes: its files may too
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
        self.watermark, purged, newest = 0, self.purge_pending, self.store.max_seq()
        self._add_since(writer, None)
        self.watermark = max(self.watermark, newest)
        self.purge_pending = 0
        self._commit(writer, collect=True)
        return {"rebuilt": True, "purged": purged, "documents": self._searcher.num_docs,
                "seconds": round(time.perf_counter() - t0, 3)}

    def close(self) -> None:
        """Let a kept writer finish its merges (the index is complete without them)."""
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None

    # --- queries -----------------------------------------------------------------------------------
    def _text_query(self, node: q.Node):
        """The positive text of ``node`` as a tantivy query (None when it has none): implied by
        the query, so filtering its hits by the full query in SQL is exact."""
        Occur, Query = self._t.Occur, self._t.Query
        if isinstance(node, (q.Term, q.Phrase)):
            words = index_tokens(node.text)
        elif isinstance(node, q.Hashtag):
            words = index_tokens(node.tag)
        elif isinstance(node, q.Mention):
            words = index_tokens(node.handle)
        elif isinstance(node, q.Cashtag):
            words = index_tokens(node.tag)
        elif isinstance(node, q.And):
            must = [c for c in (self._text_query(ch) for ch in node.children) if c is not None]
            if not must:
                return None
            nots = [self._text_query(ch.child) for ch in node.children
                    if isinstance(ch, q.Not) and isinstance(ch.child, (q.Term, q.Phrase))]
            clauses = [(Occur.Must, c) for c in must] + [(Occur.MustNot, c) for c in nots if c]
            return clauses[0][1] if len(clauses) == 1 else Query.boolean_query(clauses)
        elif isinstance(node, q.Or):
            parts = [self._text_query(ch) for ch in node.children]
            if any(p is None for p in parts):
                return None
            return Query.boolean_query([(Occur.Should, p) for p in parts])
        else:
            return None
        if not words:
            return None                               # emoji or punctuation: no token
        if len(words) == 1:
            return Query.term_query(self.schema, "text", words[0])
        return Query.phrase_query(self.schema, "text", words)

    def share(self, part: str) -> float:
        """Share of indexed posts holding ``part`` (a phrase: its rarest word), in [0, 1]."""
        searcher = self._searcher          # one snapshot per call (a refresh swaps it)
        n = searcher.num_docs
        words = index_tokens(part)
        if not n or not words:
            return 0.0
        return min(searcher.doc_freq("text", w) for w in words) / n

    def top_any(self, parts: list[str], k: int) -> list[tuple[int, float]]:
        """BM25 top-k of posts holding ANY of ``parts`` (words or phrases), best first."""
        Query, Occur = self._t.Query, self._t.Occur
        clauses = []
        for part in parts:
            words = index_tokens(part)
            if len(words) == 1:
                clauses.append((Occur.Should, Query.term_query(self.schema, "text", words[0])))
            elif words:
                clauses.append((Occur.Should, Query.phrase_query(self.schema, "text", words)))
        if not clauses:
            return []
        searcher = self._searcher          # hits address this snapshot's segments
        res = searcher.search(Query.boolean_query(clauses), k, count=False)
        doc = searcher.doc
        return [(doc(addr)["id"][0], score) for score, addr in res.hits]

    def top(self, node: q.Node, k: int, *, since_ms: int | None = None,
            until_ms: int | None = None) -> tuple[list[tuple[int, float]], int] | None:
        """``([(id, bm25)], total matches)`` for the query's text, best first, within
        ``[since_ms, until_ms)`` when given; None when the query has no text this index can
        search."""
        query = self._text_query(node)
        if query is None:
            return None
        if since_ms is not None or until_ms is not None:
            rng = self._t.Query.range_query(
                self.schema, "created_at", self._t.FieldType.Integer, since_ms, until_ms,
                include_upper=until_ms is None)
            query = self._t.Query.boolean_query([(self._t.Occur.Must, query),
                                                 (self._t.Occur.Must, rng)])
        # One searcher for the search and the doc lookups: the server's indexer thread swaps
        # ``_searcher`` after each refresh, and a hit's address is only valid in its snapshot.
        searcher = self._searcher
        res = searcher.search(query, k, count=True)
        doc = searcher.doc
        return [(doc(addr)["id"][0], score) for score, addr in res.hits], res.count

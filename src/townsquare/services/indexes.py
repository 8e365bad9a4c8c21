"""The derived indexes beside a store, and the search engine over them: the one place that
decides which exist and where their files live.

    >>> from townsquare.settings import Settings
    >>> from townsquare.store import open_store
    >>> with open_store(":memory:") as store:
    ...     engine = build_engine(store, Settings(home="/nonexistent"), semantic=False)
    ...     (engine.embedder, engine.vectors, lexical_index(store, None))
    (None, None, None)

An embedded (SQLite) store keeps a tantivy index in ``HOME/lexical`` and a faiss index in
``HOME/vectors.index``; a store that indexes itself (``Store.indexes_in_store``: PostgreSQL's GIN
and pgvector's HNSW) keeps no file beside it.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from townsquare.embed.models import DEFAULT_EMBEDDER, get_embedder
from townsquare.embed.sync import InStoreVectors, StoreVectors
from townsquare.protocols import Embedder, VectorIndex
from townsquare.search.engine import SearchConfig, SearchEngine
from townsquare.search.lexindex import LexicalIndex
from townsquare.settings import Settings
from townsquare.store.base import Store

#: ``progress(done_now, total)``: called once with 0 and the total before the work, then with
#: each step's count.
Progress = Callable[[int, int], None]

LEXICAL_DIR = "lexical"
VECTORS_FILE = "vectors.index"


def lexical_index(store: Store, home: Path | None, *,
                  keep_writer: bool = False) -> LexicalIndex | None:
    """The tantivy index kept in ``home`` beside an embedded store; None when the store answers
    full-text search itself, when there is no home (in-memory use), or tantivy is not installed
    (FTS5 alone then). ``keep_writer``: hold one tantivy writer for the index's life, as a server
    does, so that segment merges run between refreshes instead of inside them."""
    if home is None or store.indexes_in_store:
        return None
    try:
        return LexicalIndex(store, Path(home) / LEXICAL_DIR, keep_writer=keep_writer)
    except ImportError:
        return None
    except ValueError:       # another process is rewriting its segments: FTS5 answers meanwhile
        if keep_writer:      # the server's own index: it must open, or the server says why
            raise
        return None


def vector_index(store: Store, home: Path | None, embedder: Embedder) -> VectorIndex:
    """The vector index for ``embedder``'s vectors: the store's own (pgvector) when it has one,
    else a faiss index in ``home`` (in memory when ``home`` is None)."""
    if store.indexes_in_store:
        return InStoreVectors(store)
    path = Path(home) / VECTORS_FILE if home is not None else None
    return StoreVectors(store, path, embedder.dim)


def embed_model_for(store: Store, settings: Settings, model: str | None = None) -> str:
    """The embedding model to use on ``store``: ``model`` when a caller chose one (``embed
    --model``; a store with vectors of another model refuses it unless reset), else the model of
    the store's vectors, else ``settings.embed_model``, else the default."""
    return model or store.embed_model() or settings.embed_model or DEFAULT_EMBEDDER


def embedder_for(store: Store, settings: Settings, model: str | None = None) -> Embedder:
    """The embedder of ``embed_model_for``, its exported ONNX files cached in
    ``settings.cache_dir``. Raises ``ValueError`` for an unknown model."""
    return get_embedder(embed_model_for(store, settings, model), cache_dir=settings.cache_dir)


def build_engine(store: Store, settings: Settings, *, semantic: bool = True,
                 config: SearchConfig | None = None) -> SearchEngine:
    """A search engine over ``store`` with the indexes in ``settings.home``: semantic when
    ``semantic`` and the store holds vectors (searched with the model that made them)."""
    lexical = lexical_index(store, settings.home)
    if not semantic or store.embed_model() is None:
        return SearchEngine(store, lexical_index=lexical, config=config)
    emb = embedder_for(store, settings)
    return SearchEngine(store, embedder=emb, vectors=vector_index(store, settings.home, emb),
                        lexical_index=lexical, config=config)


def refresh_lexical_index(store: Store, home: Path, progress: Progress | None = None) -> dict:
    """Catch the tantivy index (fast top-k for search) up with the store; what it did, as the
    CLI's ``ingest --json`` reports it under ``lexical_index``."""
    if store.indexes_in_store:
        return {"available": False, "reason": "the store's own full-text index answers search"}
    lx = lexical_index(store, home)
    if lx is None:
        return {"available": False}
    t = time.perf_counter()
    if progress is not None:
        total = lx.lag()
        progress(0, total)
        n = lx.refresh(progress=lambda k: progress(k, total))
    else:
        n = lx.refresh()
    return {"available": True, "indexed": n, "seconds": round(time.perf_counter() - t, 2)}

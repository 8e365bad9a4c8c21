"""What request threads use: a read connection each, a search engine each over the shared
indexes, generation backends loaded once, cached summaries, an ad server each.

    >>> import tempfile
    >>> from townsquare.api.loops import StepErrors
    >>> from townsquare.settings import LLMSettings, Settings
    >>> from townsquare.store import open_store
    >>> settings = Settings(home=tempfile.mkdtemp(), llm=LLMSettings(backend="extractive"))
    >>> ix = Indexer(open_store(settings.db_target), settings.home, None, StepErrors(),
    ...              refresh_s=0.2)
    >>> rs = RequestServices(settings, ix, None)
    >>> rs.reader() is rs.reader(), rs.backend().model, rs.engine().run("flood").results
    (True, 'extractive', [])
    >>> rs.close(); ix.close()

SQLite in WAL mode has one writer (``api.writequeue``) and any number of readers: each request
thread gets its own connection (``reader()``) and its own ``SearchEngine`` over it, sharing the
indexer's tantivy and vector indexes (``api.indexer``); queries never write an index. A store
that indexes itself (PostgreSQL) is searched through each thread's own connection.

Generation runs one at a time (``generation_lock``): a llama.cpp context serves one generation
at a time, and is not shared between threads. The extractive backend has no model and takes no
lock. A summary of a story at a given size is kept (``summarize(cache_key=...)``), so every
reader of a busy story does not pay for the same generation.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from townsquare.ads.serving import AdServer, build_ad_server
from townsquare.api.auth import RateLimit, RateLimiter, SharedRateLimiter
from townsquare.api.indexer import Indexer
from townsquare.llm import Backend, ChatMessage, Generation, GenerationConfig
from townsquare.protocols import Embedder, VectorIndex
from townsquare.search.engine import SearchEngine
from townsquare.services.indexes import embedder_for, vector_index
from townsquare.services.summaries import default_backend, get_llm, summarizer
from townsquare.settings import Settings
from townsquare.store import open_store
from townsquare.store.base import Store

SUMMARY_CACHE = 256          # summaries kept (story, size, backend)


class RequestServices:
    """Per-thread readers, engines and ad servers over the store in ``settings``, with the
    indexer's shared indexes and ``embedder`` (None: no semantic search); generation backends
    (``settings.llm``) shared by every thread."""

    def __init__(self, settings: Settings, indexer: Indexer, embedder: Embedder | None):
        self.settings = settings
        self.indexer = indexer
        self.embedder = embedder
        self._local = threading.local()
        self._readers: list[Store] = []
        self._readers_lock = threading.Lock()
        self._backends: dict[str, Backend] = {}
        self._backend_lock = threading.Lock()
        self.generation_lock = threading.Lock()
        self._summaries: OrderedDict[Hashable, dict[str, Any]] = OrderedDict()
        self._ads_embedder: Embedder | None = None

    # --- reading --------------------------------------------------------------------------------
    def reader(self) -> Store:
        """This thread's read connection."""
        s: Store | None = getattr(self._local, "store", None)
        if s is None:
            s = self._local.store = open_store(self.settings.db_target)
            with self._readers_lock:
                self._readers.append(s)
        return s

    def rate_limiter(self) -> RateLimit:
        """API keys' rate limits: per process with the embedded store; shared by every server
        process through the store in server mode."""
        return SharedRateLimiter(self.reader) if self.settings.server_mode else RateLimiter()

    def engine(self) -> SearchEngine:
        """This thread's search engine (its reader, the shared indexes; never writes them)."""
        e: SearchEngine | None = getattr(self._local, "engine", None)
        if e is None:
            reader = self.reader()
            vec: VectorIndex | None = None
            if self.embedder is not None:
                vec = (vector_index(reader, self.settings.home, self.embedder)
                       if reader.indexes_in_store else self.indexer.shared_vectors())
            e = self._local.engine = SearchEngine(
                reader, embedder=self.embedder if vec is not None else None, vectors=vec,
                lexical_index=self.indexer.lexical, refresh_indexes=False)
        return e

    # --- generation -----------------------------------------------------------------------------
    def backend(self, name: str | None = None) -> Backend:
        """A generation backend by name (default: the server's), loaded once and kept. Raises
        ``llm.BackendError`` when this server cannot build it."""
        key = name or self.settings.llm.backend or default_backend(self.settings)
        with self._backend_lock:
            b = self._backends.get(key)
            if b is None:
                b = self._backends[key] = get_llm(self.settings, key)
            return b

    def summarize(self, *, post_ids: list[int] | None = None, query: str | None = None,
                  backend: str | None = None, cache_key: Hashable | None = None) -> dict[str, Any]:
        """A verified, cited summary as a dict; one generation at a time. ``cache_key`` keeps the
        result (a story at a given size)."""
        if cache_key is not None and (hit := self._summaries.get(cache_key)) is not None:
            return hit
        llm = self.backend(backend)
        engine = self.engine()
        summ = summarizer(self.reader(), llm, engine)
        lock: AbstractContextManager[object] = (self.generation_lock if not llm.extractive
                                                else nullcontext())
        t0 = time.perf_counter()
        with lock:
            waited = time.perf_counter() - t0
            result = summ.run(post_ids=post_ids, query=query,
                              engine=engine if query is not None else None).to_dict()
        result["timings_ms"]["queued"] = round(waited * 1000, 2)
        result["timings_ms"]["total"] = round((time.perf_counter() - t0) * 1000, 2)
        if cache_key is not None:
            self._summaries[cache_key] = result
            while len(self._summaries) > SUMMARY_CACHE:
                self._summaries.popitem(last=False)
        return result

    # --- ads ------------------------------------------------------------------------------------
    def ads(self) -> AdServer:
        """This thread's ad server (``ads.serving``): its reader, the shared campaign and profile
        files, one embedder, copy written by the server's backend one generation at a time."""
        a: AdServer | None = getattr(self._local, "ads", None)
        if a is None:
            with self._backend_lock:
                if self._ads_embedder is None:
                    self._ads_embedder = self.embedder or embedder_for(self.reader(),
                                                                       self.settings)
            a = self._local.ads = build_ad_server(
                self.reader(), self.settings.home,
                backend=LockedBackend.around(self.backend(), self.generation_lock),
                engine=self.engine(), embedder=self._ads_embedder)
        return a

    def close(self) -> None:
        """Close every thread's reader (once no request runs)."""
        with self._readers_lock:
            for s in self._readers:
                s.close()
            self._readers.clear()


class LockedBackend(Backend):
    """A backend whose generations take ``lock`` (a llama.cpp context serves one at a time), for
    the ad copy writer, which only calls ``generate``."""

    def __init__(self, backend: Backend, lock: threading.Lock):
        self._backend, self._lock = backend, lock
        self.name, self.extractive = backend.name, backend.extractive

    @classmethod
    def around(cls, backend: Backend, lock: threading.Lock) -> Backend:
        """``backend`` itself when it has no model to share (extractive), else locked."""
        return backend if backend.extractive else cls(backend, lock)

    @property
    def model(self) -> str:
        return self._backend.model

    def generate(self, messages: Sequence[ChatMessage | dict] | str,
                 config: GenerationConfig | None = None) -> Generation:
        with self._lock:               # the backend times its own generation, not the wait
            return self._backend.generate(messages, config)

    def _generate(self, messages: list[ChatMessage], cfg: GenerationConfig) -> Generation:
        return self.generate(messages, cfg)

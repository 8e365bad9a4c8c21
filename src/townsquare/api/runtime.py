"""What one server process shares between its request threads: one writer, readers, and derived
indexes kept fresh in the background.

    >>> import tempfile
    >>> from townsquare.posts import Post
    >>> from townsquare.store.base import Stored
    >>> with Runtime(tempfile.mkdtemp(), backend="extractive") as rt:
    ...     r = rt.writer.write([Stored(Post(id=1212092628029698048, text="Flood on Main St",
    ...                                      source="api").normalized())]).result()
    ...     (r.inserted, rt.engine().run("flood", mode="latest").results[0].id)
    (1, 1212092628029698048)

Threads and connections (SQLite in WAL mode: one writer, any number of readers):

- **Writer** (``WriteQueue``): the only connection that writes. Request threads hand it parsed
  posts and wait for their commit; whatever arrived meanwhile is written in the same
  transaction (group commit), so many small ingest requests cost about as much as one large one.
- **Readers**: one connection per request thread (``reader()``), each with its own search engine
  over the shared derived indexes.
- **Indexer** (``_index_loop``): catches the tantivy index and the vector index up every
  ``refresh_s``; this bounds ingest-to-searchable freshness in ``top`` search (``latest`` search
  reads SQLite's FTS5, current at commit). Queries never write an index
  (``SearchEngine(refresh_indexes=False)``).
- **Background** (``_background_loop``): in small steps, and within ``background_share`` of the
  wall clock while behind, the late stage (language id, near-duplicate links), embeddings and
  stories (no cap once requests stop for a second). A thread apart from the indexer, so a slow
  step never delays search freshness.

Story views and summaries run under locks: the clusterer is not safe to read while it changes,
and a llama.cpp model serves one generation at a time.

**Server mode** (a PostgreSQL store, ``$TOWNSQUARE_STORE``): several processes serve one store.
Search needs no derived index there: full text and the HNSW vector index live in PostgreSQL,
current at commit, so every worker sees every post at once (``embed.sync.InStoreVectors``; no
tantivy, no faiss file). The background work runs in one worker only: the one whose connection holds the
``background`` advisory lock (``Store.try_leader``); if it dies, its lock goes with its connection
and another worker's next step takes over. Stories are shared, not recomputed per worker: the
leader publishes the clusterer's state to the store (``shared_state``, every ``publish_s`` once
caught up, every ``publish_backlog_s`` while behind) and the other workers load each new version
(outside their story lock, then swap), so every worker shows the same story ids and members. Trends are computed from the store per request, the same anywhere.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from townsquare.api.writequeue import WriteQueue
from townsquare.store import DB_FILE, open_store, store_url
from townsquare.store.base import Store

log = logging.getLogger("townsquare.api")


class _LockedVectors:
    """The vector index shared by request threads: faiss must not be searched while it grows."""

    def __init__(self, vectors: Any, lock: threading.Lock):
        self._v, self._lock = vectors, lock

    @property
    def model(self) -> str | None:
        return self._v.model

    def __len__(self) -> int:
        return len(self._v)

    def search(self, q, k: int):
        with self._lock:
            return self._v.search(q, k)

    def refresh(self) -> int:
        with self._lock:
            return self._v.refresh()


class Runtime:
    """Shared state of a server process over the store in ``home``.

    ``backend``: the default generation backend (``llm.get_backend`` names), with
    ``backend_options``; ``embed``: embed new posts in the background (default: when the store
    already holds vectors); ``refresh_s``: the indexer's period (search freshness);
    ``story_step``: posts clustered (and language-identified) per background step;
    ``background_share``: the most of the wall clock the background work takes while behind.
    """

    def __init__(self, home: str | Path, *, backend: str | None = None,
                 backend_options: dict | None = None, embed: bool | None = None,
                 refresh_s: float = 0.2, story_step: int = 200, embed_step: int = 256,
                 background_share: float = 0.15, save_every_s: float = 60.0,
                 start: bool = True):
        if refresh_s <= 0:
            raise ValueError(f"refresh_s must be > 0, got {refresh_s}")
        if story_step < 1 or embed_step < 1:
            raise ValueError("story_step and embed_step must be >= 1")
        if not 0 < background_share <= 1:
            raise ValueError(f"background_share must be in (0, 1], got {background_share}")
        self.background_share = background_share
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.url = store_url()                 # server mode: a PostgreSQL store shared by workers
        self.db_path: Any = self.url or self.home / DB_FILE
        # Server mode: how often the leader publishes its stories (the clusterer's state: ~14 MB
        # and 0.4 s to write, 0.8 s for each other worker to load, at 50k posts): every
        # ``publish_s`` once caught up, every ``publish_backlog_s`` while working off a backlog,
        # so that a busy leader spends its background share on clustering, not on copies.
        self.publish_s = 2.0
        self.publish_backlog_s = 30.0
        self._unpublished = False
        self.leader = not self.url              # server mode: set by the background thread
        self._published = 0.0
        self._stories_version = 0
        self.backend_name = backend
        self.backend_options = dict(backend_options or {})
        self.refresh_s = refresh_s
        self.story_step = story_step
        self.embed_step = embed_step
        self.save_every_s = save_every_s
        self.checkpoint_s = 2.0
        self.started_at = time.time()
        self.last_request = 0.0           # monotonic time of the latest request (``touch``)
        self._local = threading.local()
        self._readers: list[Store] = []
        self._readers_lock = threading.Lock()
        wstore = open_store(self.db_path)
        wstore.set_autocheckpoint(False)          # the indexer flushes the log (``_index_loop``)
        self.writer = WriteQueue(wstore, max_group=5_000)
        # The indexer's own connection: it only reads (posts since a watermark).
        self._index_store = open_store(self.db_path)
        # The background thread's (late stage and embeddings write through it).
        self._bg_store = open_store(self.db_path)
        self.lexical = self._lexical_index()
        self.vectors_lock = threading.Lock()
        self.embedder, self.vectors = self._vector_index()
        self.embed = (self.embedder is not None) if embed is None else embed
        self.stories_lock = threading.Lock()
        self._story_store = open_store(self.db_path)
        from townsquare.stories.state import StoryState
        self.stories = StoryState(self._story_store,
                                  None if self.url else self.home / "stories.pkl")
        if self.url:
            self._load_shared_stories()
        self._backends: dict[str, Any] = {}
        self._ads_embedder = None
        self._backend_lock = threading.Lock()
        self.generation_lock = threading.Lock()
        self._summaries: OrderedDict[tuple, dict] = OrderedDict()
        # Built now, before the server answers: lingua loads its language models on first use
        # (~2 s holding the interpreter), which would otherwise stall the first requests.
        from townsquare.ingest.enrich import LateStage
        self._late = LateStage(self._bg_store)
        self._late.language.detect(["warm up the language models"])
        self.refresh_ms: deque[float] = deque(maxlen=1000)   # recent tantivy refreshes
        self.index_errors = 0
        self.last_index_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        if start:
            self.start()

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if not self._threads:
            for target, name in ((self._index_loop, "townsquare-indexer"),
                                 (self._background_loop, "townsquare-background")):
                t = threading.Thread(target=target, name=name, daemon=True)
                t.start()
                self._threads.append(t)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=30)
        self.writer.close()
        if self.lexical is not None:      # the indexer has stopped: its writer can finish
            self.lexical.close()
        if self.url and self.is_leader():
            self._guarded(lambda: self._publish_stories(force=True))
        with self.stories_lock:
            try:
                self.stories.save()
            except OSError as e:                           # derived data: rebuilt next time
                log.warning("could not save stories: %s", e)
        for s in [self._index_store, self._bg_store, self._story_store, *self._readers]:
            s.close()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- per-thread readers ----------------------------------------------------------------------
    def reader(self) -> Store:
        """This thread's read connection."""
        s = getattr(self._local, "store", None)
        if s is None:
            s = self._local.store = open_store(self.db_path)
            with self._readers_lock:
                self._readers.append(s)
        return s

    def rate_limiter(self):
        """API keys' rate limits: per process with the embedded store; shared by every worker
        through the store in server mode."""
        from townsquare.api.auth import RateLimiter, SharedRateLimiter
        return SharedRateLimiter(self.reader) if self.url else RateLimiter()

    def engine(self):
        """This thread's search engine (its reader, the shared indexes; never writes them)."""
        e = getattr(self._local, "engine", None)
        if e is None:
            from townsquare.search.engine import SearchEngine
            if self.url:
                from townsquare.embed.sync import InStoreVectors
                vec = InStoreVectors(self.reader()) if self.embedder is not None else None
            else:
                vec = _LockedVectors(self.vectors, self.vectors_lock) if self.vectors else None
            e = self._local.engine = SearchEngine(
                self.reader(), embedder=self.embedder if vec else None, vectors=vec,
                lexical_index=self.lexical, refresh_indexes=False)
        return e

    # --- generation ------------------------------------------------------------------------------
    def backend(self, name: str | None = None):
        """A generation backend by name (default: the server's), loaded once and kept."""
        from townsquare.llm import get_backend
        key = name or self.backend_name or "default"
        with self._backend_lock:
            b = self._backends.get(key)
            if b is None:
                opts = dict(self.backend_options if name in (None, self.backend_name) else {})
                if (name or self.backend_name) == "trained" and "checkpoint" not in opts:
                    # the layout of `townsquare corpus build` and `townsquare train`
                    opts["checkpoint"] = self.home / "model" / "ckpt.pt"
                    opts.setdefault("tokenizer", self.home / "corpus" / "data" / "tokenizer.json")
                b = self._backends[key] = get_backend(name or self.backend_name, **opts)
            return b

    def summarize(self, *, post_ids: list[int] | None = None, query: str | None = None,
                  backend: str | None = None, cache_key: tuple | None = None) -> dict:
        """A verified, cited summary as a dict; one generation at a time (llama.cpp contexts are
        not shared between threads). ``cache_key`` keeps the result (a story at a given size)."""
        from townsquare.summarize.summarizer import Summarizer
        if cache_key is not None and (hit := self._summaries.get(cache_key)) is not None:
            return hit
        llm = self.backend(backend)
        engine = self.engine()
        summ = Summarizer(self.reader(), llm, embedder=engine.embedder)
        lock = self.generation_lock if not llm.extractive else nullcontext()
        t0 = time.perf_counter()
        with lock:
            waited = time.perf_counter() - t0
            result = summ.run(post_ids=post_ids, query=query,
                              engine=engine if query is not None else None).to_dict()
        result["timings_ms"]["queued"] = round(waited * 1000, 2)
        result["timings_ms"]["total"] = round((time.perf_counter() - t0) * 1000, 2)
        if cache_key is not None:
            self._summaries[cache_key] = result
            while len(self._summaries) > 256:
                self._summaries.popitem(last=False)
        return result

    # --- ads -----------------------------------------------------------------------------------------
    def ads(self):
        """This thread's ad server (``ads.serving``): its reader, the shared campaign and profile
        files, one embedder, copy written by the server's backend one generation at a time."""
        a = getattr(self._local, "ads", None)
        if a is None:
            from townsquare.ads.serving import build_ad_server
            from townsquare.api.ads import locked_backend
            with self._backend_lock:
                if self._ads_embedder is None:
                    from townsquare.embed.models import get_embedder
                    self._ads_embedder = self.embedder or get_embedder(
                        self.reader().embed_model() or "e5-small-int8")
            a = self._local.ads = build_ad_server(
                self.reader(), self.home, backend=locked_backend(self.backend(),
                                                                 self.generation_lock),
                engine=self.engine(), embedder=self._ads_embedder)
        return a

    # --- background indexing ---------------------------------------------------------------------
    def _lexical_index(self):
        if self.url:                           # PostgreSQL's own full-text index is current
            return None
        try:
            from townsquare.search.lexindex import LexicalIndex
        except ImportError:                    # tantivy absent: FTS5 answers every query
            return None
        return LexicalIndex(self._index_store, self.home / "lexical", keep_writer=True)

    def _vector_index(self):
        model = self._index_store.embed_model()
        if model is None:
            return None, None
        from townsquare.embed.models import get_embedder
        from townsquare.embed.sync import StoreVectors
        emb = get_embedder(model)
        if self.url:                           # pgvector's HNSW index, through each reader
            return emb, None
        return emb, StoreVectors(self._index_store, self.home / "vectors.index", emb.dim)

    def refresh_stats(self) -> dict[str, float]:
        """Duration of recent lexical index refreshes (what bounds search freshness)."""
        v = sorted(self.refresh_ms)
        if not v:
            return {"count": 0}
        return {"count": len(v), "p50_ms": v[len(v) // 2], "p99_ms": v[int(0.99 * (len(v) - 1))],
                "max_ms": v[-1]}

    def touch(self) -> None:
        """A request arrived (the app calls this): background work keeps to its share."""
        self.last_request = time.monotonic()

    def lags(self) -> dict[str, int]:
        """Posts each derived index has not caught up with yet."""
        newest = self.reader().max_seq()
        return {"lexical_index": self.lexical.lag(newest) if self.lexical else 0,
                "stories": max(0, newest - self.stories.watermark),
                "embedding": self.reader().embedding_pending() if self.embed else 0}

    def step(self) -> dict[str, int]:
        """One full indexer pass (the search indexes, then the background work); tests call it
        to make the derived state current."""
        return {**self.refresh_search(), **self.background_step()}

    def refresh_search(self) -> dict[str, int]:
        """What search reads: new posts into the tantivy index, new vectors into faiss."""
        did = {"lexical": 0, "vectors": 0}
        if self.lexical is not None:
            t0 = time.perf_counter()
            did["lexical"] = self.lexical.refresh()
            if did["lexical"]:
                self.refresh_ms.append(round((time.perf_counter() - t0) * 1000, 1))
        if self.vectors is not None:
            with self.vectors_lock:
                did["vectors"] = self.vectors.refresh()
        return did

    def is_leader(self) -> bool:
        """Whether this process runs the background work: always with the embedded store; in
        server mode, the worker holding the store's ``background`` lock."""
        self.leader = not self.url or self._bg_store.try_leader("background")
        return self.leader

    def _load_shared_stories(self) -> bool:
        """Server mode, not the leader: load the stories the leader published, when newer."""
        version = self._story_store.shared_version("stories")
        if version == self._stories_version:
            return False
        v, body = self._story_store.get_shared("stories")
        if body is not None:
            from townsquare.stories.state import StoryState
            fresh = StoryState(self._story_store, None, self.stories.clusterer.config)
            if fresh.loads(body):           # unpickled without the lock: reads go on meanwhile
                with self.stories_lock:
                    self.stories = fresh
                self._stories_version = v
        return True

    def _publish_stories(self, force: bool = False, behind: bool = False) -> None:
        every = self.publish_backlog_s if behind else self.publish_s
        if force or time.monotonic() - self._published > every:
            with self.stories_lock:
                body = self.stories.dumps()
            self._stories_version = self._story_store.put_shared("stories", body)
            self._published = time.monotonic()
            self._unpublished = False

    def background_step(self) -> dict[str, int]:
        """Bounded steps of the slower derived state: the late stage (language id, near-
        duplicate links), embeddings, stories. In server mode only the leader computes them;
        another worker loads the leader's stories instead."""
        did = {"late_stage": 0, "embedded": 0, "stories": 0}
        if not self.is_leader():
            self._load_shared_stories()
            return did
        did["late_stage"] = self._late.run(max_posts=self.story_step).processed
        if self.embed and self.embedder is not None:
            from townsquare.embed.stage import EmbedStage
            did["embedded"] = EmbedStage(self._bg_store, self.embedder).run(
                max_posts=self.embed_step).processed
        with self.stories_lock:
            did["stories"] = self.stories.refresh(limit=self.story_step, save=False)
        if self.url:
            self._unpublished = self._unpublished or bool(did["stories"])
            if self._unpublished or self._stories_version == 0:
                self._publish_stories(force=self._stories_version == 0,
                                      behind=did["stories"] >= self.story_step)
        return did

    def _guarded(self, fn) -> bool:
        """Run one step; an error is counted and logged, never fatal to the thread."""
        try:
            fn()
            return True
        except Exception as e:
            self.index_errors += 1
            self.last_index_error = f"{type(e).__name__}: {e}"
            log.exception("background step failed")
            return False

    def _index_loop(self) -> None:
        # Search freshness: the tantivy and vector indexes catch up every ``refresh_s``, in a
        # thread of their own so that no slow background step can delay them.
        last_checkpoint = time.monotonic()
        while not self._stop.is_set():
            t0 = time.monotonic()
            self._guarded(self.refresh_search)
            if time.monotonic() - last_checkpoint > self.checkpoint_s:
                self._guarded(self._index_store.checkpoint)   # flush the write-ahead log
                last_checkpoint = time.monotonic()
            self._wake.wait(max(0.0, self.refresh_s - (time.monotonic() - t0)))

    def _background_loop(self) -> None:
        # Clustering, language id and embeddings are Python work that holds the GIL, so while
        # they have a backlog they take at most ``background_share`` of the wall clock, in small
        # steps: under a heavy ingest stories lag (``lags()`` says by how much) rather than
        # requests slowing down, and they catch up when the stream calms.
        last_save = time.monotonic()
        while not self._stop.is_set():
            b0 = time.monotonic()
            did: dict = {}
            if not self._guarded(lambda: did.update(self.background_step())):
                self._wake.wait(5.0)
                continue
            spent = time.monotonic() - b0
            if time.monotonic() - last_save > self.save_every_s:
                with self.stories_lock:
                    self._guarded(self.stories.save)
                last_save = time.monotonic()
            busy = any(did.values())
            # The cap holds while requests arrive; an idle server catches up at full speed.
            idle = time.monotonic() - self.last_request > 1.0
            share = 1.0 if idle else self.background_share
            self._wake.wait(spent * (1 / share - 1) if busy else self.refresh_s)

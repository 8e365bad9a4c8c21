"""What one server process shares between its request threads: one writer, readers, and derived
indexes kept fresh in the background.

    >>> import tempfile
    >>> from townsquare.posts import Post
    >>> from townsquare.settings import LLMSettings, Settings
    >>> from townsquare.store.base import Stored
    >>> settings = Settings(home=tempfile.mkdtemp(), llm=LLMSettings(backend="extractive"))
    >>> with Runtime(settings) as rt:
    ...     r = rt.writer.write([Stored(Post(id=1212092628029698048, text="Flood on Main St",
    ...                                      source="api").normalized())]).result()
    ...     (r.inserted, rt.services.engine().run("flood", mode="latest").results[0].id)
    (1, 1212092628029698048)

Threads and connections (SQLite in WAL mode: one writer, any number of readers), each part in a
module of its own:

- **Writer** (``writer``, ``api.writequeue``): the only connection that writes. Request threads
  hand it parsed posts and wait for their commit; whatever arrived meanwhile is written in the
  same transaction (group commit), so many small ingest requests cost about as much as one.
- **Readers** (``services``, ``api.perrequest``): one connection per request thread, each with
  its own search engine over the shared derived indexes; the generation backends, cached
  summaries and ad servers.
- **Indexer** (``indexer``, ``api.indexer``): a thread that catches the tantivy index and the
  vector index up every ``refresh_s``; this bounds ingest-to-searchable freshness.
- **Background** (``background``, ``api.background``): a thread that runs, in small steps and
  within ``background_share`` of the wall clock while behind, the late stage (language id,
  near-duplicate links), embeddings and stories; in server mode only in the leader process,
  which shares its stories with the others through the store.

**Server mode** (``settings.server_mode``: a PostgreSQL store): several processes, on one machine
or several, serve one store. Search needs no derived index there: full text and the HNSW vector
index live in PostgreSQL, current at commit, so every process sees every post at once; API keys'
rate limits are kept in the store too (``api.auth.SharedRateLimiter``).
"""
from __future__ import annotations

import time
from types import TracebackType

from townsquare.api.background import Background
from townsquare.api.indexer import Indexer
from townsquare.api.loops import StepErrors
from townsquare.api.perrequest import RequestServices
from townsquare.api.writequeue import WriteQueue
from townsquare.services.indexes import embedder_for
from townsquare.settings import Settings
from townsquare.store import open_store


class Runtime:
    """Shared state of a server process over the store in ``settings``.

    ``embed``: embed new posts in the background (default: when the store already holds
    vectors); ``refresh_s``: the indexer's period (search freshness); ``story_step`` and
    ``embed_step``: posts clustered (and language-identified), and embedded, per background step;
    ``background_share``: the most of the wall clock the background work takes while behind;
    ``save_every_s``: how often the stories are saved; ``start=False``: no threads (tests step
    the indexer and the background work themselves with ``step``).
    """

    def __init__(self, settings: Settings, *, embed: bool | None = None, refresh_s: float = 0.2,
                 story_step: int = 200, embed_step: int = 256, background_share: float = 0.15,
                 save_every_s: float = 60.0, start: bool = True):
        if refresh_s <= 0:
            raise ValueError(f"refresh_s must be > 0, got {refresh_s}")
        if story_step < 1 or embed_step < 1:
            raise ValueError("story_step and embed_step must be >= 1")
        if not 0 < background_share <= 1:
            raise ValueError(f"background_share must be in (0, 1], got {background_share}")
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.started_at = time.time()
        self.errors = StepErrors()                 # failed indexer and background steps
        wstore = open_store(settings.db_target)
        wstore.set_autocheckpoint(False)           # the indexer flushes the log
        self.writer = WriteQueue(wstore, max_group=5_000)
        index_store = open_store(settings.db_target)
        embedder = (embedder_for(index_store, settings)
                    if index_store.embed_model() is not None else None)
        self.indexer = Indexer(index_store, settings.home, embedder, self.errors,
                               refresh_s=refresh_s)
        self.background = Background(settings, embedder, self.errors, embed=embed,
                                     story_step=story_step, embed_step=embed_step,
                                     background_share=background_share,
                                     save_every_s=save_every_s, idle_wait_s=refresh_s)
        self.services = RequestServices(settings, self.indexer, embedder)
        if start:
            self.start()

    @property
    def server_mode(self) -> bool:
        return self.settings.server_mode

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the indexer and background threads (once)."""
        self.indexer.start()
        self.background.start()

    def close(self) -> None:
        """Stop the threads, then commit what is queued, publish and save the stories, and close
        every connection."""
        self.indexer.signal_stop()
        self.background.signal_stop()
        self.indexer.join()
        self.background.join()
        self.writer.close()
        self.indexer.close()           # the indexer has stopped: its tantivy writer can finish
        self.background.close()
        self.services.close()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- across the parts -----------------------------------------------------------------------
    def touch(self) -> None:
        """A request arrived (the app calls this): background work keeps to its share."""
        self.background.touch()

    def lags(self) -> dict[str, int]:
        """Posts each derived index has not caught up with yet."""
        reader = self.services.reader()
        newest = reader.max_seq()
        return {"lexical_index": self.indexer.lag(newest),
                "stories": self.background.lag(newest),
                "embedding": reader.embedding_pending() if self.background.embed else 0}

    def step(self) -> dict[str, int]:
        """One full pass of the indexer, then of the background work; tests call it to make the
        derived state current."""
        return {**self.indexer.refresh(), **self.background.step()}

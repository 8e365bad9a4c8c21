"""The background work: the slower derived state, in small steps that yield to requests.

    >>> import tempfile
    >>> from townsquare.settings import Settings
    >>> bg = Background(Settings(home=tempfile.mkdtemp()), None, StepErrors())
    >>> bg.step(), bg.leader
    ({'late_stage': 0, 'embedded': 0, 'stories': 0}, True)
    >>> bg.close()

Each step runs the late stage (language id, near-duplicate links), embeds new posts (when the
store holds vectors, or ``embed=True``) and feeds new posts to the story clusterer, at most
``story_step`` / ``embed_step`` posts each. Clustering, language id and embeddings are Python
work that holds the GIL, so while they have a backlog they take at most ``background_share`` of
the wall clock: under a heavy ingest stories lag (``lag``) rather than requests slowing down,
and they catch up at full speed once requests stop for a second (``touch`` marks each request).
A thread apart from the indexer (``api.indexer``), so a slow step never delays search freshness.
Story views run under ``stories_lock``: the clusterer is not safe to read while it changes.
Saving (or, in server mode, publishing) the stories only reads them and runs on this thread, the
one that changes them, so it takes no lock: a copy of the state takes seconds once the stream is
large (1.3 to 1.8 s and 47 MB at 184,000 posts), and held under the lock it stalled every story
view and ``/v1/stats`` for that long. Its cost also spaces the copies out (``spaced``).

**Server mode** (a PostgreSQL store shared by several server processes): the background work
runs in one process only, the one whose connection holds the store's ``background`` advisory lock
(``Store.try_leader``); if it dies, its lock goes with its connection and another process's next
step takes over. Stories are shared, not recomputed per process: the leader publishes the
clusterer's state to the store (``shared_state``, every ``publish_s`` once caught up, every
``publish_backlog_s`` while behind) and the others load each new version (outside their story
lock, then swap), so every process shows the same story ids and members. Trends are computed
from the store per request, the same anywhere.
"""
from __future__ import annotations

import logging
import threading
import time

from townsquare.api.loops import Loop, StepErrors, spaced
from townsquare.embed.stage import EmbedStage
from townsquare.ingest.enrich import LateStage
from townsquare.protocols import Embedder
from townsquare.services.happening import STORIES_FILE
from townsquare.settings import Settings
from townsquare.store import open_store
from townsquare.stories.state import StoryState, StoryView

log = logging.getLogger("townsquare.api")

# A save or publish of the stories comes at most once per this many times its own duration, so
# that copying a large state takes at most ~5% of the background thread (``loops.spaced``).
COPY_COST_FACTOR = 20.0


class Background(Loop):
    """The late stage, embeddings (with ``embedder``) and stories of the store in ``settings``,
    through two connections of its own (one for the stories, one for the rest)."""

    name = "townsquare-background"

    def __init__(self, settings: Settings, embedder: Embedder | None, errors: StepErrors, *,
                 embed: bool | None = None, story_step: int = 200, embed_step: int = 256,
                 background_share: float = 0.15, save_every_s: float = 60.0,
                 idle_wait_s: float = 0.2):
        super().__init__()
        self.server_mode = settings.server_mode
        self.embedder = embedder
        self.embed = (embedder is not None) if embed is None else embed
        self.errors = errors
        self.story_step, self.embed_step = story_step, embed_step
        self.background_share = background_share
        self.save_every_s = save_every_s
        self.idle_wait_s = idle_wait_s      # between steps once caught up
        self.last_request = 0.0             # monotonic time of the latest request (``touch``)
        # Server mode: how often the leader publishes its stories (the clusterer's state: ~14 MB
        # and 0.4 s to write, 0.8 s for each other process to load, at 50k posts): every
        # ``publish_s`` once caught up, every ``publish_backlog_s`` while working off a backlog,
        # so that a busy leader spends its background share on clustering, not on copies.
        self.publish_s = 2.0
        self.publish_backlog_s = 30.0
        self.leader = not self.server_mode     # server mode: decided at each step
        self._unpublished = False
        self._published = 0.0
        self._publish_took = 0.0            # seconds the last publish took (``spaced``)
        self._save_took = 0.0               # ... and the last save
        self._stories_version = 0
        self._store = open_store(settings.db_target)       # the late stage and embeddings write
        self._story_store = open_store(settings.db_target)
        self.stories_lock = threading.Lock()
        self.stories = StoryState(self._story_store,
                                  None if self.server_mode else settings.home / STORIES_FILE)
        if self.server_mode:
            self._load_shared_stories()
        self._late = LateStage(self._store)
        # Now, before the server answers: lingua loads its language models on first use (~2 s
        # holding the interpreter), which would otherwise stall the first requests.
        self._late.language.detect(["warm up the language models"])

    # --- what requests read ---------------------------------------------------------------------
    def touch(self) -> None:
        """A request arrived: background work keeps to its share."""
        self.last_request = time.monotonic()

    def story(self, story_id: int) -> StoryView | None:
        with self.stories_lock:
            return self.stories.story(story_id)

    def story_counts(self) -> dict[str, float]:
        """How many stories, and the share of posts in none (for ``/v1/stats``)."""
        with self.stories_lock:
            return {"count": len(self.stories.clusterer.stories()),
                    "no_story_share": round(self.stories.unassigned_share(), 4)}

    def lag(self, newest: int) -> int:
        """Posts up to ``newest`` (a store sequence number) the stories have not read yet."""
        return max(0, newest - self.stories.watermark)

    # --- steps ----------------------------------------------------------------------------------
    def is_leader(self) -> bool:
        """Whether this process runs the background work: always with the embedded store; in
        server mode, the process holding the store's ``background`` lock."""
        self.leader = not self.server_mode or self._store.try_leader("background")
        return self.leader

    def step(self) -> dict[str, int]:
        """Bounded steps of the late stage, embeddings and stories. In server mode only the
        leader computes them; another process loads the leader's stories instead."""
        did = {"late_stage": 0, "embedded": 0, "stories": 0}
        if not self.is_leader():
            self._load_shared_stories()
            return did
        did["late_stage"] = self._late.run(max_posts=self.story_step).processed
        if self.embed and self.embedder is not None:
            did["embedded"] = EmbedStage(self._store, self.embedder).run(
                max_posts=self.embed_step).processed
        with self.stories_lock:
            did["stories"] = self.stories.refresh(limit=self.story_step, save=False)
        if self.server_mode:
            self._unpublished = self._unpublished or bool(did["stories"])
            if self._unpublished or self._stories_version == 0:
                self._publish_stories(force=self._stories_version == 0,
                                      behind=did["stories"] >= self.story_step)
        return did

    def _load_shared_stories(self) -> bool:
        """Server mode, not the leader: load the stories the leader published, when newer."""
        version = self._story_store.shared_version("stories")
        if version == self._stories_version:
            return False
        v, body = self._story_store.get_shared("stories")
        if body is not None:
            fresh = StoryState(self._story_store, None, self.stories.clusterer.config)
            if fresh.loads(body):           # unpickled without the lock: reads go on meanwhile
                with self.stories_lock:
                    self.stories = fresh
                self._stories_version = v
        return True

    def _publish_stories(self, force: bool = False, behind: bool = False) -> None:
        every = spaced(self.publish_backlog_s if behind else self.publish_s, self._publish_took,
                       1 / COPY_COST_FACTOR)
        if force or time.monotonic() - self._published > every:
            t0 = time.monotonic()
            body = self.stories.dumps()         # no lock: this thread is the only writer
            self._stories_version = self._story_store.put_shared("stories", body)
            self._published = time.monotonic()
            self._publish_took = self._published - t0
            self._unpublished = False

    def save_stories(self) -> None:
        """Write the stories to their file. On this loop's thread, or after ``join``: the
        state is read without ``stories_lock`` (requests read it meanwhile; nothing changes
        it but this thread)."""
        t0 = time.monotonic()
        self.stories.save()
        self._save_took = time.monotonic() - t0

    def run(self) -> None:
        last_save = time.monotonic()
        while not self.stopping:
            b0 = time.monotonic()
            did: dict[str, int] = {}
            if not self.errors.guarded(lambda: did.update(self.step())):
                self.sleep(5.0)
                continue
            spent = time.monotonic() - b0
            if time.monotonic() - last_save > spaced(self.save_every_s, self._save_took,
                                                      1 / COPY_COST_FACTOR):
                self.errors.guarded(self.save_stories)
                last_save = time.monotonic()
            busy = any(did.values())
            # The cap holds while requests arrive; an idle server catches up at full speed.
            idle = time.monotonic() - self.last_request > 1.0
            share = 1.0 if idle else self.background_share
            self.sleep(spent * (1 / share - 1) if busy else self.idle_wait_s)

    def close(self) -> None:
        """After ``join``: the leader publishes its last stories, the stories are saved (derived
        data: a failure is logged, and they are rebuilt next time), the connections close."""
        if self.server_mode and self.is_leader():
            self.errors.guarded(lambda: self._publish_stories(force=True))
        try:
            self.save_stories()
        except OSError as e:
            log.warning("could not save stories: %s", e)
        self._store.close()
        self._story_store.close()

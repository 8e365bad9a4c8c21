"""The maintenance step: after deletions, rewrite whatever still holds a deleted post's bytes.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from townsquare.posts import Post
    >>> from townsquare.store import open_store
    >>> from townsquare.store.base import Stored
    >>> home = Path(tempfile.mkdtemp())
    >>> with open_store(home / "townsquare.db") as store:
    ...     _ = store.write_batch([Stored(Post(id=1212092628029698048, text="Flood on Main St",
    ...                                        source="t").normalized())], [])
    ...     _ = store.delete([1212092628029698048])
    ...     did = compact_home(store, home)
    ...     (did["store"]["deletions"], did["lexical_index"]["rebuilt"], compact_home(store, home)["store"]["deletions"])
    (1, False, 0)

A deletion takes effect in search at once (the store forgets the post; each derived index drops
it at its next refresh, from the store's deletions log). Its bytes can outlive that: tantivy only
marks a deleted document, the vector index keeps a tombstone, FTS5 adds a delete marker beside
the old entry, and the write-ahead log keeps old page images. This step rewrites each of them:

1. the store (``Store.compact``): FTS5 merged into one b-tree, the write-ahead log checkpointed
   and truncated; SQLite's ``secure_delete`` has zeroed freed pages meanwhile. First, because it
   takes the home's writer lock (``store.lock``), under which the files beside it are rewritten;
2. the tantivy index (``LexicalIndex.compact``): written again from the store, old segments
   removed;
3. the vector index (``StoreVectors.compact``): its file written again without tombstones;
4. the stories (``StoryState``): the deleted posts removed and ``stories.pkl`` written again (a
   refresh does this already; here it runs for a home whose stories nobody read since).

Each part costs next to nothing when nothing was deleted since it last ran, and each part's cost
after a deletion is a full rewrite of that part (indexing every post again, for tantivy).
``townsquare compact`` runs it; the server runs the same parts by itself (``api.indexer``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from townsquare.embed.sync import StoreVectors
from townsquare.search.lexindex import LexicalIndex
from townsquare.services.happening import STORIES_FILE
from townsquare.services.indexes import VECTORS_FILE, lexical_index
from townsquare.stories.state import StoryState
from townsquare.store.base import Store

COMPACTED_FILE = "compacted.json"     # the deletions log's seq the last compaction reached


def compact_lexical(lexical: LexicalIndex | None) -> dict[str, Any]:
    """Part 1 (``{"available": False}`` without a tantivy index)."""
    return {"available": False} if lexical is None else {"available": True, **lexical.compact()}


def compact_vectors(vectors: StoreVectors | None) -> dict[str, Any]:
    """Part 2 (``{"available": False}`` without a vector index file)."""
    return {"available": False} if vectors is None else {"available": True, **vectors.compact()}


def vectors_beside(store: Store, home: Path) -> StoreVectors | None:
    """The vector index file in ``home``, opened without its embedding model (its sidecar says
    the dimension); None when there is none."""
    path = Path(home) / VECTORS_FILE
    sidecar = path.with_name(path.name + ".json")
    if store.indexes_in_store or not path.exists() or not sidecar.exists():
        return None
    return StoreVectors(store, path, int(json.loads(sidecar.read_text())["dim"]))


def compact_home(store: Store, home: Path) -> dict[str, Any]:
    """Every part, over the store and the files in ``home``; what each did and the seconds the
    whole step took."""
    t0 = time.perf_counter()
    did: dict[str, Any] = {"store": store.compact()}
    lexical = lexical_index(store, home)
    try:
        did["lexical_index"] = compact_lexical(lexical)
    finally:
        if lexical is not None:
            lexical.close()
    did["vectors"] = compact_vectors(vectors_beside(store, home))
    # The stories part loads ``stories.pkl`` (seconds at 100k posts): only when a post was
    # deleted since the last compaction of this home, which ``COMPACTED_FILE`` remembers.
    mark = Path(home) / COMPACTED_FILE
    through = json.loads(mark.read_text())["deleted_through"] if mark.exists() else 0
    newest = _newest_deletion(store, through)
    stories = Path(home) / STORIES_FILE
    if not stories.exists():
        did["stories"] = {"available": False}
    elif newest == through:
        did["stories"] = {"available": True, "changes": 0, "skipped": "nothing deleted since"}
    else:
        did["stories"] = {"available": True, "changes": StoryState(store, stories).refresh()}
    mark.write_text(json.dumps({"deleted_through": newest}))
    did["seconds"] = round(time.perf_counter() - t0, 3)
    return did


def _newest_deletion(store: Store, after: int) -> int:
    """The seq of the newest entry of the store's deletions log (``after`` when none is newer)."""
    newest = after
    while page := store.deletions_since(newest, 10_000):
        newest = page[-1][0]
    return newest

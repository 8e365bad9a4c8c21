"""Stories kept beside the store: the clusterer's state saved in a file, caught up from the store.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> st = StoryState(SQLiteStore(":memory:"), path=None)
    >>> st.refresh(), st.stories()
    (0, [])

Like the lexical and vector indexes, the story state is derived: the store is the source of
truth, and ``stories.pkl`` in the store's folder holds the clusterer (``stories.cluster``) with
the ``seq`` watermark up to which it has read (a file made with other settings is ignored and
the stories are rebuilt). ``refresh()`` feeds it the posts ingested since, in event time
(sorted by ``created_at``; a backfill older than the clock is clustered in a pass of its own and
merged in: see ``refresh``), so the stories hardly depend on the order files arrived in. It
first removes the posts deleted since, from the store's deletions log behind a watermark of its
own (``stories.forget``: the stories that held them are recomputed without them), and then
saves the file at once, whatever ``save`` says: the file must not keep a deleted post until the
next periodic save. ``story()`` also drops members deleted
after the last refresh.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from townsquare.posts import Post, format_time
from townsquare.stories.cluster import Cluster, StoryClusterer, StoryConfig, StoryPost
from townsquare.stories.forget import forget
from townsquare.store.base import Store
from townsquare.text.rules import clean_post

# The saved state's layout: another is rebuilt from the store. 3: document frequencies in a
# table of fixed size (``stories.counts``).
FORMAT = 3
_PAGE = 20_000


def story_post(p: Post) -> StoryPost:
    """A stored post as the clusterer sees it (its author: the handle, else the numeric id)."""
    return StoryPost(p.id, p.created_at, p.text,
                     p.author_handle or (str(p.author_id) if p.author_id else None), p.lang)


def read_since(store: Store, after_seq: int,
               limit: int | None = None) -> tuple[list[tuple[int, int]], int, int]:
    """``(created_at, id)`` of the posts ingested after ``after_seq`` (at most about ``limit``,
    in whole pages), sorted: event time; with the last ``seq`` read and how many rows were read
    (a deleted post's row counts). Only ids and times are kept, so a large backlog is cheap."""
    n, seq, order = 0, after_seq, []
    page = _PAGE if limit is None else max(1, min(_PAGE, limit))
    while limit is None or n < limit:
        rows = store.posts_since(seq, page)
        if not rows:
            break
        made = store.created_at_of([r[0] for r in rows])
        order.extend((made[pid], pid) for pid, _seq, _text in rows if pid in made)
        seq = rows[-1][1]
        n += len(rows)
    order.sort()
    return order, seq, n


def posts_in(store: Store, order: list[tuple[int, int]]) -> Iterator[list[StoryPost]]:
    """The posts of ``order`` (``(created_at, id)``), in that order, a page at a time; a post
    deleted since is left out."""
    for i in range(0, len(order), _PAGE):
        part = order[i:i + _PAGE]
        posts = store.posts_by_id([pid for _t, pid in part])
        yield [story_post(p) for _t, pid in part if (p := posts.get(pid)) is not None]


@dataclass(slots=True)
class StoryView:
    id: int
    size: int
    authors: int
    first_ms: int
    last_ms: int
    top_terms: list[str]
    languages: dict[str, int]
    timeline: list[tuple[int, int]]        # (interval start ms, posts)
    post_ids: list[int]
    active: bool
    top_authors: list[tuple[str, int]]
    key_post_ids: list[int]               # the posts closest to the story's centroid
    headline: str = ""                    # the most central post, cleaned (extractive)
    key_posts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, *, with_posts: bool = False) -> dict[str, Any]:
        d = {"id": str(self.id), "headline": self.headline, "posts": self.size,
             "authors": self.authors,
             "first": format_time(self.first_ms), "last": format_time(self.last_ms),
             "top_terms": self.top_terms, "languages": self.languages,
             "timeline": [[format_time(t), n] for t, n in self.timeline], "active": self.active,
             "top_authors": [[a, n] for a, n in self.top_authors],
             "key_post_ids": [str(p) for p in self.key_post_ids], "key_posts": self.key_posts}
        if with_posts:
            d["post_ids"] = [str(p) for p in self.post_ids]
        return d


class StoryState:
    def __init__(self, store: Store, path: Path | None, config: StoryConfig | None = None):
        self.store = store
        self.path = path
        self.watermark = 0
        self.deleted_through = 0        # the deletions log's watermark
        self.backfill: list[tuple[int, int]] = []   # (created_at, id) waiting for their pass
        self.clusterer = StoryClusterer(config)
        if path is not None and path.exists():
            # a file from another version or other settings: derived data, rebuilt
            try:
                body = path.read_bytes()
            except OSError:
                body = b""
            saved = self._matching(body)
            if saved is not None:
                self._restore(saved)

    def _matching(self, body: bytes) -> dict | None:
        """``body`` (``dumps()`` output) unpickled, when made in this format with these
        settings; None otherwise, also when another version's config cannot even be compared
        (one without a newer field)."""
        try:
            saved = pickle.loads(body)
            same = saved.get("format") == FORMAT and saved["config"] == self.clusterer.config
        except Exception:
            return None
        return saved if same else None

    def _restore(self, saved: dict) -> None:
        # A state saved before the deletions log reads 0: the whole log is applied once.
        self.clusterer, self.watermark = saved["clusterer"], saved["watermark"]
        self.deleted_through = saved.get("deleted_through", 0)
        self.backfill = saved.get("backfill", [])

    def refresh(self, progress=None, *, limit: int | None = None, save: bool = True) -> int:
        """Read the posts ingested since the watermark (at most about ``limit``, in whole pages,
        so a server can interleave it with other work), after removing every post deleted
        since; returns how many posts it read and removed. Saves when changed and ``save``,
        and whenever it removed a post.

        Posts are clustered in event time, not in arrival order: what one call reads is sorted
        by ``created_at``; posts at most ``lateness_ms`` behind the clusterer's clock go in live
        (joining the stories open at their time), older ones wait as a backfill (their ids
        only) until the backlog is read, and are then clustered in time order in a pass of
        their own, merged with the stories that exist (``StoryClusterer.absorb``). So the
        stories of a set of posts hardly depend on the order of the files they came in."""
        removed = self._remove_deleted()
        pending, self.watermark, n = read_since(self.store, self.watermark, limit)
        c = self.clusterer
        cut = c.newest_ms - c.config.lateness_ms if c.n_docs else None
        old = [x for x in pending if cut is not None and x[0] < cut]
        self.backfill.extend(old)
        live = pending[len(old):]
        for page in posts_in(self.store, live):
            for p in page:
                c.add(p)
            if progress:
                progress(len(page))
        caught_up = limit is None or n < limit
        if progress and old:
            progress(len(old))
        if caught_up and self.backfill:
            self._run_backfill()
        if n and caught_up:       # a chunk of a backlog skips this: the clusterer maintains
            c.maintain()          # itself as posts arrive
        if (n and save) or removed:
            self.save()
        return n + removed

    def _run_backfill(self) -> None:
        """Cluster the waiting backfill in time order, in a pass of its own, and merge it in."""
        todo, self.backfill = sorted(self.backfill), []
        sub = self.clusterer.fork()
        for page in posts_in(self.store, todo):         # a post deleted since is gone
            for p in page:
                sub.add(p)
        sub.maintain()
        self.clusterer.absorb(sub)

    def _remove_deleted(self) -> int:
        """Remove the posts deleted since the last refresh; how many the clusterer held. A state
        that has read nothing yet skips the log (read before the posts: a post deleted after
        this is logged after it too)."""
        removed, fresh = 0, self.watermark == 0
        while gone := self.store.deletions_since(self.deleted_through, _PAGE):
            if not fresh:
                ids = [pid for _seq, pid in gone]
                removed += forget(self.clusterer, ids, self._members)
                if self.backfill:                   # waiting ids of deleted posts go too
                    drop = set(ids)
                    kept = [x for x in self.backfill if x[1] not in drop]
                    removed += len(self.backfill) - len(kept)
                    self.backfill = kept
            self.deleted_through = gone[-1][0]
        return removed

    def _members(self, ids: list[int]) -> dict[int, StoryPost]:
        out: dict[int, StoryPost] = {}
        for i in range(0, len(ids), _PAGE):
            out.update((pid, story_post(p))
                       for pid, p in self.store.posts_by_id(ids[i:i + _PAGE]).items())
        return out

    def rebuild(self) -> int:
        self.clusterer = StoryClusterer(self.clusterer.config)
        self.watermark = self.deleted_through = 0
        self.backfill = []
        return self.refresh()

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(self.dumps())
        os.replace(tmp, self.path)

    def dumps(self) -> bytes:
        """The whole state as bytes (what ``save`` writes; server mode shares it between API
        workers through the store, see ``api.background``)."""
        return pickle.dumps({"format": FORMAT, "config": self.clusterer.config,
                             "clusterer": self.clusterer, "watermark": self.watermark,
                             "deleted_through": self.deleted_through,
                             "backfill": self.backfill},
                            protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, body: bytes) -> bool:
        """Replace the state with ``dumps()`` output of another process; False (and nothing
        changed) when it was made with other settings or another format. Only bytes that this
        deployment's own store holds are loaded: pickle must never read untrusted input."""
        saved = self._matching(body)
        if saved is None:       # another version's or settings' state: the leader of this
            return False        # version publishes its own
        self._restore(saved)
        return True

    def _view(self, c: Cluster, alive: set[int] | None = None, key_posts: int = 0) -> StoryView:
        ids = [p for p in c.post_ids if alive is None or p in alive]
        authors = [(a, n) for a, n in sorted(c.authors.items(), key=lambda kv: (-kv[1], kv[0]))
                   if not a.startswith("#")][:5]
        key = self._key_posts(c, ids, key_posts)
        posts = self.store.posts_by_id(key) if key else {}
        shown = [{"id": str(pid), "text": p.text, "author": p.author_handle,
                  "created_at": format_time(p.created_at)}
                 for pid in key if (p := posts.get(pid)) is not None]
        headline = clean_post(shown[0]["text"], 24) if shown else ", ".join(c.top_terms(5))
        return StoryView(c.id, len(ids), len(c.authors), c.first_ms, c.last_ms, c.top_terms(10),
                         dict(c.langs.most_common()), sorted(c.timeline.items()), ids,
                         self.clusterer.is_active(c), authors, key, headline or ", ".join(c.top_terms(5)),
                         shown)

    def _key_posts(self, c: Cluster, ids: list[int], k: int, sample: int = 500) -> list[int]:
        """Up to ``k`` posts (distinct authors) most similar to the story's centroid, among an
        even sample of its posts. A post that carries instructions to a model is never one: key
        posts are shown (the headline is the first), and planted text is never quoted."""
        if not k or not ids:
            return []
        from townsquare.stories.text import features
        from townsquare.text.injection import looks_like_instruction
        step = max(1, len(ids) // sample)
        posts = self.store.posts_by_id(ids[::step][:sample])
        scored = []
        for pid, p in posts.items():
            if looks_like_instruction(p.text):
                continue
            vec = self.clusterer.vector(features(p.text))
            scored.append((sum(x * c.centroid.get(t, 0.0) for t, x in vec.items()), -pid, p))
        out, seen = [], set()
        for _s, _neg, p in sorted(scored, key=lambda x: (-x[0], x[1])):
            who = p.author_handle or p.id
            if who not in seen:
                seen.add(who)
                out.append(p.id)
            if len(out) == k:
                break
        return out

    def stories(self, *, active_only: bool = False, limit: int = 50,
                recent_ms: int = 24 * 3_600_000, since_ms: int | None = None,
                until_ms: int | None = None, key_posts: int = 0) -> list[StoryView]:
        """Stories by their volume in the last ``recent_ms`` of stream time (what is happening
        now), then by size; ties by id. With ``since_ms`` / ``until_ms``: every story with posts
        in ``[since_ms, until_ms)``, by its volume there. ``key_posts``: how many central posts
        (and the headline) each view carries."""
        if since_ms is None and until_ms is None:
            lo, hi = self.clusterer.newest_ms - recent_ms, None
            pool = [c for c in self.clusterer.stories()
                    if not active_only or self.clusterer.is_active(c)]
        else:
            lo, hi = since_ms, until_ms
            pool = [c for c in self.clusterer.stories(include_retired=True)
                    if (lo is None or c.last_ms >= lo) and (hi is None or c.first_ms < hi)]

        def volume(c: Cluster) -> int:
            # timeline keys are interval starts: an interval counts when it starts in the range
            return sum(n for t, n in c.timeline.items()
                       if (lo is None or t >= lo - self.clusterer.config.interval_ms + 1)
                       and (hi is None or t < hi))
        out = sorted(pool, key=lambda c: (-volume(c), -c.size, c.id))[:limit]
        return [self._view(c, key_posts=key_posts) for c in out]

    def story(self, story_id: int) -> StoryView | None:
        c = self.clusterer.clusters.get(story_id)
        if c is None:
            return None
        c = self.clusterer.clusters[self.clusterer.resolve(story_id)]
        if not self.clusterer.is_story(c):
            return None
        alive = set(self.store.created_at_of(c.post_ids))      # deleted posts drop out here
        return self._view(c, alive, key_posts=5)

    def unassigned_share(self) -> float:
        return self.clusterer.unassigned_share()

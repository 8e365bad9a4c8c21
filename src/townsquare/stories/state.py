"""Stories kept beside the store: the clusterer's state saved in a file, caught up from the store.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> st = StoryState(SQLiteStore(":memory:"), path=None)
    >>> st.refresh(), st.stories()
    (0, [])

Like the lexical and vector indexes, the story state is derived: the store is the source of
truth, and ``stories.pkl`` in the store's folder holds the clusterer (``stories.cluster``) with
the ``seq`` watermark up to which it has read (a file made with other settings is ignored and
the stories are rebuilt). ``refresh()`` feeds it the posts ingested since,
in ingest order (so the result depends only on the order posts arrived, as the clusterer's
determinism promises). Deleted posts are dropped when stories are read, so a deletion reaches
every story view at once; a rebuild (``StoryState.rebuild``) forgets them entirely.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from townsquare.posts import format_time
from townsquare.stories.cluster import Cluster, StoryClusterer, StoryConfig, StoryPost
from townsquare.store.base import Store
from townsquare.text.rules import clean_post

FORMAT = 1
_PAGE = 20_000


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
        self.clusterer = StoryClusterer(config)
        if path is not None and path.exists():
            try:
                with open(path, "rb") as f:
                    saved = pickle.load(f)
                same = saved.get("format") == FORMAT and saved["config"] == self.clusterer.config
            except Exception:           # a file from another version: derived data, rebuild it
                same = False
            if same:
                self.clusterer, self.watermark = saved["clusterer"], saved["watermark"]

    def refresh(self, progress=None, *, limit: int | None = None, save: bool = True) -> int:
        """Feed the posts ingested since the watermark (at most about ``limit``, in whole pages,
        so a server can interleave it with other work); returns how many. Saves when changed
        and ``save``."""
        n = 0
        page = _PAGE if limit is None else max(1, min(_PAGE, limit))
        while limit is None or n < limit:
            rows = self.store.posts_since(self.watermark, page)
            if not rows:
                break
            posts = self.store.posts_by_id([r[0] for r in rows])
            for pid, seq, _text in rows:
                p = posts.get(pid)
                if p is not None:
                    self.clusterer.add(StoryPost(p.id, p.created_at, p.text,
                                                 p.author_handle or (str(p.author_id)
                                                                     if p.author_id else None),
                                                 p.lang))
                self.watermark = seq
            n += len(rows)
            if progress:
                progress(len(rows))
        if n:
            if limit is None or n < limit:   # caught up (a chunk of a backlog skips this: the
                self.clusterer.maintain()    # clusterer also maintains itself as posts arrive)
            if save:
                self.save()
        return n

    def rebuild(self) -> int:
        self.clusterer = StoryClusterer(self.clusterer.config)
        self.watermark = 0
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
                             "clusterer": self.clusterer, "watermark": self.watermark},
                            protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, body: bytes) -> bool:
        """Replace the state with ``dumps()`` output of another process; False (and nothing
        changed) when it was made with other settings or another format. Only bytes that this
        deployment's own store holds are loaded: pickle must never read untrusted input."""
        saved = pickle.loads(body)
        if saved.get("format") != FORMAT or saved["config"] != self.clusterer.config:
            return False
        self.clusterer, self.watermark = saved["clusterer"], saved["watermark"]
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
                         not c.retired, authors, key, headline or ", ".join(c.top_terms(5)),
                         shown)

    def _key_posts(self, c: Cluster, ids: list[int], k: int, sample: int = 500) -> list[int]:
        """Up to ``k`` posts (distinct authors) most similar to the story's centroid, among an
        even sample of its posts."""
        if not k or not ids:
            return []
        from townsquare.stories.text import features
        step = max(1, len(ids) // sample)
        posts = self.store.posts_by_id(ids[::step][:sample])
        scored = []
        for pid, p in posts.items():
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
            pool = self.clusterer.stories(include_retired=not active_only)
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

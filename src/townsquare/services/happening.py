"""What is happening: trends and stories, as the CLI and the API both serve them.

    >>> from townsquare.store import open_store
    >>> with open_store(":memory:") as store:
    ...     current_trends(store, window="1h", baseline=24, limit=20)
    {'now': None, 'window': '1h', 'trends': [], 'timings_ms': {}, 'fallback': None}
    >>> with open_store(":memory:") as store:
    ...     current_trends(store, window="soon", baseline=24, limit=20)
    Traceback (most recent call last):
    ...
    townsquare.services.errors.InputError: expected a duration like 30m, 1h or 2d, got 'soon'

Any moment can be looked at (``at_ms``): trends of the window ending then against the windows
before it, stories with posts in the ``recent`` span before it. Without a moment, "now" is the
time of the latest post; when nothing happens there (an archive's last posts are often a sparse
tail, weeks after its events), both fall back to the stream's most recent active period and say
so in ``fallback``: ``{"reason", "at", "from"}`` (the time shown, the time asked), else None.

Trends are bounded here, for both: a request reads the posts of its window and baseline windows,
so the window (``MAX_WINDOW_MS``), the baseline windows (``MAX_BASELINE``) and the span they
cover together (``MAX_SPAN_MS``) have limits, and so has the number of trends.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from townsquare.posts import format_time
from townsquare.services.errors import InputError
from townsquare.services.times import UNIT_MS, parse_duration
from townsquare.stories.state import StoryState, StoryView
from townsquare.stories.trends import TrendDetector, TrendsConfig, trend_posts_from_store
from townsquare.store.base import Store

STORIES_FILE = "stories.pkl"
MAX_WINDOW_MS = 30 * UNIT_MS["d"]
MAX_BASELINE = 168                     # a week of hours
MAX_TRENDS = 100
# window x (baseline + 1): the posts one request reads; a day against the two months before it,
# an hour against a week, a month against the month before
MAX_SPAN_MS = 62 * UNIT_MS["d"]
RECENT = "24h"                         # stories at a moment: those with posts in this span before it
MAX_RECENT_MS = 30 * UNIT_MS["d"]
# The fallback's search for the latest active window: quiet windows it steps over (a sparse
# tail: each step is a few index reads) and windows it computes trends for (each reads its
# window and baseline), so a stream with nothing bursting anywhere costs a bounded request.
FALLBACK_STEPS = 2_000
FALLBACK_TRIES = 12


def current_trends(store: Store, *, window: str, baseline: int, limit: int,
                   at_ms: int | None = None) -> dict:
    """What is bursting at ``at_ms`` (default: the time of the latest post): acceleration of the
    ``window`` (``30m``, ``1h``, ``1d``...) ending then against the ``baseline`` windows before
    it, counted in distinct authors; the ``limit`` strongest.
    ``{"now", "window", "trends", "timings_ms", "fallback"}``: without ``at_ms``, when nothing
    bursts at the latest post, the trends of the most recent active window before it, with
    ``fallback`` saying so."""
    t0 = time.perf_counter()
    w = parse_duration(window, "window", max_ms=MAX_WINDOW_MS)
    for name, value, most in (("baseline", baseline, MAX_BASELINE), ("limit", limit, MAX_TRENDS)):
        if not 1 <= value <= most:
            raise InputError(f"must be between 1 and {most}, got {value}", name)
    if w * (baseline + 1) > MAX_SPAN_MS:
        raise InputError(f"{baseline} baseline windows of {window} and the window itself span "
                         f"more than {MAX_SPAN_MS // UNIT_MS['d']} days; use fewer or a shorter "
                         f"window", "baseline")
    cfg = TrendsConfig(window_ms=w, baseline_windows=baseline, max_trends=limit)
    fallback = None
    if at_ms is not None:
        now = at_ms
    else:
        newest = store.newest_created_at()
        if newest is None:
            return {"now": None, "window": window, "trends": [], "timings_ms": {},
                    "fallback": None}
        now = newest + 1
    found = TrendDetector(cfg).run(trend_posts_from_store(store, now - w * (baseline + 1), now),
                                   now_ms=now)
    if not found and at_ms is None:
        earlier = _latest_trends(store, cfg, now)
        if earlier is not None:
            fallback = {"reason": f"no trends in the {window} before the latest post",
                        "at": format_time(earlier[0]), "from": format_time(now)}
            now, found = earlier
    return {"now": format_time(now), "window": window, "trends": [t.to_dict() for t in found],
            "timings_ms": {"total": round((time.perf_counter() - t0) * 1000, 2)},
            "fallback": fallback}


def _latest_trends(store: Store, cfg: TrendsConfig, now: int) -> tuple[int, list] | None:
    """``(time, trends)`` of the latest window before ``now`` with trends, or None: steps back
    over quiet windows (fewer distinct authors than a trend needs) to the latest active one,
    then tries it and the windows before it, up to ``FALLBACK_TRIES``, reading their posts once.
    Each window tried ends just after a post, as "now" does at the latest post."""
    w = cfg.window_ms
    oldest = next(iter(store.posts_between(None, now, batch_size=1)), None)
    if oldest is None:
        return None
    end: int | None = now
    for _ in range(FALLBACK_STEPS):
        posts = list(store.posts_between(end - w, end))
        authors = {p.author_handle or p.author_id or p.id for p in posts}
        if len(authors) >= cfg.min_authors and end != now:
            break
        # the next window ends just after the latest post before this one's earliest post
        end = _latest_before(store, posts[0].created_at if posts else end - w, oldest.created_at)
        if end is None:
            return None
    else:
        return None
    tries = max(1, min(FALLBACK_TRIES, MAX_SPAN_MS // w - cfg.baseline_windows))
    lo = end - w * (cfg.baseline_windows + tries)
    stream = trend_posts_from_store(store, lo, end)
    for k in range(tries):
        at = end - k * w
        if found := TrendDetector(cfg).run([p for p in stream if p.created_at < at], now_ms=at):
            return at, found
    return None


def _latest_before(store: Store, before: int, oldest: int) -> int | None:
    """Just after the latest post with ``created_at < before`` (a binary search over index
    reads: the store reads ranges forward only), or None when there is none."""
    if before <= oldest:
        return None
    lo, hi = oldest, before - 1           # a post exists in [lo, before); find the largest such lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if next(iter(store.posts_between(mid, before, batch_size=1)), None) is not None:
            lo = mid
        else:
            hi = mid - 1
    return lo + 1


@dataclass(slots=True)
class Moment:
    """Stories at a moment: ``views`` by their volume in the ``recent_ms`` before ``at_ms``
    (``recent``: story id -> posts there, to the hour of their timelines); ``fallback`` as in
    the module docstring. ``at_ms`` is None for a range (``since``/``until``)."""
    at_ms: int | None
    views: list[StoryView]
    recent: dict[int, int]
    fallback: dict[str, str] | None = None

    def to_dict(self, *, with_posts: bool = False) -> dict[str, Any]:
        return {"at": format_time(self.at_ms) if self.at_ms is not None else None,
                "fallback": self.fallback,
                "stories": [{**v.to_dict(with_posts=with_posts), "recent_posts": self.recent[v.id]}
                            for v in self.views]}


def stories_at(st: StoryState, *, at_ms: int | None = None, recent: str = RECENT,
               limit: int = 20, all_: bool = False, since_ms: int | None = None,
               until_ms: int | None = None, key_posts: int = 3) -> Moment:
    """The stories to show. With ``at_ms``: those with posts in the ``recent`` span before it,
    the busiest there first, each ``active`` if it had posts within the clusterer's retire
    window before ``at_ms`` (and was younger than its age limit). With ``since_ms`` /
    ``until_ms``: every story with posts in that range. Otherwise the stories active at the
    latest post (``all_``: retired ones too), the busiest in the ``recent`` span first; when
    none is, the stories at the end of the latest one, with ``fallback`` saying so."""
    span = parse_duration(recent, "recent", max_ms=MAX_RECENT_MS)
    if at_ms is not None and (all_ or since_ms is not None or until_ms is not None):
        raise InputError("give a moment or a range (since, until, all), not both", "at")
    if since_ms is not None or until_ms is not None:
        views = st.stories(limit=limit, since_ms=since_ms, until_ms=until_ms, key_posts=key_posts)
        lo = since_ms if since_ms is not None else -1 << 62
        hi = until_ms if until_ms is not None else 1 << 62
        return Moment(None, views, {v.id: _volume(v, lo, hi, st) for v in views})
    if at_ms is not None:
        return _moment(st, at_ms, span, limit, key_posts)
    newest = st.clusterer.newest_ms         # stream time: the latest post the stories have read
    views = st.stories(active_only=not all_, limit=limit, recent_ms=span, key_posts=key_posts)
    last = max((c.last_ms for c in st.clusterer.stories()), default=None)
    if views or last is None:        # (no story at all: nothing to fall back to)
        now = newest + 1 if newest else None
        return Moment(now, views, {v.id: _volume(v, now - span, now, st) for v in views})
    now = newest + 1
    moment = _moment(st, last + 1, span, limit, key_posts)
    moment.fallback = {"reason": "no story active at the latest post",
                       "at": format_time(last + 1), "from": format_time(now)}
    return moment


def _moment(st: StoryState, at: int, span: int, limit: int, key_posts: int) -> Moment:
    cfg = st.clusterer.config
    views = st.stories(limit=limit, since_ms=at - span, until_ms=at, key_posts=key_posts)
    recent = {v.id: _volume(v, at - span, at, st) for v in views}
    views = [v for v in views if recent[v.id]]       # spanning the moment without posts in it
    for v in views:
        v.active = (_volume(v, at - cfg.retire_after_ms, at, st) > 0
                    and at - v.first_ms <= cfg.max_age_ms)
    return Moment(at, views, recent)


def _volume(v: StoryView, lo: int, hi: int, st: StoryState) -> int:
    """Posts of a story's timeline in ``[lo, hi)``, counting each interval that overlaps it
    (as ``StoryState.stories`` orders them)."""
    step = st.clusterer.config.interval_ms
    return sum(n for t, n in v.timeline if lo - step < t < hi)


def story_state(store: Store, home: Path | None,
                progress: Callable[[int, int], None] | None = None) -> StoryState:
    """The stories found so far (kept in ``home/stories.pkl``; in memory when ``home`` is None),
    caught up with the posts stored since. ``progress(done_now, total)`` is called once with 0
    and the number of posts pending, then after each page."""
    st = StoryState(store, Path(home) / STORIES_FILE if home is not None else None)
    if progress is None:
        st.refresh()
    else:
        total = max(0, store.max_seq() - st.watermark)
        progress(0, total)
        st.refresh(progress=lambda n: progress(n, total))
    return st

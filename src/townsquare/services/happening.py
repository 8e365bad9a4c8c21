"""What is happening: trends and stories, as the CLI and the API both serve them.

    >>> from townsquare.store import open_store
    >>> with open_store(":memory:") as store:
    ...     current_trends(store, window="1h", baseline=24, limit=20)
    {'now': None, 'window': '1h', 'trends': [], 'timings_ms': {}}
    >>> with open_store(":memory:") as store:
    ...     current_trends(store, window="soon", baseline=24, limit=20)
    Traceback (most recent call last):
    ...
    townsquare.services.errors.InputError: expected a duration like 30m, 1h or 2d, got 'soon'

Trends are bounded here, for both: a request reads the posts of its window and baseline windows,
so the window (``MAX_WINDOW_MS``), the baseline windows (``MAX_BASELINE``) and the span they
cover together (``MAX_SPAN_MS``) have limits, and so has the number of trends.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from townsquare.posts import format_time
from townsquare.services.errors import InputError
from townsquare.services.times import UNIT_MS, parse_duration
from townsquare.stories.state import StoryState
from townsquare.stories.trends import TrendDetector, TrendsConfig, trend_posts_from_store
from townsquare.store.base import Store

STORIES_FILE = "stories.pkl"
MAX_WINDOW_MS = 30 * UNIT_MS["d"]
MAX_BASELINE = 168                     # a week of hours
MAX_TRENDS = 100
# window x (baseline + 1): the posts one request reads; a day against the two months before it,
# an hour against a week, a month against the month before
MAX_SPAN_MS = 62 * UNIT_MS["d"]


def current_trends(store: Store, *, window: str, baseline: int, limit: int) -> dict:
    """What is bursting at the time of the latest post: acceleration of the last ``window``
    (``30m``, ``1h``, ``1d``...) against the ``baseline`` windows before it, counted in distinct
    authors; the ``limit`` strongest. ``{"now", "window", "trends", "timings_ms"}``."""
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
    newest = store.newest_created_at()
    if newest is None:
        return {"now": None, "window": window, "trends": [], "timings_ms": {}}
    now = newest + 1
    found = TrendDetector(cfg).run(trend_posts_from_store(store, now - w * (baseline + 1), now),
                                   now_ms=now)
    return {"now": format_time(now), "window": window, "trends": [t.to_dict() for t in found],
            "timings_ms": {"total": round((time.perf_counter() - t0) * 1000, 2)}}


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

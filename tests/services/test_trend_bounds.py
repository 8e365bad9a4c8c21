"""Trends are bounded in the service both fronts share: a request reads the posts of its window
and its baseline windows, so the window (30 days), the baseline (168 windows), the span of both
(62 days) and the number of trends (100) have limits. ``InputError`` names the field; the CLI says
so on one line with exit code 2, the API answers 400 (``tests/api/test_limits.py``)."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from townsquare.cli import app
from townsquare.posts import Post
from townsquare.services import InputError
from townsquare.services.happening import (
    MAX_BASELINE,
    MAX_SPAN_MS,
    MAX_TRENDS,
    MAX_WINDOW_MS,
    current_trends,
)
from townsquare.store import open_store
from townsquare.store.base import Stored

H = 3_600_000
DAY = 24 * H
NOW = 1_600_000_000_000


@pytest.fixture
def empty(tmp_path):
    with open_store(tmp_path) as s:
        yield s


def trends(store, **kw):
    return current_trends(store, **{"window": "1h", "baseline": 24, "limit": 20, **kw})


def test_the_bounds():
    assert (MAX_WINDOW_MS, MAX_BASELINE, MAX_TRENDS, MAX_SPAN_MS) == (30 * DAY, 168, 100,
                                                                      62 * DAY)


@pytest.mark.parametrize("kw, field, message", [
    ({"window": "31d"}, "window", "at most 30d, got '31d'"),
    ({"window": "721h"}, "window", "at most 30d, got '721h'"),
    ({"window": "2592001s"}, "window", "at most 30d, got '2592001s'"),
    ({"window": "99999999999999d"}, "window", "at most 30d, got '99999999999999d'"),
    ({"baseline": 169}, "baseline", "must be between 1 and 168, got 169"),
    ({"baseline": 10**30}, "baseline", f"must be between 1 and 168, got {10**30}"),
    ({"baseline": 0}, "baseline", "must be between 1 and 168, got 0"),
    ({"limit": 101}, "limit", "must be between 1 and 100, got 101"),
    ({"limit": -5}, "limit", "must be between 1 and 100, got -5"),
])
def test_each_bound_is_an_input_error_naming_the_field(empty, kw, field, message):
    with pytest.raises(InputError) as e:
        trends(empty, **kw)
    assert e.value.field == field and str(e.value) == message


@pytest.mark.parametrize("window, baseline", [("1d", 62), ("30d", 2), ("3d", 20), ("12h", 124)])
def test_a_window_and_baseline_spanning_more_than_62_days_are_refused(empty, window, baseline):
    # each within its own bound; together they would read more than 62 days of posts
    with pytest.raises(InputError) as e:
        trends(empty, window=window, baseline=baseline)
    assert e.value.field == "baseline" and "more than 62 days" in str(e.value)


@pytest.mark.parametrize("window, baseline", [("1d", 61), ("30d", 1), ("1h", 168), ("2d", 30),
                                              ("720h", 1), ("2592000s", 1)])
def test_the_largest_allowed_requests_are_served(empty, window, baseline):
    r = trends(empty, window=window, baseline=baseline, limit=MAX_TRENDS)
    assert r["window"] == window and r["trends"] == []


def test_a_bounded_request_still_finds_the_burst(tmp_path):
    posts = [Stored(Post(id=1_300_000_000_000_000_000 + i, created_at=NOW - H // 2,
                         text=f"volcano erupts near the coast {i}", author_handle=f"v{i}",
                         source="t").normalized())
             for i in range(8)]
    posts += [Stored(Post(id=1_300_000_000_000_001_000 + d, text="ordinary chatter about lunch",
                          created_at=NOW - d * DAY, author_handle=f"f{d}", source="t").normalized())
              for d in range(1, 60)]
    with open_store(tmp_path) as s:
        s.write_batch(posts, [])
        r = trends(s, window="1d", baseline=61, limit=MAX_TRENDS)
    top = r["trends"][0]
    assert "volcano" in [top["label"], *top["merged"]] and top["authors"] == 8


runner = CliRunner()


@pytest.mark.parametrize("args, line", [
    (["--window", "31d"], "error: --window: at most 30d, got '31d'"),
    (["--baseline", "500"], "error: --baseline: must be between 1 and 168, got 500"),
    (["--limit", "1000"], "error: --limit: must be between 1 and 100, got 1000"),
    (["--window", "1d", "--baseline", "100"], "error: --baseline: 100 baseline windows of 1d"),
])
def test_the_cli_gets_the_same_bounds_on_one_line(tmp_path, args, line):
    r = runner.invoke(app, ["trends", "--home", str(tmp_path / "h"), *args])
    assert r.exit_code == 2, r.output
    assert line in r.output and "Traceback" not in r.output
    assert len([x for x in r.output.splitlines() if x.strip()]) == 1

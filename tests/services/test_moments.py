"""Any moment browsable: trends and stories at a time (``at_ms``), and, without one, the fallback
to the stream's most recent active period when nothing happens at the latest post.

The store holds the invented 2012-2013 archive (``tests/archive_stream.py``): four two-day bursts
and sparse tails, so the latest post is weeks after the last story."""
from __future__ import annotations


import pytest
from typer.testing import CliRunner

from tests.archive_stream import EVENTS, latest_story_end, write
from townsquare.cli import app
from townsquare.posts import parse_time_ms
from townsquare.services import InputError
from townsquare.services.happening import current_trends, stories_at, story_state
from townsquare.store import open_store



def ms(text: str) -> int:
    return parse_time_ms(text)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The archive ingested as a user does (``townsquare ingest``)."""
    tmp = tmp_path_factory.mktemp("archive")
    r = CliRunner().invoke(app, ["ingest", str(write(tmp / "archive.jsonl")),
                                 "--home", str(tmp / "home")])
    assert r.exit_code == 0, r.output
    with open_store(tmp / "home") as s:
        yield s


@pytest.fixture(scope="module")
def st(store):
    return story_state(store, None)


def terms(view) -> set[str]:
    return set(view.top_terms)


def trends(store, **kw):
    return current_trends(store, **{"window": "1d", "baseline": 7, "limit": 10, **kw})


def labels(result) -> set[str]:
    return {x for t in result["trends"] for x in [t["label"], *t["merged"]]}


def test_trends_at_a_moment_are_those_of_the_window_ending_then(store):
    storm = trends(store, at_ms=ms("2012-10-30T12:00:00Z"))
    blast = trends(store, at_ms=ms("2013-04-16T18:00:00Z"))
    assert storm["now"] == "2012-10-30T12:00:00.000Z" and storm["fallback"] is None
    assert "harborview" in labels(storm) and "kestrel" not in labels(storm)
    assert "kestrel" in labels(blast) and "harborview" not in labels(blast)
    quiet = trends(store, at_ms=ms("2013-05-05T00:00:00Z"))    # between events: no fallback
    assert quiet["trends"] == [] and quiet["fallback"] is None
    assert trends(store, at_ms=0)["trends"] == []               # before every post


def test_trends_without_a_moment_fall_back_to_the_latest_active_window(store):
    newest = store.newest_created_at()
    r = current_trends(store, window="1h", baseline=24, limit=10)
    assert r["trends"], "no trends found before the archive's sparse tail"
    fb = r["fallback"]
    assert set(fb) == {"reason", "at", "from"} and fb["at"] == r["now"]
    assert ms(fb["from"]) == newest + 1
    flood_start = int(EVENTS["flood"][0].timestamp() * 1000)
    assert flood_start < ms(fb["at"]) <= int(latest_story_end().timestamp() * 1000) + 1
    assert labels(r) & {"flood", "quarry", "downtown", "#flood"}
    # the window it fell back to, asked for by its time, is the same answer and no fallback
    again = current_trends(store, window="1h", baseline=24, limit=10, at_ms=ms(fb["at"]))
    assert again["trends"] == r["trends"] and again["fallback"] is None


def test_stories_at_a_moment_are_those_with_posts_in_the_recent_span_before_it(st):
    storm = stories_at(st, at_ms=ms("2012-10-30T12:00:00Z"))
    assert storm.at_ms == ms("2012-10-30T12:00:00Z") and storm.fallback is None
    assert [("harborview" in terms(v), v.active) for v in storm.views] == [(True, True)]
    assert 0 < storm.recent[storm.views[0].id] <= storm.views[0].size
    blast = stories_at(st, at_ms=ms("2013-04-16T18:00:00Z"), limit=5)
    assert blast.views and all("kestrel" in terms(v) for v in blast.views)
    assert stories_at(st, at_ms=ms("2013-05-05T00:00:00Z")).views == []   # between events
    d = storm.to_dict()
    assert d["at"] == "2012-10-30T12:00:00.000Z" and d["fallback"] is None
    assert d["stories"][0]["recent_posts"] == storm.recent[storm.views[0].id]


def test_a_story_quiet_for_its_retire_window_before_the_moment_is_not_active(st):
    # 25 days after the storm began: its burst is in a 30-day span, its last post > 72 h back
    later = stories_at(st, at_ms=ms("2012-11-23T12:00:00Z"), recent="30d")
    storm = [v for v in later.views if "harborview" in terms(v)]
    assert storm and storm[0].active is False and later.recent[storm[0].id] > 0


def test_the_default_view_falls_back_to_the_latest_stories(st):
    now = stories_at(st)
    assert now.views, "the page would be empty on a store that has stories"
    fb = now.fallback
    assert set(fb) == {"reason", "at", "from"} and ms(fb["at"]) == now.at_ms
    assert ms(fb["from"]) == st.clusterer.newest_ms + 1
    assert ms(fb["at"]) == max(c.last_ms for c in st.clusterer.stories()) + 1
    assert "flood" in terms(now.views[0]) or "quarry" in terms(now.views[0])
    # --all and a range never fall back
    assert stories_at(st, all_=True).fallback is None
    rng = stories_at(st, since_ms=ms("2012-10-01"), until_ms=ms("2012-12-01"))
    assert rng.at_ms is None and rng.fallback is None and rng.views


def test_the_default_view_of_a_store_without_stories_has_nothing_to_fall_back_to(tmp_path):
    with open_store(tmp_path) as s:
        m = stories_at(story_state(s, None))
    assert (m.at_ms, m.views, m.fallback) == (None, [], None)


@pytest.mark.parametrize("kw, field", [({"recent": "soon"}, "recent"),
                                       ({"recent": "31d"}, "recent"),
                                       ({"at_ms": 0, "all_": True}, "at"),
                                       ({"at_ms": 0, "since_ms": 0}, "at")])
def test_bad_story_moments_name_the_field(st, kw, field):
    with pytest.raises(InputError) as e:
        stories_at(st, **kw)
    assert e.value.field == field

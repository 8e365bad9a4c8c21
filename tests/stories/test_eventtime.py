"""Stories follow event time: file order, late posts and backfills (StoryState.refresh, absorb)."""
from __future__ import annotations

import pickle
import random

from townsquare.posts import Post
from townsquare.stories.cluster import StoryClusterer, StoryConfig, StoryPost
from townsquare.stories.state import StoryState
from townsquare.store.base import Stored

H = 3_600_000
DAY = 24 * H
T0 = 1_600_000_000_000
# Three events, each with its own words; posts mix them with common filler.
EVENTS = {
    "flood": (["bridge", "route", "flood", "collapse", "river", "waters"], 0),
    "quake": (["earthquake", "magnitude", "tremor", "aftershock", "epicenter", "richter"], 40 * DAY),
    "fire": (["wildfire", "blaze", "evacuation", "smoke", "firefighters", "acres"], 80 * DAY),
    "storm": (["hurricane", "landfall", "winds", "category", "surge", "storm"], 81 * DAY),
}
# Everyday words, many of them, each rarer than an event's own words (as in a real stream; a
# handful of filler words used in every post would dominate the first file's weights).
FILLER = ("today update people near town news photos latest city now morning night local "
          "watch video report says live here there still many more road home family school "
          "help team park street water power line please check safe stay thanks follow").split()


def _event_posts(name: str, n: int, seed: int, id0: int) -> list[Post]:
    words, start = EVENTS[name]
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        text = " ".join(rnd.sample(words, 4) + rnd.sample(FILLER, 2))
        out.append(Post(id=id0 + i, text=text, source="t", author_handle=f"{name}{i % 17}",
                        created_at=start + T0 + rnd.randrange(3 * DAY)))
    return out


def _files() -> dict[str, list[Post]]:
    """Four "files", one per event, each unsorted in time."""
    return {name: _event_posts(name, 60, k, 10_000 * (k + 1)) for k, name in enumerate(EVENTS)}


def _ingest(store, posts: list[Post]) -> None:
    store.write_batch([Stored(p.normalized()) for p in posts], [])


def _partition(state: StoryState) -> set[frozenset[int]]:
    return {frozenset(v.post_ids) for v in state.stories(since_ms=0, limit=1000)}


def _run(store_factory, order: list[str], cfg: StoryConfig) -> set[frozenset[int]]:
    files = _files()
    store = store_factory()
    st = StoryState(store, None, cfg)
    for name in order:                      # refresh after each file, as a server would
        _ingest(store, files[name])
        st.refresh()
    return _partition(st)


def _truth() -> set[frozenset[int]]:
    return {frozenset(p.id for p in posts) for posts in _files().values()}


def test_the_stories_do_not_depend_on_the_order_of_the_files(tmp_path):
    from townsquare.store import open_store
    n = iter(range(100))
    cfg = StoryConfig(min_posts=5)
    factory = lambda: open_store(tmp_path / f"h{next(n)}")            # noqa: E731
    orders = [["flood", "quake", "fire", "storm"], ["storm", "fire", "quake", "flood"],
              ["quake", "storm", "flood", "fire"]]
    results = [_run(factory, o, cfg) for o in orders]
    assert results[0] == _truth()           # every event one story, the overlapping two apart
    assert results[1] == results[0] and results[2] == results[0]


def test_one_unsorted_file_gives_the_time_order_result(store):
    posts = [p for ps in _files().values() for p in ps]
    random.Random(3).shuffle(posts)
    _ingest(store, posts)
    st = StoryState(store, None, StoryConfig(min_posts=5))
    st.refresh()
    ref = StoryClusterer(StoryConfig(min_posts=5))
    ref.run(StoryPost(p.id, p.created_at, p.text, p.author_handle)
            for p in sorted(posts, key=lambda p: (p.created_at, p.id)))
    ref.maintain()
    assert st.clusterer.labels() == ref.labels()
    assert _partition(st) == _truth()


def test_a_late_post_joins_the_story_open_at_its_time(store):
    files = _files()
    _ingest(store, files["flood"] + files["quake"])
    st = StoryState(store, None, StoryConfig(min_posts=5))
    st.refresh()
    flood = next(v for v in st.stories(since_ms=0) if 10_000 in v.post_ids)
    # a day after the quake started (within the lateness), a flood post made during the flood
    late = Post(id=99_001, text="route bridge flood collapse river photos", source="t",
                author_handle="late", created_at=T0 + 2 * DAY)
    _ingest(store, [late])
    st.refresh()
    assert st.clusterer.newest_ms > late.created_at + 30 * DAY     # far behind the clock
    assert 99_001 in st.story(flood.id).post_ids


def test_a_backfill_overlapping_a_story_joins_it_and_keeps_its_id(store):
    files = _files()
    flood = sorted(files["flood"], key=lambda p: p.created_at)
    _ingest(store, flood[30:] + files["fire"])        # the flood's second half, then the fire
    st = StoryState(store, None, StoryConfig(min_posts=5))
    st.refresh()
    sid = next(v.id for v in st.stories(since_ms=0) if flood[-1].id in v.post_ids)
    _ingest(store, flood[:30])                        # the first half comes later: a backfill
    st.refresh()
    v = st.story(sid)
    assert v is not None and set(v.post_ids) == {p.id for p in flood}


def test_a_backfill_post_deleted_before_its_pass_leaves_no_trace(store, tmp_path):
    files = _files()
    _ingest(store, files["fire"])
    st = StoryState(store, tmp_path / "stories.pkl", StoryConfig(min_posts=5))
    st.refresh()
    old = files["flood"]
    _ingest(store, old)
    # a chunk of the backlog (as the server reads it): the old posts wait for their pass
    st.refresh(limit=len(old) - 10)
    assert {pid for _t, pid in st.backfill} <= {p.id for p in old} and st.backfill
    gone = st.backfill[0][1]
    store.delete([gone])
    st.refresh()
    assert st.backfill == [] and gone not in st.clusterer.assignment
    assert all(gone not in v.post_ids for v in st.stories(since_ms=0, limit=100))
    saved = pickle.loads((tmp_path / "stories.pkl").read_bytes())
    assert gone not in saved["clusterer"].assignment and saved["backfill"] == []


def test_absorb_needs_the_same_settings():
    import pytest
    a, b = StoryClusterer(StoryConfig()), StoryClusterer(StoryConfig(min_posts=2))
    with pytest.raises(ValueError, match="same StoryConfig"):
        a.absorb(b)


def test_a_story_closed_at_an_orphans_time_does_not_adopt_it():
    """An orphan (too small to be a story) joins only a story open at its time: adopting it into
    last week's story would reopen that story and let a new event's posts flow into it."""
    cfg = StoryConfig(min_posts=5, maintenance_every=1, orphan_after_ms=H)
    c = StoryClusterer(cfg)
    flood = [StoryPost(i, T0 + i * H, " ".join(EVENTS["flood"][0][:4]) + f" {FILLER[i]}", f"a{i}")
             for i in range(6)]
    c.run(flood)
    later = T0 + 5 * DAY                                  # the flood story has been idle 5 days
    c.run([StoryPost(100, later, "bridge route flood collapse", "b1"),
           StoryPost(101, later + 2 * H, "unrelated lunch talk today", "b2")])
    (story,) = c.stories()
    assert 100 not in story.post_ids and story.last_ms == flood[-1].created_at

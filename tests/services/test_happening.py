"""Trends and stories as the CLI and the API both serve them."""
from __future__ import annotations

import pytest

from townsquare.posts import Post
from townsquare.services import InputError
from townsquare.services.happening import current_trends, story_state
from townsquare.store import open_store
from townsquare.store.base import Stored

H = 3_600_000
NOW = 1_600_000_000_000


def _post(i: int, t: int, text: str, author: str) -> Stored:
    return Stored(Post(id=1_300_000_000_000_000_000 + i, text=text, created_at=t,
                       author_handle=author, source="t").normalized())


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path)
    posts = [_post(h, NOW - h * H, "ordinary chatter about lunch", f"f{h}") for h in range(1, 25)]
    posts += [_post(100 + a, NOW - H // 2, f"volcano erupts near the coast, report {a}", f"v{a}")
              for a in range(8)]
    s.write_batch(posts, [])
    yield s
    s.close()


def test_current_trends_is_the_shape_both_fronts_print(store):
    r = current_trends(store, window="1h", baseline=24, limit=5)
    assert set(r) == {"now", "window", "trends", "timings_ms", "fallback"}
    assert r["window"] == "1h" and r["now"].startswith("2020-09-13") and r["fallback"] is None
    top = r["trends"][0]
    assert "volcano" in [top["label"], *top["merged"]] and top["authors"] == 8
    assert len(r["trends"]) <= 5 and "total" in r["timings_ms"]


def test_current_trends_of_an_empty_store(tmp_path):
    with open_store(tmp_path) as s:
        assert current_trends(s, window="30m", baseline=2, limit=1) == {
            "now": None, "window": "30m", "trends": [], "timings_ms": {}, "fallback": None}


@pytest.mark.parametrize("kw, field", [({"window": "soon"}, "window"),
                                       ({"baseline": 0}, "baseline"),
                                       ({"limit": 0}, "limit")])
def test_bad_trend_parameters_name_the_field(store, kw, field):
    with pytest.raises(InputError) as e:
        current_trends(store, **{"window": "1h", "baseline": 24, "limit": 20, **kw})
    assert e.value.field == field


def test_story_state_catches_up_reports_progress_and_is_kept_in_the_home(store, tmp_path):
    ticks = []
    st = story_state(store, tmp_path, lambda n, total: ticks.append((n, total)))
    assert ticks[0] == (0, 32) and sum(n for n, _ in ticks) == 32
    assert {t for _, t in ticks} == {32} and st.watermark == store.max_seq()
    assert (tmp_path / "stories.pkl").exists()
    again = []
    assert story_state(store, tmp_path, lambda n, t: again.append((n, t))).watermark == st.watermark
    assert again == [(0, 0)]                                  # nothing new: read from the file


def test_story_state_without_a_home_stays_in_memory(store, tmp_path):
    st = story_state(store, None)
    assert st.path is None and st.watermark == store.max_seq()
    assert not (tmp_path / "stories.pkl").exists()

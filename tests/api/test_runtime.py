"""The server's shared runtime: one writer, readers, indexes refreshed in the background."""
from __future__ import annotations

import pytest

from tests.api.conftest import runtime_settings
from townsquare.api.runtime import Runtime
from townsquare.posts import Post
from townsquare.store.base import Stored

BASE = 1_212_092_628_029_698_048


def _post(i: int, text: str, author: str, t: int) -> Stored:
    return Stored(Post(id=BASE + i, text=text, source="api", author_handle=author,
                       created_at=1_577_836_800_000 + t * 60_000).normalized())


def test_top_search_sees_a_post_once_the_indexer_refreshed(tmp_path):
    rt = Runtime(runtime_settings(tmp_path), start=False)
    try:
        rt.step()                                         # an empty index, caught up
        rt.writer.write([_post(0, "Gondola cable snapped at the ski station", "a", 0)]).result()
        engine = rt.services.engine()
        assert [h.id for h in engine.run("gondola", mode="latest").results] == [BASE]
        assert engine.run("gondola").results == []        # the tantivy index is behind...
        assert rt.lags()["lexical_index"] == 1
        rt.indexer.refresh()                              # ...until the indexer's next pass
        assert [h.id for h in engine.run("gondola").results] == [BASE]
        assert rt.indexer.refresh_stats()["count"] == 1
    finally:
        rt.close()


def test_background_step_clusters_identifies_languages_and_catches_up(tmp_path):
    rt = Runtime(runtime_settings(tmp_path), start=False, story_step=3)
    texts = ["Gondola cable snapped at the ski station, cabins stuck",
             "Ski station gondola cable snapped, rescuers at the cabins",
             "Cabins stuck after the gondola cable snapped at the ski station",
             "Rescuers reach the stuck gondola cabins at the ski station",
             "All gondola cabins evacuated at the ski station after the cable snapped"]
    try:
        rt.writer.write([_post(i, t, f"user{i}", i) for i, t in enumerate(texts)]).result()
        first = rt.background.step()
        assert first["stories"] == 3 and first["late_stage"] == 3    # bounded steps
        assert rt.lags()["stories"] == 2
        rt.background.step()
        assert rt.lags()["stories"] == 0 and rt.background.step()["stories"] == 0
        (story,) = rt.background.stories.stories()
        assert story.size == 5 and "gondola" in story.top_terms
        assert rt.services.reader().get(BASE).lang == "en"                    # late stage ran
    finally:
        rt.close()
    assert (tmp_path / "stories.pkl").exists()                       # saved on close


def test_summaries_are_cached_per_story_size(tmp_path):
    rt = Runtime(runtime_settings(tmp_path), start=False)
    try:
        rt.writer.write([_post(i, f"Harbour crane collapsed onto pier {i % 2 + 4}", f"u{i}", i)
                         for i in range(4)]).result()
        ids = [BASE + i for i in range(4)]
        a = rt.services.summarize(post_ids=ids, cache_key=(1, 4, None))
        assert a["sentences"] and "total" in a["timings_ms"]
        assert rt.services.summarize(post_ids=ids, cache_key=(1, 4, None)) is a
    finally:
        rt.close()


def test_invalid_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="background_share"):
        Runtime(runtime_settings(tmp_path), background_share=0, start=False)
    with pytest.raises(ValueError, match="refresh_s"):
        Runtime(runtime_settings(tmp_path), refresh_s=0, start=False)

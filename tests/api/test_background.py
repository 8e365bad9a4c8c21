"""The background thread's stories: saved without holding the lock that story reads take."""
from __future__ import annotations

import threading

from tests.api.conftest import runtime_settings
from townsquare.api.background import COPY_COST_FACTOR, spaced
from townsquare.api.runtime import Runtime
from townsquare.posts import Post
from townsquare.store.base import Stored

BASE = 1_212_092_628_029_698_048
TEXTS = ["Gondola cable snapped at the ski station, cabins stuck",
         "Ski station gondola cable snapped, rescuers at the cabins",
         "Cabins stuck after the gondola cable snapped at the ski station",
         "Rescuers reach the stuck gondola cabins at the ski station",
         "All gondola cabins evacuated at the ski station after the cable snapped"]


def _posts() -> list[Stored]:
    return [Stored(Post(id=BASE + i, text=t, source="api", author_handle=f"user{i}",
                        created_at=1_577_836_800_000 + i * 60_000).normalized())
            for i, t in enumerate(TEXTS)]


def test_story_reads_go_on_while_the_stories_are_saved(tmp_path):
    rt = Runtime(runtime_settings(tmp_path), start=False)
    bg = rt.background
    try:
        rt.writer.write(_posts()).result()
        bg.step()
        (story,) = bg.stories.clusterer.stories()
        # The save is held half-way (a large state takes seconds): a read must not wait for it.
        started, release = threading.Event(), threading.Event()
        save = bg.stories.save

        def slow_save():
            started.set()
            assert release.wait(10)
            save()
        bg.stories.save = slow_save
        saver = threading.Thread(target=bg.save_stories)
        saver.start()
        assert started.wait(10)
        got: dict = {}
        reader = threading.Thread(target=lambda: got.update(
            counts=bg.story_counts(), view=bg.story(story.id)))
        reader.start()
        reader.join(5)
        alive = reader.is_alive()
        release.set()
        saver.join(10)
        reader.join(10)
        assert not alive, "a story read waited for the save"
        assert got["counts"]["count"] == 1 and got["view"].size == 5
        assert (tmp_path / "stories.pkl").stat().st_size > 0
        assert bg._save_took > 0                       # measured: it spaces the next save
    finally:
        rt.close()


def test_copies_of_a_large_state_are_spaced_by_their_cost():
    assert spaced(60.0, 0.1) == 60.0
    assert spaced(60.0, 9.0) == 9.0 * COPY_COST_FACTOR > 60.0
    assert spaced(2.0, 0.4) == 0.4 * COPY_COST_FACTOR      # server mode's publish: 2 s at least

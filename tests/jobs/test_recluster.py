"""Re-clustering on a local 2-worker Dask cluster: the same stories as the in-process clusterer."""
from __future__ import annotations

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from townsquare.cli import app
from townsquare.jobs.recluster import (add_with_features, cluster_in_process, cluster_live,
                                       cluster_range, range_posts)
from townsquare.jobs.runner import JobError
from townsquare.posts import Post, parse_time_ms
from townsquare.settings import DB_FILE
from townsquare.store import open_store
from townsquare.store.base import Stored
from townsquare.stories.cluster import StoryClusterer
from townsquare.stories.state import StoryState
from townsquare.stories.text import features

pytest.importorskip("distributed")
runner = CliRunner()
T0 = parse_time_ms("2021-03-01T00:00:00Z")
H = 3_600_000
# Invented events (words, hashtags written both ways so the segmenter has work) and background.
EVENTS = [
    "flood river bridge closed rescue #RiverFlood #riverflood water rising evacuate",
    "festival music stage crowd tickets #SummerFest #summerfest band lineup",
    "storm wind power outage trees down #StormAlert #stormalert crews repair",
    "election vote count polls results #Vote2021 #vote2021 turnout district",
    "wildfire smoke evacuation hills firefighters #HillFire #hillfire containment",
]
NOISE = "coffee morning park walk dog cat lunch book movie train bus weekend friend".split()


def _stream(n: int = 1500) -> list[Post]:
    """``n`` posts over three days; ingest order is shuffled against time order on purpose."""
    rng = np.random.default_rng(7)
    posts = []
    for i in range(n):
        day = int(rng.integers(0, 3))
        ev = EVENTS[(i + day) % len(EVENTS)].split()
        words = list(rng.choice(ev, size=int(rng.integers(4, 9)))) if rng.random() < 0.8 \
            else list(rng.choice(NOISE, size=int(rng.integers(3, 7))))
        if rng.random() < 0.2:
            words.append(f"@user{int(rng.integers(0, 9))} https://t.co/{i}")
        posts.append(Post(id=10_000 + i, text=" ".join(words), source="t",
                          created_at=T0 + day * 24 * H + int(rng.integers(0, 24 * H)),
                          author_handle=f"u{int(rng.integers(0, 60))}", lang="en"))
    return posts


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("home")
    with open_store(folder / DB_FILE) as s:
        posts = _stream()
        s.write_batch([Stored(p.normalized()) for p in posts[::-1]], [])   # ingest order != time
        s.delete([10_003, 10_777])
    return folder


def _same_clusterer(a: StoryClusterer, b: StoryClusterer) -> None:
    assert a.labels() == b.labels()
    assert a.assignment == b.assignment and a.n_docs == b.n_docs and a.df == b.df
    assert [(c.id, c.post_ids, c.timeline, c.retired) for c in a.stories()] == \
           [(c.id, c.post_ids, c.timeline, c.retired) for c in b.stories()]


def test_add_with_features_is_add_step_for_step(home):
    with open_store(home / DB_FILE) as store:
        posts = list(range_posts(store, None, None))
    a, b = StoryClusterer(), StoryClusterer()
    for p in posts:
        assert a.add(p) == add_with_features(b, p, features(p.text))
    _same_clusterer(a, b)


def test_range_on_2_workers_equals_the_in_process_path(home, dask_client):
    lo, hi = T0 + 12 * H, T0 + 60 * H
    with open_store(home / DB_FILE) as store:
        posts = list(range_posts(store, lo, hi))
        assert posts and all(lo <= p.created_at < hi for p in posts)
        assert [(p.created_at, p.id) for p in posts] == sorted((p.created_at, p.id) for p in posts)
        ref = cluster_in_process(posts)
        seen = []
        r = cluster_range(store, lo, hi, client=dask_client, chunk=97, progress=seen.append)
        assert r.workers == 2 and r.posts == len(posts) == sum(seen) and r.chunks == len(seen) > 2
        _same_clusterer(ref, r.state.clusterer)
        assert len(ref.stories()) >= 3                     # the test means something
        # The printed stories: `townsquare stories --json`'s shape, from the in-process clusterer.
        st = StoryState(store, None)
        st.clusterer = ref
        want = [v.to_dict(with_posts=True)
                for v in st.stories(limit=1000, since_ms=lo, until_ms=hi, key_posts=3)]
        got = r.stories()
        assert got == want
        assert {"id", "headline", "post_ids", "key_posts", "timeline"} <= set(got[0])


def test_range_over_postgres_equals_the_embedded_store(home, dask_client, pg_url):
    lo, hi = T0 + 12 * H, T0 + 60 * H
    with open_store(pg_url) as pg:
        pg.write_batch([Stored(p.normalized()) for p in _stream()[::-1]], [])
        pg.delete([10_003, 10_777])
        on_pg = cluster_range(pg, lo, hi, client=dask_client, chunk=97)
    with open_store(home / DB_FILE) as store:
        on_sqlite = cluster_range(store, lo, hi, client=dask_client, chunk=97)
    _same_clusterer(on_sqlite.state.clusterer, on_pg.state.clusterer)
    assert on_pg.posts == on_sqlite.posts > 0


def test_live_rebuild_on_2_workers_equals_story_state_rebuild(home, dask_client):
    with open_store(home / DB_FILE) as store:
        ref = StoryState(store, None)
        ref.rebuild()
        r = cluster_live(store, client=dask_client, chunk=250)
        assert r.state.watermark == ref.watermark == store.max_seq()
        _same_clusterer(ref.clusterer, r.state.clusterer)
        assert r.posts == store.count()


def test_bad_range_is_refused():
    with pytest.raises(JobError, match="after"):
        cluster_range(None, T0 + H, T0)


def _json(r):
    assert r.exit_code == 0, r.output
    return orjson.loads(r.stdout)


def test_cli_recluster_json_out_file_and_live_state(home, dask_client, tmp_path):
    addr = dask_client.scheduler.address
    args = ["jobs", "recluster", "--home", str(home), "--scheduler", addr,
            "--since", "2021-03-01T12:00:00Z", "--until", "2021-03-03T12:00:00Z"]
    out = tmp_path / "sub" / "range.json"
    got = _json(runner.invoke(app, [*args, "--json", "--out", str(out)]))
    with open_store(home / DB_FILE) as store:
        posts = list(range_posts(store, T0 + 12 * H, T0 + 60 * H))
        st = StoryState(store, None)
        st.clusterer = cluster_in_process(posts)
        want = [v.to_dict(with_posts=True) for v in
                st.stories(limit=1000, since_ms=T0 + 12 * H, until_ms=T0 + 60 * H, key_posts=3)]
    assert got == want and orjson.loads(out.read_bytes()) == want
    assert not (home / "stories.pkl").exists()             # the live state is left alone
    r = runner.invoke(app, [*args, "--limit", "2"])
    assert r.exit_code == 0 and "re-clustered" in r.stdout and r.stdout.count("story ") == 2

    r = runner.invoke(app, ["jobs", "recluster", "--home", str(home), "--scheduler", addr,
                            "--replace-live", "--json"])
    assert r.exit_code == 0, r.output
    assert (home / "stories.pkl").exists()
    live = _json(runner.invoke(app, ["stories", "--home", str(home), "--all", "--json"]))
    with open_store(home / DB_FILE) as store:
        ref = StoryState(store, None)
        ref.rebuild()
        assert StoryState(store, home / "stories.pkl").watermark == ref.watermark
        want = [v.to_dict(with_posts=True)
                for v in ref.stories(active_only=False, limit=20, key_posts=3)]
    assert live == want


@pytest.mark.parametrize("args, message", [
    (["--since", "2021-03-02", "--until", "2021-03-01"], "--until must be after --since"),
    (["--since", "2021-03-02", "--until", "2021-03-02"], "--until must be after --since"),
    (["--since", "yesterday"], "expected a time"),
    (["--replace-live", "--since", "2021-03-01"], "leave out --since"),
    (["--chunk", "0"], "must be >= 1"),
])
def test_cli_recluster_bad_input_exits_2(tmp_path, args, message):
    r = runner.invoke(app, ["jobs", "recluster", "--home", str(tmp_path), *args])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())


def test_cli_recluster_on_its_own_local_cluster(tmp_path):
    home = tmp_path / "h"
    with open_store(home / DB_FILE) as s:
        s.write_batch([Stored(p.normalized()) for p in _stream(200)], [])
    got = _json(runner.invoke(app, ["jobs", "recluster", "--home", str(home), "--workers", "1",
                                    "--json"]))
    with open_store(home / DB_FILE) as store:
        posts = list(range_posts(store, None, None))
        ref = cluster_in_process(posts)
    assert sorted(int(i) for s in got for i in s["post_ids"]) == \
           sorted(i for c in ref.stories() for i in c.post_ids)

"""Issue 18: ``townsquare stats --json`` and ``/v1/stats`` report each search arm's lag (lexical,
fast semantic, e5) in posts and seconds."""
from __future__ import annotations

import time

import numpy as np
import pytest
import orjson
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.api.conftest import runtime_settings
from townsquare.api.app import create_app
from townsquare.api.runtime import Runtime
from townsquare.cli import app
from townsquare.embed.e5onnx import tokenizer_for
from townsquare.embed.stage import to_blob
from townsquare.embed.static import StaticE5Embedder
from townsquare.embed.sync import StoreVectors
from townsquare.embed.tiers import TieredVectors
from townsquare.posts import Post
from townsquare.services.freshness import arm_lags
from townsquare.store.base import Stored

from ..conftest import FIXTURES

BASE = 1212092628029698048
TEXTS = ["Flood on Main St", "Bridge closed by the river", "Coffee at the park"]
runner = CliRunner()


def _e5_vectors(store, ids_seqs):
    """e5-sized vectors written as the embedding stage would (their values do not matter)."""
    rng = np.random.default_rng(0)
    v = rng.standard_normal((len(ids_seqs), 384)).astype(np.float32)
    rows = [(pid, seq, b) for (pid, seq), b in zip(ids_seqs, to_blob(v))]
    store.write_vectors("e5-small-int8", rows, watermark=ids_seqs[-1][1])


def _tiers_over_texts(store, tmp_path) -> TieredVectors:
    """``TEXTS`` written to ``store``, and the two embedding tiers over it (a static fast
    model of just their tokens, e5 from the store's vectors)."""
    store.write_batch([Stored(Post(id=BASE + i, text=t, source="t").normalized())
                       for i, t in enumerate(TEXTS)], [])
    tok = tokenizer_for()
    fast = StaticE5Embedder(cache_dir=tmp_path, token_ids=sorted(
        {t for s in tok.content_ids(TEXTS) for t in s}))
    return TieredVectors(store, StoreVectors(store, None, 384), fast)


def test_each_arm_reports_posts_and_seconds_behind(store, tmp_path):
    tiers = _tiers_over_texts(store, tmp_path)

    lags = arm_lags(store, lexical=None, tiers=tiers)
    assert lags["lexical"] == {"posts": 0, "seconds": 0.0, "through_seq": 3}   # FTS5 only
    assert lags["e5"]["posts"] == 3 and lags["e5"]["seconds"] >= 0.0
    # Behind by all three, for as long as the first of them was ingested (the store says when).
    fs = lags["fast_semantic"]
    assert fs["posts"] == 3 and fs["seconds"] >= lags["e5"]["seconds"] - 0.1

    tiers.refresh()                                    # the fast tier embeds all three at once
    lags = arm_lags(store, lexical=None, tiers=tiers)
    assert lags["fast_semantic"] == {"model": "m2v-e5", "state": "ready", "posts": 0,
                                     "seconds": 0.0, "indexed": 3, "novel": 0, "through_seq": 3,
                                     "evicted": 0, "max_posts": 200_000}
    assert lags["e5"]["posts"] == 3

    seqs = [(pid, seq) for pid, seq, _ in store.posts_since(0, 10)]
    _e5_vectors(store, seqs[:2])                       # e5 reaches two of them
    tiers.refresh()
    lags = arm_lags(store, lexical=None, tiers=tiers)
    assert (lags["e5"]["posts"], lags["e5"]["through_seq"]) == (1, seqs[1][1])
    assert lags["fast_semantic"]["indexed"] == 1 and lags["fast_semantic"]["posts"] == 0


def test_stats_json_and_the_api_report_freshness_by_arm(tmp_path):
    home = tmp_path / "h"
    r = runner.invoke(app, ["ingest", str(FIXTURES), "--home", str(home), "--json"])
    assert r.exit_code == 0, r.output
    s = orjson.loads(runner.invoke(app, ["stats", "--home", str(home), "--json"]).stdout)
    f = s["freshness"]
    assert f["lexical"]["posts"] == 0 and f["lexical"]["seconds"] == 0.0   # ingest indexed them
    assert f["e5"]["posts"] == 16 and f["e5"]["seconds"] >= 0.0            # nothing embedded
    assert f["fast_semantic"] is None                  # no fast tier runs in `stats`

    rt = Runtime(runtime_settings(home), start=False)
    try:
        st = TestClient(create_app(rt, keys=None, auth=False)).get("/v1/stats").json()
    finally:
        rt.close()
    assert st["freshness"]["e5"]["posts"] == 16
    assert st["freshness"]["lexical"]["posts"] == 0


def test_a_lagging_tantivy_index_reports_how_many_seconds_behind(tmp_path):
    """The lexical arm's seconds: the age of the first post the tantivy index lacks (the store's
    ``ingested_at_after``), where it was None before."""
    from townsquare.services.indexes import lexical_index
    from townsquare.store import open_store
    home = tmp_path / "h"
    home.mkdir()
    with open_store(home / "townsquare.db") as store:
        store.write_batch([Stored(Post(id=BASE, text=TEXTS[0], source="t").normalized())], [])
        lx = lexical_index(store, home)
        if lx is None:
            pytest.skip("tantivy is not installed")
        lx.refresh()
        first = arm_lags(store, lexical=lx)["lexical"]
        assert first == {"posts": 0, "seconds": 0.0, "through_seq": 1}
        store.write_batch([Stored(Post(id=BASE + 1, text=TEXTS[1], source="t").normalized())],
                          [])
        ingested = store.ingested_at_after(1)
        assert ingested is not None and store.ingested_at_after(2) is None
        time.sleep(0.25)
        lag = arm_lags(store, lexical=lx)["lexical"]
        assert lag["posts"] == 1 and lag["through_seq"] == 1
        assert lag["seconds"] is not None
        assert lag["seconds"] >= 0.2 and lag["seconds"] <= time.time() - ingested / 1000 + 0.1
        lx.refresh()
        assert arm_lags(store, lexical=lx)["lexical"]["seconds"] == 0.0
        lx.close()


def test_the_lexical_lag_is_read_through_the_callers_connection(tmp_path, monkeypatch):
    """`/v1/stats` runs on a request thread with a connection of its own, while the index's
    connection is the indexer's, busy with its refresh: the lag (posts, and deletions not
    applied yet) is read through the caller's."""
    from townsquare.services.indexes import lexical_index
    from townsquare.store import open_store
    home = tmp_path / "h"
    home.mkdir()
    with open_store(home / "townsquare.db") as store:
        store.write_batch([Stored(Post(id=BASE + i, text=TEXTS[i], source="t").normalized())
                           for i in range(2)], [])
        lx = lexical_index(store, home)
        if lx is None:
            pytest.skip("tantivy is not installed")
        lx.refresh()
        store.delete([BASE])
        with open_store(home / "townsquare.db") as mine:
            def foreign(*a, **kw):
                raise AssertionError("the index's connection was used")
            for name in ("deletions_since", "max_seq"):
                monkeypatch.setattr(store, name, foreign)
            lag = arm_lags(mine, lexical=lx)["lexical"]
            assert lag["posts"] == 1                  # the deletion the index has not applied
            assert lx.lag(None, mine) == 1
            monkeypatch.undo()
        lx.refresh()
        assert lx.lag() == 0
        lx.close()


def test_a_servers_published_indexes_are_counted_from_the_store_until_stale(store, tmp_path):
    """`townsquare stats` reads where a running server's indexes stand (it must not open them)
    and counts their lag from the store."""
    from townsquare.services import freshness as fr
    tiers = _tiers_over_texts(store, tmp_path)
    tiers.refresh()
    home = tmp_path / "home"
    home.mkdir()
    assert fr.home_arm_lags(store, home)["fast_semantic"] is None        # no server

    class Tantivy:                     # what the server's index says of itself: its watermark
        watermark = 2
    fr.publish_indexes(home, Tantivy(), tiers)
    store.write_batch([Stored(Post(id=BASE + 9, text="late post", source="t").normalized())],
                      [])
    lags = fr.home_arm_lags(store, home)
    f = lags["fast_semantic"]
    assert (f["model"], f["state"], f["through_seq"], f["indexed"]) == ("m2v-e5", "ready", 3, 3)
    assert f["posts"] == 1 and f["seconds"] >= 0.0                       # counted now
    assert lags["lexical"]["through_seq"] == 2 and lags["lexical"]["posts"] == 2
    fr.publish_indexes(home, None, None)                 # FTS5 alone, no fast tier
    lags = fr.home_arm_lags(store, home)
    assert lags["lexical"]["posts"] == 0 and lags["fast_semantic"] is None
    snap = orjson.loads((home / fr.INDEXES_FILE).read_bytes())
    (home / fr.INDEXES_FILE).write_bytes(orjson.dumps({**snap, "at": snap["at"] - 31}))
    fr.publish_indexes(home, Tantivy(), tiers)
    fr.unpublish_indexes(home)
    assert not (home / fr.INDEXES_FILE).exists()


def test_stats_never_opens_a_tantivy_index_another_process_writes(tmp_path):
    """Opening a tantivy index may rebuild it (a new one, another schema): `townsquare stats`
    must not do that under a server or an `ingest` that holds the home (it once could wipe a
    starting server's index)."""
    from townsquare.services.freshness import home_arm_lags
    from townsquare.services.indexes import LEXICAL_DIR
    from townsquare.store import open_store
    from townsquare.store.lock import LOCK_FILE, WriterLock
    home = tmp_path / "h"
    (home / LEXICAL_DIR).mkdir(parents=True)
    sentinel = home / LEXICAL_DIR / "segment-being-written"
    sentinel.write_text("x")
    with open_store(home / "townsquare.db") as store:
        store.write_batch([Stored(Post(id=BASE, text=TEXTS[0], source="t").normalized())], [])
        lock = WriterLock(home / LOCK_FILE, session=True)
        lock.acquire()
        try:
            lags = home_arm_lags(store, home)
        finally:
            lock.release()
        assert lags["lexical"] is None and lags["e5"]["posts"] == 1
        assert sentinel.exists()

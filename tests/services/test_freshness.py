"""Issue 18: ``townsquare stats --json`` and ``/v1/stats`` report each search arm's lag (lexical,
fast semantic, e5) in posts and seconds."""
from __future__ import annotations

import numpy as np
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


def test_each_arm_reports_posts_and_seconds_behind(store, tmp_path):
    store.write_batch([Stored(Post(id=BASE + i, text=t, source="t").normalized())
                       for i, t in enumerate(TEXTS)], [])
    tok = tokenizer_for()
    fast = StaticE5Embedder(cache_dir=tmp_path, token_ids=sorted(
        {t for s in tok.content_ids(TEXTS) for t in s}))
    tiers = TieredVectors(store, StoreVectors(store, None, 384), fast)

    lags = arm_lags(store, lexical=None, tiers=tiers)
    assert lags["lexical"] == {"posts": 0, "seconds": 0.0, "through_seq": 3}   # FTS5 only
    assert lags["e5"]["posts"] == 3 and lags["e5"]["seconds"] >= 0.0
    assert lags["fast_semantic"]["posts"] == 3 and lags["fast_semantic"]["seconds"] is None

    tiers.refresh()                                    # the fast tier embeds all three at once
    lags = arm_lags(store, lexical=None, tiers=tiers)
    assert lags["fast_semantic"] == {"model": "m2v-e5", "posts": 0, "seconds": 0.0,
                                     "indexed": 3, "through_seq": 3}
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

"""The learned re-ranking (``search.rerank``): its features, its logistic regression against
scikit-learn's, the shipped weights, and the engine re-ordering the hybrid ranking below its
head with it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from townsquare.embed.stage import EmbedStage
from townsquare.embed.sync import StoreVectors
from townsquare.posts import Post
from townsquare.search import rerank
from townsquare.search.engine import MAX_LIMIT, SearchConfig, SearchEngine
from townsquare.search.rerank import FEATURES, RerankModel, features, hours_from, model_for
from townsquare.store.base import Stored

from tests.search.axes import WordAxes

BASE = 1_212_092_628_029_698_048
T0 = 1_600_000_000_000


def test_features_flag_missing_vectors_and_the_lists_that_found_each_candidate():
    ranked = [10, 11, 12, 13]
    cq = np.array([0.9, np.nan, 0.7, 0.8])
    cm = np.array([0.95, np.nan, 0.6, 0.85])
    X = features(4, cq, cm, {"lexical": [11, 13], "feedback": [10]}, ranked)
    col = {name: X[:, i] for i, name in enumerate(FEATURES)}
    assert X.shape == (4, len(FEATURES))
    # a candidate with no vector gets the lowest cosine present
    assert col["cos_query"].tolist() == [0.9, 0.7, 0.7, 0.8]
    assert col["cos_moved"].tolist() == [0.95, 0.6, 0.6, 0.85]
    assert np.allclose(col["cos_query_vs_head"], col["cos_query"] - 0.775)
    assert col["in_lexical"].tolist() == [0, 1, 0, 1]
    assert col["in_feedback"].tolist() == [1, 0, 0, 0]
    assert col["in_semantic"].tolist() == [0, 0, 0, 0]
    assert col["log_position"].tolist() == pytest.approx(np.log1p([0, 1, 2, 3]).tolist())


def test_hours_from_the_head_are_to_its_median_time():
    H = 3_600_000
    t = np.array([0, 2 * H, 4 * H, 100 * H, 10 * H])
    # the head: the first three, median 2 h
    assert hours_from(t, np.array([1, 1, 1, 0, 0], bool)).tolist() == [2, 0, 2, 98, 8]
    assert hours_from(t, np.zeros(5, bool)).tolist() == [4, 2, 0, 96, 6]   # no head: all
    assert hours_from(np.zeros(0), np.zeros(0, bool)).tolist() == []
    X = features(5, np.full(5, 0.5), np.full(5, 0.5), {}, [1, 2, 3, 4, 5],
                 hours_from(t, np.array([1, 1, 1, 0, 0], bool)))
    assert X[:, FEATURES.index("log_hours_from_head")].tolist() == pytest.approx(
        np.log1p([2, 0, 2, 98, 8]).tolist())
    assert not features(5, np.full(5, 0.5), np.full(5, 0.5), {}, [1, 2, 3, 4, 5])[
        :, FEATURES.index("log_hours_from_head")].any()                    # none given: 0


def test_probability_matches_scikit_learn_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, len(FEATURES)))
    y = (X[:, 2] + 0.5 * X[:, 3] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    lr = LogisticRegression(C=10.0, max_iter=2000).fit(X, y)
    m = RerankModel("m", lr.coef_[0], float(lr.intercept_[0]))
    Xt = rng.normal(size=(50, len(FEATURES)))
    assert np.allclose(m.probability(Xt), lr.predict_proba(Xt)[:, 1], atol=1e-12)


def test_order_keeps_the_head_and_sorts_the_rest_stably():
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("cos_query")] = 10.0
    m = RerankModel("m", coef, 0.0, keep_top=2)
    X = np.zeros((6, len(FEATURES)))
    X[:, FEATURES.index("cos_query")] = [0.1, 0.2, 0.3, 0.9, 0.3, 0.5]
    order, p = m.order([1, 2, 3, 4, 5, 6], X)
    assert order == [1, 2, 4, 6, 3, 5]          # 3 and 5 tie: fused order kept
    assert p.shape == (6,) and p[3] > p[5] > p[2] == p[4]
    assert RerankModel("m", coef, 0.0, keep_top=10).order([1, 2, 3], X[:3])[0] == [1, 2, 3]
    # a candidate with no vector (not movable) keeps its place; the others move around it
    movable = np.array([True, True, True, False, True, True])
    assert m.order([1, 2, 3, 4, 5, 6], X, movable)[0] == [1, 2, 6, 4, 3, 5]


def test_a_model_is_validated_when_built():
    with pytest.raises(ValueError, match="weights"):
        RerankModel("m", np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="keep_top"):
        RerankModel("m", np.zeros(len(FEATURES)), 0.0, keep_top=-1)
    with pytest.raises(ValueError, match="finite"):
        RerankModel("m", np.full(len(FEATURES), np.nan), 0.0)


def test_the_shipped_weights_load_for_e5_and_round_trip(tmp_path):
    m = model_for("e5-small-int8")
    assert m is not None and m.coef.shape == (len(FEATURES),)
    assert m.fitted["by"] == "eval/fit_rerank.py" and m.keep_top >= 0
    assert model_for("some-other-model") is None and model_for(None) is None
    path = tmp_path / "w.json"
    rerank.save([m], path)
    again = model_for("e5-small-int8", path)
    assert np.allclose(again.coef, m.coef) and again.keep_top == m.keep_top
    data = json.loads(path.read_text())
    data["e5-small-int8"]["features"] = ["another", "set"]
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="refit"):
        model_for("e5-small-int8", stale)


AXES = {"storm": 0, "rain": 1, "wind": 2, "flood": 3, "calm": 4}


WORDS = ["rain", "wind", "flood", "calm"]


@pytest.fixture
def stormy(store):
    """40 posts, each "storm" with 0-3 other words: cosines to "storm" from 1.0 down to 0.5."""
    posts = []
    for i in range(40):
        extra = [WORDS[(i + j) % 4] for j in range(i % 4)]
        posts.append(Stored(Post(id=BASE + i, source="t", created_at=T0 + i * 60_000,
                                 text=" ".join(["storm", *extra, f"n{i}"])).normalized()))
    store.write_batch(posts, [])
    emb = WordAxes("axes", AXES, bias=0.05)
    EmbedStage(store, emb).run()
    return store, emb


def _engine(store, emb, model=None, **cfg):
    e = SearchEngine(store, embedder=emb, vectors=StoreVectors(store, None, emb.dim),
                     config=SearchConfig(min_similarity=-1.0, **cfg))
    e.reranker = model
    return e


def test_the_engine_reorders_below_the_head_by_the_model(stormy):
    store, emb = stormy
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("cos_query")] = 20.0
    model = RerankModel(emb.name, coef, -10.0, keep_top=3)
    fused = _engine(store, emb).run("storm", limit=MAX_LIMIT, now_ms=T0)
    got = _engine(store, emb, model).run("storm", limit=MAX_LIMIT, now_ms=T0)
    ids = [h.id for h in got.results]
    assert sorted(ids) == sorted(h.id for h in fused.results)      # the same candidates
    assert ids[:3] == [h.id for h in fused.results[:3]]            # the head as fused
    q = emb.query("storm")
    cos = {h.id: float(emb.passages([h.text])[0] @ q) for h in got.results}
    rest = [cos[pid] for pid in ids[3:]]
    assert rest == sorted(rest, reverse=True)                       # the rest by cosine
    assert [h.id for h in fused.results] != ids                     # it did re-order
    assert all(0.0 < h.parts["rerank"] < 1.0 for h in got.results)
    assert all("rerank" not in h.parts for h in fused.results)
    assert "rerank" in got.timings_ms


def test_a_post_not_embedded_yet_keeps_its_fused_place(stormy):
    store, emb = stormy
    late = [Stored(Post(id=BASE + 100 + i, source="t", created_at=T0 + (100 + i) * 60_000,
                        text=f"storm rain wind flood late{i}").normalized()) for i in range(3)]
    store.write_batch(late, [])                           # written, not embedded
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("cos_query")] = 20.0
    fused = [h.id for h in _engine(store, emb).run("storm", limit=MAX_LIMIT, now_ms=T0).results]
    got = [h.id for h in _engine(store, emb, RerankModel(emb.name, coef, -10.0, keep_top=3)
                                 ).run("storm", limit=MAX_LIMIT, now_ms=T0).results]
    assert got != fused
    for p in late:
        assert got.index(p.post.id) == fused.index(p.post.id)


def test_a_reranked_page_chain_is_the_one_big_page(stormy):
    store, emb = stormy
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("cos_query")] = 20.0
    eng = _engine(store, emb, RerankModel(emb.name, coef, -10.0, keep_top=3))
    whole = [h.id for h in eng.run("storm", limit=MAX_LIMIT, now_ms=T0).results]
    chain, cursor = [], None
    while True:
        r = eng.run("storm", limit=7, cursor=cursor, now_ms=T0)
        chain += [h.id for h in r.results]
        cursor = r.next_cursor
        if cursor is None:
            break
    assert chain == whole and len(set(chain)) == len(chain) == 40


def test_rerank_features_give_the_fused_candidates(stormy):
    store, emb = stormy
    eng = _engine(store, emb, rerank=False)
    assert eng.reranker is None
    ids, X = eng.rerank_features("storm", now_ms=T0)
    assert X.shape == (len(ids), len(FEATURES)) and len(ids) == 40
    assert ids[:5] == [h.id for h in eng.run("storm", limit=5, now_ms=T0).results]
    assert X[:, FEATURES.index("in_semantic")].all()
    assert _engine(store, emb).rerank_features("since:2020-01-01", now_ms=T0) is None


def test_rerank_features_give_each_candidate_its_hours_from_the_heads_median_time(stormy):
    store, emb = stormy
    ids, X = _engine(store, emb, rerank=False).rerank_features("storm", now_ms=T0)
    # 40 posts a minute apart, no near-duplicates: the head (50) holds them all, median 19.5 min
    want = [np.log1p(abs((pid - BASE) * 60_000 - 19.5 * 60_000) / 3_600_000) for pid in ids]
    assert X[:, FEATURES.index("log_hours_from_head")].tolist() == pytest.approx(want)


def test_a_candidate_far_in_time_from_the_head_goes_down(stormy):
    """The temporal feature at work: posts a month after the head's time sink below the
    kept head, whatever their rank, when the model weighs time alone."""
    store, emb = stormy
    later = [Stored(Post(id=BASE + 200 + i, source="t", created_at=T0 + 30 * 86_400_000 + i,
                         text=f"storm rain n{i}").normalized()) for i in range(3)]
    store.write_batch(later, [])
    EmbedStage(store, emb).run()
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("log_hours_from_head")] = -5.0
    fused = [h.id for h in _engine(store, emb).run("storm", limit=MAX_LIMIT, now_ms=T0).results]
    got = [h.id for h in _engine(store, emb, RerankModel(emb.name, coef, 0.0, keep_top=3)
                                 ).run("storm", limit=MAX_LIMIT, now_ms=T0).results]
    far = {p.post.id for p in later}
    assert min(fused.index(pid) for pid in far) < len(fused) - 3      # not last when fused
    assert set(got[-3:]) == far and got[:3] == fused[:3]


def test_a_model_without_fitted_weights_is_not_reranked(stormy):
    store, emb = stormy
    assert _engine(store, emb).reranker is None                    # _engine sets none
    e = SearchEngine(store, embedder=emb, vectors=StoreVectors(store, None, emb.dim))
    assert e.reranker is None                                      # "axes" has no weights
    e5 = WordAxes("e5-small-int8", AXES)
    assert SearchEngine(store, embedder=e5, vectors=StoreVectors(store, None, e5.dim)
                        ).reranker is model_for("e5-small-int8")
    assert SearchEngine(store, embedder=e5, vectors=StoreVectors(store, None, e5.dim),
                        config=SearchConfig(rerank=False)).reranker is None


def test_a_page_inside_the_kept_head_skips_the_reranking_and_is_the_same(stormy):
    store, emb = stormy
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("cos_query")] = 20.0
    eng = _engine(store, emb, RerankModel(emb.name, coef, -10.0, keep_top=10))
    whole = eng.run("storm", limit=MAX_LIMIT, now_ms=T0)
    first = eng.run("storm", limit=5, now_ms=T0)            # 6 posts needed, within the 10
    assert "rerank" in whole.timings_ms and "rerank" not in first.timings_ms
    assert [h.id for h in first.results] == [h.id for h in whole.results[:5]]
    second = eng.run("storm", limit=5, cursor=first.next_cursor, now_ms=T0)
    third = eng.run("storm", limit=5, cursor=second.next_cursor, now_ms=T0)   # reaches past 10
    assert "rerank" in third.timings_ms
    assert [h.id for h in first.results + second.results + third.results] == [
        h.id for h in whole.results[:15]]

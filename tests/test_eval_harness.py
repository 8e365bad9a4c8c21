"""The eval scripts' own pieces that headline figures rest on: run here, without the shared data,
so that a broken helper fails the tests instead of a 10-minute eval run (7257493 found
``eval/search.py`` failing on a missing import only when it was run)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

EVAL = Path(__file__).resolve().parents[1] / "eval"


@pytest.fixture(scope="module")
def ev():
    sys.path.insert(0, str(EVAL))
    try:
        import search
        import stories
        import summaries
        yield {"search": search, "summaries": summaries, "stories": stories}
    finally:
        sys.path.remove(str(EVAL))


def test_the_empty_e5_index_of_the_fast_tier_eval_is_a_vector_index(ev):
    from townsquare import protocols
    empty = ev["search"]._NoE5()
    assert isinstance(empty, protocols.VectorIndex)
    ids, V = empty.vectors_of([1, 2, 3])
    assert ids.shape == (0,) and V.shape == (0, 384)
    got = empty.nearest(np.ones(384, dtype=np.float32), 10)
    assert len(got.ids) == 0 and empty.search(None, 5) == [] and empty.refresh() == 0


def test_the_paired_bootstrap_brackets_the_mean_difference_and_is_seeded(ev):
    boot = ev["summaries"].paired_bootstrap
    ours, theirs = [0.10, 0.05, 0.20, 0.00], [0.05, 0.06, 0.10, 0.03]
    a, b = boot(ours, theirs, 16), boot(ours, theirs, 16)
    assert a == b
    assert a["mean_diff"] == pytest.approx(np.mean(np.subtract(ours, theirs)), abs=1e-4)
    assert a["low"] <= a["mean_diff"] <= a["high"]
    assert boot([0.2] * 5, [0.1] * 5, 1)["share_above"] == 1.0          # always better
    assert boot([0.1] * 5, [0.2] * 5, 1)["share_above"] == 0.0


def test_event_days_are_dealt_to_both_halves_by_the_seed(ev):
    split = ev["summaries"].split_days
    pairs = [(e, f"2020-01-0{d}") for e in ("a", "b") for d in range(1, 5)]
    half = split(pairs, 16)
    assert half == split(pairs, 16) and set(half) == set(pairs)
    for e in ("a", "b"):                     # every event with 2+ days is in both halves
        assert {half[k] for k in pairs if k[0] == e} == {"tune", "test"}


def test_bcubed_matches_a_brute_force_count_and_a_post_in_no_story_is_alone(ev):
    bcubed = ev["stories"].bcubed
    truth = ["x", "x", "x", "y", "y", None]
    pred = [1, 1, 2, 2, None, 3]
    keep = [t is not None for t in truth]
    items = [i for i in range(len(truth)) if keep[i]]
    label = [p if p is not None else f"alone{i}" for i, p in enumerate(pred)]
    prec = np.mean([sum(label[j] == label[i] and truth[j] == truth[i] for j in items)
                    / sum(label[j] == label[i] for j in items) for i in items])
    rec = np.mean([sum(label[j] == label[i] and truth[j] == truth[i] for j in items)
                   / sum(truth[j] == truth[i] for j in items) for i in items])
    p, r, f = bcubed(truth, pred, keep)
    assert (p, r) == pytest.approx((prec, rec)) and f == pytest.approx(2 * p * r / (p + r))


def test_the_collapsed_reference_keeps_each_near_duplicate_groups_first_post_in_order(ev, store):
    from townsquare.ingest.enrich import LateStage
    from townsquare.posts import Post
    from townsquare.store.base import Stored
    a, b, c = 1212092628029698048, 1212092628029698049, 1212092628029698050
    store.write_batch([Stored(Post(id=pid, text=t, source="s1").normalized(), "f.csv", 1)
                       for pid, t in ((a, "water rising fast near the old mill bridge"),
                                      (b, "RT @x: water rising fast near the old mill bridge"),
                                      (c, "a different post"))], [])
    LateStage(store).run()
    collapsed = ev["search"].collapsed
    assert collapsed(store, [b, c, a]) == [b, c]          # the copy ranked first stands for a
    assert collapsed(store, [c, a, b]) == [c, a]
    assert collapsed(store, [c, 999]) == [c, 999]          # an id the store lacks stays
    assert collapsed(store, []) == []


def test_the_rerank_fit_returns_weights_on_raw_features_and_seeded_disjoint_folds():
    """``eval/fit_rerank.py`` fits on standardized features and ships raw-feature weights: the
    shipped model must give the standardized fit's probabilities."""
    sys.path.insert(0, str(EVAL))
    try:
        import fit_rerank
    finally:
        sys.path.remove(str(EVAL))
    from sklearn.linear_model import LogisticRegression

    from townsquare.search.rerank import FEATURES
    rng = np.random.default_rng(2)
    X = rng.normal(loc=3.0, scale=[0.1 * (i + 1) for i in range(len(FEATURES))],
                   size=(300, len(FEATURES)))
    y = (X[:, 2] - 3.0 + rng.normal(scale=0.2, size=300) > 0).astype(float)
    weights = fit_rerank.fit([(X[:150], y[:150]), (X[150:], y[150:])], 1.0)
    model = fit_rerank.model_of(weights, keep_top=5)
    mean, sd = X.mean(axis=0), X.std(axis=0)
    ref = LogisticRegression(C=1.0, max_iter=5000, tol=1e-8).fit((X - mean) / sd, y)
    assert np.allclose(model.probability(X), ref.predict_proba((X - mean) / sd)[:, 1], atol=1e-9)
    events = [f"e{i}" for i in range(9)]
    a, b = fit_rerank.folds_of(events, 0)
    assert sorted(a + b) == events and not set(a) & set(b) and abs(len(a) - len(b)) == 1
    assert fit_rerank.folds_of(events, 0) == [a, b] != fit_rerank.folds_of(events, 1)


def test_fit_rerank_one_se_takes_the_largest_kept_head_within_one_standard_error():
    """``one_se``: of the settings whose objective is within one standard error (paired, per
    query) of the best, the largest keep_top; a setting worse beyond it is not taken."""
    sys.path.insert(0, str(EVAL))
    try:
        import fit_rerank
    finally:
        sys.path.remove(str(EVAL))
    rng = np.random.default_rng(3)
    best_share = rng.uniform(0.0, 0.02, size=100)

    def row(keep, shift):
        share = best_share - shift + rng.normal(scale=0.001, size=100)
        return {"setting": {"C": 1.0, "keep_top": keep}, "objective": float(share.sum()),
                "_share": share.tolist()}
    top = {"setting": {"C": 1.0, "keep_top": 10}, "objective": float(best_share.sum()),
           "_share": best_share.tolist()}
    near = row(50, 0.0)                  # the same queries, noise only: within one SE
    far = row(100, 0.002)                # 0.2 lower in total, ~20 SE away
    got = fit_rerank.one_se([top, near, far], top)
    assert got is near and far["se_from_best"] > 0 and top["se_from_best"] == 0.0
    assert fit_rerank.one_se([top, far], top) is top


def test_the_stories_grid_runs_each_setting_once_and_every_one_is_a_valid_config(ev):
    from townsquare.stories.cluster import StoryConfig
    grid, settings = ev["stories"].GRID, ev["stories"]._settings()
    keys = [tuple(sorted(s.items())) for s in settings]
    assert len(set(keys)) == len(keys)
    off = [s for s in settings if s["posts_bar"] == 0]     # posts_bar_from does nothing there
    assert {s["posts_bar_from"] for s in off} == {grid["posts_bar_from"][0]}
    rest = np.prod([len(v) for k, v in grid.items() if k not in ("posts_bar", "posts_bar_from")])
    assert len(off) == rest
    assert len(settings) == rest * (1 + (len(grid["posts_bar"]) - 1) * len(grid["posts_bar_from"]))
    for s in settings:
        StoryConfig(**s)

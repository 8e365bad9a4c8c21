"""Brand safety: training separates invented offensive text from neutral text, the model survives
a save/load round trip, a missing model says how to train one, and on the real data it beats a
bag of words. Every sentence here is invented for these tests."""
from __future__ import annotations

import numpy as np
import pytest

from townsquare.ads.safety import (LABELS, BrandSafety, SafetyVerdict, crisis_label, normalize,
                                   pick_threshold, train_from_data)

RUDE = ["you are a worthless idiot", "shut up you stupid clown", "what a pathetic moron",
        "go away you idiot clown", "stupid moron shut up", "nobody likes you, loser",
        "you absolute idiot, shut your mouth", "pathetic loser clown", "what a dumb worthless fool",
        "get lost you stupid fool"]
NEUTRAL = ["lovely walk in the park today", "the new cafe serves great coffee",
           "our team won the match", "reading a good book tonight", "sunny day at the beach",
           "baking bread with my kids this afternoon", "the library opens at nine",
           "new bike lanes on main street", "great concert in the square last night",
           "planting tomatoes in the garden"]
CRISIS = ["earthquake destroyed homes, rescue teams search the rubble",
          "flood waters rising, families evacuated to shelters",
          "wildfire forces thousands to flee, several dead",
          "hurricane knocked out power, hospitals on generators",
          "death toll from the earthquake climbs to forty",
          "shelters need water and blankets after the flood"]
HELD_OUT_RUDE = ["shut up, you worthless clown", "you stupid pathetic idiot"]
HELD_OUT_NEUTRAL = ["great coffee and a good book", "a sunny walk to the library"]


def tiny(embedder=None) -> BrandSafety:
    y = [1] * len(RUDE) + [0] * len(NEUTRAL)
    crisis_y = [1] * len(CRISIS) + [0] * (len(RUDE) + len(NEUTRAL))
    return BrandSafety.train({"offensive": (RUDE + NEUTRAL, y),
                              "crisis": (CRISIS + RUDE + NEUTRAL, crisis_y)}, embedder=embedder)


@pytest.fixture(scope="module")
def e5():
    from townsquare.embed.models import get_embedder
    try:
        return get_embedder("e5-small-int8", num_threads=2)
    except ImportError as e:                                   # the one-time export needs torch
        pytest.skip(str(e))


def test_tiny_training_separates_offensive_from_neutral():
    bs = tiny()
    rude = [s["offensive"] for s in bs.scores(HELD_OUT_RUDE)]
    calm = [s["offensive"] for s in bs.scores(HELD_OUT_NEUTRAL)]
    assert min(rude) > max(calm)
    assert [bs.check(t).flags for t in HELD_OUT_RUDE] == [["offensive"], ["offensive"]]
    assert all(bs.check(t).safe for t in HELD_OUT_NEUTRAL)
    v = bs.check("rescue teams search the rubble after the earthquake")
    others = bs.scores(HELD_OUT_RUDE + HELD_OUT_NEUTRAL)
    assert isinstance(v, SafetyVerdict) and v.scores["crisis"] > max(s["crisis"] for s in others)
    assert set(v.scores) == {"offensive", "crisis"}            # only the trained labels


def test_validation_data_sets_the_thresholds():
    crisis_y = [1] * len(CRISIS) + [0] * (len(RUDE) + len(NEUTRAL))
    data = {"crisis": (CRISIS + RUDE + NEUTRAL, crisis_y)}
    bs = BrandSafety.train(data, data, embedder=None)          # the tiny set as its own check
    assert bs.info["val"]["crisis"]["metric"] == "f1" and bs.info["val"]["crisis"]["score"] == 1.0
    assert bs.thresholds["crisis"] < 0.5                       # 6 positives in 26: scores are low
    v = bs.check("rescue teams search the rubble after the earthquake")
    assert v.flags == ["crisis"] and not v.safe


def test_tiny_training_with_the_embedding_head(e5):
    bs = BrandSafety.train({"offensive": (RUDE + NEUTRAL, [1] * 10 + [0] * 10)},
                           embedder="e5-small-int8")
    heads = bs.head_scores(HELD_OUT_RUDE + HELD_OUT_NEUTRAL)
    assert set(heads) == {"tfidf", "embedding"}
    assert heads["embedding"]["offensive"][:2].min() > heads["embedding"]["offensive"][2:].max()
    s = [x["offensive"] for x in bs.scores(HELD_OUT_RUDE + HELD_OUT_NEUTRAL)]
    assert np.allclose(s, (heads["tfidf"]["offensive"] + heads["embedding"]["offensive"]) / 2)


@pytest.mark.parametrize("embedder", [None, "e5-small-int8"])
def test_save_load_round_trip_gives_identical_scores(tmp_path, embedder, request):
    if embedder:
        request.getfixturevalue("e5")
    bs = tiny(embedder)
    bs.thresholds["offensive"] = 0.37
    path = bs.save(tmp_path / "models" / "brand_safety.joblib")
    again = BrandSafety.load(path)
    texts = HELD_OUT_RUDE + HELD_OUT_NEUTRAL + ["", "@someone http://x.example floods"]
    assert again.scores(texts) == bs.scores(texts)
    assert again.thresholds == bs.thresholds and again.embedder_name == embedder


def test_missing_model_file_says_how_to_train(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no brand-safety model at .*missing\.joblib.*"
                                                r"townsquare ads safety train"):
        BrandSafety.load(tmp_path / "missing.joblib")


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    import joblib
    joblib.dump({"something": "else"}, tmp_path / "x.joblib")
    with pytest.raises(ValueError, match="not a brand-safety model"):
        BrandSafety.load(tmp_path / "x.joblib")


def test_constructor_validates_early():
    bs = tiny()
    with pytest.raises(ValueError, match="subset of"):
        BrandSafety(bs.vectorizer, {"spam": bs.heads["offensive"]}, {"spam": 0.5}, embedder=None)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        BrandSafety(bs.vectorizer, bs.heads, {"offensive": 0.5, "crisis": 1.5}, embedder=None)
    with pytest.raises(ValueError, match="one threshold per head"):
        BrandSafety(bs.vectorizer, bs.heads, {"offensive": 0.5}, embedder=None)
    with pytest.raises(ValueError, match="one embedding head per label"):
        BrandSafety(bs.vectorizer, bs.heads, bs.thresholds, embedder="e5-small-int8")
    with pytest.raises(ValueError, match="embedder_instance must be 'e5-small-int8'"):
        BrandSafety(bs.vectorizer, bs.heads, bs.thresholds, emb_heads=bs.heads,
                    embedder="e5-small-int8", embedder_instance=object())
    with pytest.raises(ValueError, match="emb_per_class"):
        BrandSafety.train({"spam": (RUDE + NEUTRAL, [1] * 10 + [0] * 10)}, embedder=None)
    with pytest.raises(ValueError, match="both 0 and 1"):
        BrandSafety.train({"offensive": (RUDE, [1] * len(RUDE))}, embedder=None)
    with pytest.raises(TypeError, match="list of texts"):
        bs.scores("one string")
    assert bs.scores([]) == [] and bs.verdicts([]) == []


def test_training_data_folder_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no datasets folder"):
        train_from_data(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"tweeteval/offensive/train_labels\.txt"):
        train_from_data(tmp_path)
    with pytest.raises(ValueError, match="unknown labels"):
        train_from_data(tmp_path, labels=("spam",))


def test_crisis_labels_and_normalization():
    assert crisis_label("2013_boston_bombings", "off-topic") == 0
    assert crisis_label("hurricane_irma_2017", "injured_or_dead_people") == 1
    assert crisis_label("hurricane_irma_2017", "not_humanitarian") is None
    assert crisis_label("2014_iceland_volcano", "Not informative") == 1       # refers to it
    assert crisis_label("2014_philippines_typhoon_hagupit", "Not Informative") is None
    assert normalize("RT @abc_1: storm http://t.co/Z &amp; @x") == "storm http & @user"
    assert normalize("@user storm URL") == normalize("@bob storm https://t.co/q")


def test_threshold_maximizes_the_metric_and_prefers_the_lowest_on_ties():
    p, y = np.array([0.1, 0.2, 0.7, 0.8]), np.array([0, 0, 1, 1])
    assert pick_threshold(p, y, "offensive") == (0.21, 1.0)
    assert pick_threshold(p, y, "crisis") == (0.21, 1.0)


@pytest.mark.shared_data
def test_real_offensive_validation_beats_bag_of_words(shared_data):
    # ~40 s: TF-IDF on 12k tweets, 4.3k embedded. Both sides pick their threshold on validation.
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from townsquare.ads.safety import tweeteval
    bs = train_from_data(shared_data, labels=("offensive",))
    assert bs.trained == ("offensive",) and bs.labels == LABELS
    ours = bs.info["val"]["offensive"]["score"]
    (x, y), (xv, yv) = (tweeteval(shared_data, "offensive", s) for s in ("train", "val"))
    vec = CountVectorizer(preprocessor=lambda s: normalize(s).lower(), min_df=2)
    bow = LogisticRegression(max_iter=2000).fit(vec.fit_transform(x), y)
    _, theirs = pick_threshold(bow.predict_proba(vec.transform(xv))[:, 1], yv, "offensive")
    print(f"\noffensive validation macro-F1: ours {ours:.3f}, bag of words {theirs:.3f}")
    assert ours > theirs + 0.01

"""Brand safety (``townsquare.ads.safety``): offensive and hate on TweetEval, crisis on held-out
events, against baselines run here and the TweetEval paper's, and the time per post.

What it measures
----------------
The classifier is trained as a user would (``train_from_data`` on ``../shared/data``: train
splits to fit, validation splits for thresholds), then scored on data it never saw:

- ``offensive``: macro-F1 on TweetEval's offensive **test** split (860 tweets);
- ``hateful``: macro-F1 on TweetEval's hate **test** split (2,970 tweets);
- ``crisis``: F1 of the crisis class on the held-out events (``safety.TEST_EVENTS``: up to 200
  posts per event and class) plus TweetEval test tweets as chatter (offensive, irony, emotion,
  1,000 emoji); per-event recall, and false-positive rate per source of negatives.

Candidates, each with its threshold picked on validation like the shipped model's:
majority class; bag of words (unigram counts + logistic regression, the baseline); the
TF-IDF head alone; the e5 embedding head alone; their average (what ``BrandSafety`` ships).

The paper's numbers (Barbieri et al., 2020, TweetEval, test-set macro-F1, Findings of EMNLP) are
quoted in ``PAPER``, with where they were read. Latency: ``check()`` on one post at a time (p50,
p99) and ``verdicts()`` on batches of 256 (posts/s), on this machine, after warm-up.

Run
---
    python eval/brand_safety.py --write-results          # ~3 min on 2 cores

Results: ``eval/results/brand_safety.json`` and ``eval/results/brand_safety.md`` (numbers only;
no tweet text leaves the data folder).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score, recall_score

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "eval" / "results"
sys.path.insert(0, str(REPO / "src"))
from townsquare.ads import safety  # noqa: E402

# Test macro-F1 (%) from the paper. SVM, BLSTM ("LSTM" there), FastText, RoBERTa-Base and
# RoBERTa-Twitter: the paper's results as listed on its Papers with Code page; RoBERTa-Retrained
# (the paper's best): the leaderboard of the cardiffnlp/tweeteval README (copies of the README
# read at geeksrepos.com/rinasepark/tweeteval and git.hub.midware.dev/graphext/tweeteval).
PAPER = {"SVM": (52.3, 36.7), "FastText": (73.4, 50.6), "BLSTM": (71.7, 52.6),
         "RoBERTa-Base": (79.5, 46.6), "RoBERTa-Twitter": (77.1, 49.9),
         "RoBERTa-Retrained": (80.5, 52.3)}                 # (offensive, hate)
PAPER_SOURCES = ["https://paperswithcode.com/paper/?acl=2020.findings-emnlp.148",
                 "https://geeksrepos.com/rinasepark/tweeteval (README leaderboard)",
                 "https://git.hub.midware.dev/graphext/tweeteval (README leaderboard)"]
CANDIDATES = ("majority", "bag of words", "TF-IDF head", "e5 head", "TF-IDF + e5 (shipped)")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def metric(label: str, y: np.ndarray, pred: np.ndarray) -> float:
    return float(f1_score(y, pred, average="binary" if label == "crisis" else "macro",
                          zero_division=0))


def bag_of_words(train: safety.Split) -> tuple[CountVectorizer, LogisticRegression]:
    vec = CountVectorizer(preprocessor=lambda s: safety.normalize(s).lower(), min_df=2)
    return vec, LogisticRegression(max_iter=2000).fit(vec.fit_transform(train.texts), train.y)


def candidate_probs(model: safety.BrandSafety, label: str, split: safety.Split,
                    bow, vectors: dict) -> dict[str, np.ndarray]:
    heads = model.head_scores(split.texts, vectors=vectors)
    tf, em = heads["tfidf"][label], heads["embedding"][label]
    vec, lr = bow
    return {"majority": np.zeros(len(split.y)),
            "bag of words": lr.predict_proba(vec.transform(split.texts))[:, 1],
            "TF-IDF head": tf, "e5 head": em, "TF-IDF + e5 (shipped)": (tf + em) / 2}


def evaluate_label(model, label: str, splits: dict, vectors: dict) -> dict:
    bow = bag_of_words(splits["train"])
    val = candidate_probs(model, label, splits["val"], bow, vectors)
    test = candidate_probs(model, label, splits["test"], bow, vectors)
    out = {}
    for name in CANDIDATES:
        thr, v = (0.5, metric(label, splits["val"].y, val[name] >= 0.5)) if name == "majority" \
            else safety.pick_threshold(val[name], splits["val"].y, label)
        pred, y = test[name] >= thr, splits["test"].y
        out[name] = {"threshold": thr, "val": round(v, 4), "test": round(metric(label, y, pred), 4),
                     "test_precision": round(float(precision_score(y, pred, zero_division=0)), 4),
                     "test_recall": round(float(recall_score(y, pred, zero_division=0)), 4)}
    shipped = model.combined(model.head_scores(splits["test"].texts, vectors=vectors))[label]
    assert np.allclose(shipped, test["TF-IDF + e5 (shipped)"])
    pred = shipped >= model.thresholds[label]
    groups, y = np.array(splits["test"].groups), splits["test"].y
    out["per_group"] = {}
    for g in sorted(set(groups)):
        pos, neg = (groups == g) & (y == 1), (groups == g) & (y == 0)
        out["per_group"][g] = {
            "crisis_posts": int(pos.sum()), "other_posts": int(neg.sum()),
            "recall": round(float(pred[pos].mean()), 4) if pos.any() else None,
            "false_positive_rate": round(float(pred[neg].mean()), 4) if neg.any() else None}
    return out


def latency(model: safety.BrandSafety, texts: list[str], n: int) -> dict:
    """check() one post at a time (p50, p99) and verdicts() in batches (posts/s)."""
    for t in texts[:10]:
        model.check(t)                                    # warm-up: first calls load and allocate
    times = []
    for t in texts[:n]:
        t0 = time.perf_counter()
        model.check(t)
        times.append(time.perf_counter() - t0)
    batch = texts[:1024]
    t0 = time.perf_counter()
    for i in range(0, len(batch), 256):
        model.verdicts(batch[i:i + 256])
    rate = len(batch) / (time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {"single_posts": len(times), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "batch_size": 256,
            "batch_posts": len(batch), "batch_posts_per_s": round(rate, 1)}


def markdown(r: dict) -> str:
    L = ["# Brand safety", "", "Command: `python eval/brand_safety.py --write-results` (see its "
         "docstring).", "", f"{r['date']}: trained in {r['train_seconds']} s on this machine "
         f"(2 cores), model file {r['model_mb']} MB; embedder {r['embedder']}.", ""]
    L += ["## Candidates (threshold picked on validation)", "",
          "Offensive and hateful: macro-F1; crisis: F1 of the crisis class (held-out events).", "",
          "| candidate | offensive val | offensive test | hateful val | hateful test | "
          "crisis val | crisis test |", "|---|---:|---:|---:|---:|---:|---:|"]
    for c in CANDIDATES:
        cells = [f"{r['labels'][x][c]['val']:.3f} | {r['labels'][x][c]['test']:.3f}"
                 for x in safety.LABELS]
        L.append(f"| {c} | " + " | ".join(cells) + " |")
    L += ["", "## Against the TweetEval paper (test macro-F1, %)", "",
          "| model | offensive | hate |", "|---|---:|---:|"]
    L += [f"| {m} (paper) | {o} | {h} |" for m, (o, h) in PAPER.items()]
    for c in ("bag of words", "TF-IDF + e5 (shipped)"):
        L.append(f"| {c}, this run | {100 * r['labels']['offensive'][c]['test']:.1f} | "
                 f"{100 * r['labels']['hateful'][c]['test']:.1f} |")
    L += ["", "Paper numbers read at: " + "; ".join(PAPER_SOURCES) + ".", ""]
    sh = {x: r["labels"][x]["TF-IDF + e5 (shipped)"] for x in safety.LABELS}
    L += ["## Shipped thresholds and test precision / recall", "",
          "| label | threshold | precision | recall |", "|---|---:|---:|---:|"]
    L += [f"| {x} | {sh[x]['threshold']:.2f} | {sh[x]['test_precision']:.3f} | "
          f"{sh[x]['test_recall']:.3f} |" for x in safety.LABELS]
    L += ["", "## Crisis: held-out events and chatter (shipped model)", "",
          "Recall on the posts about the event; false-positive rate on the posts labelled as not "
          "about it (CrisisLexT6 off-topic, AIDR not related, not physical landslide) and on "
          "TweetEval chatter.", "",
          "| group | crisis posts | recall | other posts | false positives |",
          "|---|---:|---:|---:|---:|"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"   # noqa: E731
    L += [f"| {g} | {v['crisis_posts']} | {fmt(v['recall'])} | {v['other_posts']} | "
          f"{fmt(v['false_positive_rate'])} |"
          for g, v in r["labels"]["crisis"]["per_group"].items()]
    lat = r["latency"]
    L += ["", "## Latency (this machine, 2 cores)", "",
          f"- `check()` on single posts: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms "
          f"({lat['single_posts']} posts).",
          f"- `verdicts()` in batches of {lat['batch_size']}: {lat['batch_posts_per_s']} posts/s.",
          f"- Without the e5 heads (TF-IDF heads alone, for reference): `check()` p50 "
          f"{r['latency_tfidf_only']['p50_ms']} ms, p99 {r['latency_tfidf_only']['p99_ms']} ms; "
          f"{r['latency_tfidf_only']['batch_posts_per_s']} posts/s in batches.", ""]
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--latency-posts", type=int, default=300)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model = safety.train_from_data(args.data, progress=lambda m: log(f"train: {m}"))
    train_s = round(time.perf_counter() - t0, 1)
    with tempfile.TemporaryDirectory() as tmp:            # the round trip a user's home sees
        path = model.save(Path(tmp) / "brand_safety.joblib")
        model_mb = round(path.stat().st_size / 1e6, 2)
        model = safety.BrandSafety.load(path, embedder_instance=model.embedder)
    splits = safety.load_splits(args.data)
    texts = list(dict.fromkeys(t for x in safety.LABELS for s in ("val", "test")
                               for t in splits[x][s].texts))
    log(f"embedding {len(texts):,} validation and test posts")
    vectors = safety.embed_texts(model.embedder, texts)
    res = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": "python eval/brand_safety.py --write-results", "train_seconds": train_s,
           "model_mb": model_mb, "embedder": model.embedder_name, "thresholds": model.thresholds,
           "paper_test_macro_f1": {m: {"offensive": o, "hate": h} for m, (o, h) in PAPER.items()},
           "paper_sources": PAPER_SOURCES,
           "sizes": {x: {s: len(splits[x][s].y) for s in ("train", "val", "test")}
                     for x in safety.LABELS}, "labels": {}}
    for label in safety.LABELS:
        log(f"evaluating {label}")
        res["labels"][label] = evaluate_label(model, label, splits[label], vectors)
    log("latency")
    res["latency"] = latency(model, splits["offensive"]["test"].texts, args.latency_posts)
    tfidf_only = safety.BrandSafety(model.vectorizer, model.heads, model.thresholds, embedder=None)
    res["latency_tfidf_only"] = latency(tfidf_only, splits["offensive"]["test"].texts,
                                        args.latency_posts)
    md = markdown(res)
    print(md)
    if args.write_results:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "brand_safety.json").write_text(json.dumps(res, indent=2) + "\n")
        (RESULTS / "brand_safety.md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

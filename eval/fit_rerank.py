"""Fit the hybrid ranking's learned re-ranking (``townsquare.search.rerank``) on the tuning half.

What it does, on ``eval/search.py``'s store and its seeded split of the events (seed 11, the
same halves as ``eval/tune_search.py``; the test half is never read here):

1. Every tuning-half query (names and keywords, English, French and Spanish) runs through the
   engine with the re-ranking off; ``SearchEngine.rerank_features`` gives each fused candidate
   (best first, every one the lists found: ~1,000-5,000 a query) and its features, as the
   engine computes them. A candidate is labelled relevant as ``eval/search.py`` labels posts.
2. 2-fold cross-validation by event inside the tuning half (a seeded split of its events):
   logistic regression (scikit-learn, L2 on standardized features, ``C`` from ``CS``) is
   fitted on one fold's
   candidates and installed in the engine, and the other fold's queries are searched, one page
   of 1,000 as ``eval/search.py`` does (near-duplicates collapsed), for each ``keep_top``
   (``KEEP_TOPS``: how many first candidates stay as fused). Scored as
   ``eval/tune_search.py`` scores: the objective (2 x English + French + Spanish) / 4 of
   MAP@1000, under the guard that the mean nDCG@10 of the three languages is not below the
   fusion's own (re-ranking off) on the same queries.
3. Among the settings under the guard that keep a default first page as fused
   (``FIRST_PAGE``), the one-standard-error rule (``one_se``) picks the
   largest ``keep_top`` whose objective is within one standard error of the best one's (the
   cheaper setting: first pages inside the kept head skip the re-ranking). It is refitted on
   the whole tuning half and written to
   ``src/townsquare/search/rerank_model.json`` (with ``--write-results``), with how it was
   chosen; ``eval/search.py`` then measures it on the test half, beside the fusion alone.

Run (after ``python eval/search.py`` has built and embedded the store under ``eval/.work``):

    python eval/fit_rerank.py [--write-results]

Results: ``eval/results/fit_rerank.md`` and ``.json``; about 2 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as ev
from tune_search import LANG_WEIGHT, score, tuning_half

CS = (0.01, 0.1, 1.0, 10.0)                # L2 strengths tried (scikit-learn's C)
KEEP_TOPS = (0, 10, 20, 50, 100)   # first candidates kept as fused
# A setting is shipped only if a default first page (20 posts, and the one after it that says
# whether a next page exists) lies inside the kept head: such a page is the fusion's, and the
# engine skips the re-ranking for it. Why: re-ranking a first page costs ~2-5 ms (bench/search.py
# at 1.1M posts, its third pass: the candidates it lifts are read cold, their near-duplicate
# roots and posts), against the hybrid p50 target of 15 ms, and it moves the page's posts 11-20
# (keep_top 10 was best by 0.0018 on the tuning half's objective, and measured so, before this
# rule; see results/fit_rerank.md).
FIRST_PAGE = 21
FOLD_SEED = 0                      # the 2-fold split of the tuning half's events
MODEL = "e5-small-int8"


def fit(rows: list[tuple[np.ndarray, np.ndarray]], c: float) -> tuple[np.ndarray, float]:
    """``(weights, intercept)`` of a logistic regression on the stacked ``(features, labels)``
    rows, fitted on standardized features (well conditioned: the solver converges to the same
    weights run after run) and returned on the raw features the engine computes."""
    from sklearn.linear_model import LogisticRegression
    X = np.vstack([x for x, _ in rows])                                           # (N, d)
    y = np.concatenate([lab for _, lab in rows])                                  # (N,)
    mean, sd = X.mean(axis=0), X.std(axis=0)
    sd[sd == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=5000, tol=1e-8).fit((X - mean) / sd, y)
    w = lr.coef_[0] / sd                                                          # (d,)
    return w, float(lr.intercept_[0] - (w * mean).sum())


def one_se(kept: list[dict], top: dict) -> dict:
    """The setting to ship among ``kept`` (those under the nDCG@10 guard), ``top`` the one of
    the best objective: the one-standard-error rule (Breiman et al. 1984). Every setting whose
    objective is within one standard error of ``top``'s (the paired per-query differences,
    queries taken as independent) measures as well as it on these queries; of those, the
    largest ``keep_top`` (a first page inside the kept head skips the re-ranking, and its
    posts stay as the fusion ranked them), then the best objective."""
    near = []
    for r in kept:
        d = np.asarray(top["_share"]) - np.asarray(r["_share"])                    # (queries,)
        se = float(np.std(d, ddof=1) * np.sqrt(len(d))) if len(d) > 1 else 0.0
        r["se_from_best"] = round(se, 4)
        if top["objective"] - r["objective"] <= se:
            near.append(r)
    return max(near, key=lambda r: (r["setting"]["keep_top"], r["objective"]))


def model_of(weights: tuple[np.ndarray, float], keep_top: int, fitted: dict | None = None):
    from townsquare.search.rerank import RerankModel
    return RerankModel(MODEL, weights[0], weights[1], keep_top, fitted or {})


def folds_of(events: list[str], seed: int) -> list[list[str]]:
    events = sorted(events)
    random.Random(seed).shuffle(events)
    return [sorted(events[0::2]), sorted(events[1::2])]


def render(res: dict) -> str:
    lines = ["# Learned re-ranking: fit on the tuning half", "",
             f"Command: `{res['command']}` (see its docstring).", "",
             f"{res['date']}: {res['posts']:,} posts; {len(res['tuning_events'])} tuning events "
             f"(split seed {res['seed']}), {res['queries']} queries, "
             f"{res['candidates']:,} fused candidates ({res['relevant']:,} relevant); 2-fold "
             f"cross-validation by event (fold seed {FOLD_SEED}). The test half is not read.", "",
             "Cross-validated on the tuning half (each fold scored by the weights fitted on the "
             "other), one page of 1,000 per query:", "",
             "| setting | MAP@1000 en | fr | es | nDCG@10 en | fr | es | objective | nDCG@10 mean |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in [res["fused"]] + res["grid"]:
        name = r["setting"] if isinstance(r["setting"], str) else (
            f"C {r['setting']['C']}, keep_top {r['setting']['keep_top']}")
        lines.append(f"| {name} | {r['map1000_en']:.3f} | {r['map1000_fr']:.3f} | "
                     f"{r['map1000_es']:.3f} | {r['ndcg10_en']:.3f} | {r['ndcg10_fr']:.3f} | "
                     f"{r['ndcg10_es']:.3f} | {r['objective']:.4f} | {r['ndcg10_mean']:.4f} |")
    b = res["best"]
    t = res.get("top") or b
    lines += ["", f"Among the settings whose mean nDCG@10 is at least the fusion's "
                  f"({res['fused']['ndcg10_mean']:.4f}) and whose kept head holds a default "
                  f"first page ({FIRST_PAGE} posts, `FIRST_PAGE`), the best objective is C "
                  f"{t['setting']['C']}, keep_top {t['setting']['keep_top']} "
                  f"({t['objective']:.4f}); chosen by the one-standard-error rule (the largest "
                  f"keep_top within one standard error of it, {b.get('se_from_best')}: a first "
                  f"page inside the kept head skips the re-ranking): C {b['setting']['C']}, "
                  f"keep_top {b['setting']['keep_top']}, objective "
                  f"{res['fused']['objective']:.4f} -> {b['objective']:.4f}. Refitted on the "
                  "whole tuning half and written to `src/townsquare/search/rerank_model.json`; "
                  "weights:", "",
              "| feature | weight |", "|---|---:|"]
    lines += [f"| {f} | {w:+.4f} |" for f, w in zip(res["features"], res["model"]["coef"])]
    lines += [f"| (intercept) | {res['model']['intercept']:+.4f} |", "",
              "The test half: `eval/results/search.md` (hybrid, beside `hybrid ... (fused only)`)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ev.WORK)
    ap.add_argument("--seed", type=int, default=ev.SPLIT_SEED)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    from townsquare.search import rerank
    from townsquare.search.config import SIMILARITY_FLOORS, SearchConfig
    from townsquare.search.engine import SearchEngine

    t = tuning_half(ap, args.work, args.seed)
    store, rel, n_posts, tune, qs, ours, sem = (t["store"], t["rel"], t["posts"], t["tune"],
                                                t["queries"], t["ours"], t["sem"])
    if store.embed_model() != MODEL:
        ap.error(f"the store's vectors are {store.embed_model()}, this fits {MODEL}")
    eng = SearchEngine(store, embedder=sem.emb, vectors=sem.vectors, lexical_index=ours.lx,
                       config=SearchConfig(min_similarity=SIMILARITY_FLOORS[MODEL],
                                           rerank=False))
    t0 = time.perf_counter()
    rows: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in tune}
    for key, _qset, _lang, text in qs:
        got = eng.rerank_features(ev.query_text(text))
        if got is not None:
            ids, X = got
            rows[key].append((X, np.fromiter((pid in rel[key] for pid in ids), float, len(ids))))
    n_cand = sum(len(x) for r in rows.values() for x, _ in r)
    n_rel = int(sum(lab.sum() for r in rows.values() for _, lab in r))
    ev.log(f"features of {len(qs)} queries: {n_cand:,} candidates, {n_rel:,} relevant "
           f"({time.perf_counter() - t0:.0f} s)")

    def run(model):
        eng.reranker = model
        return lambda text: [h.id for h in eng.run(text, limit=ev.DEPTH).results]

    folds = folds_of(tune, FOLD_SEED)
    fold_qs = [[x for x in qs if x[0] in f] for f in folds]

    def cross_validated(make) -> dict:
        """``score`` over both folds, fold i with the model ``make(i, the other fold's rows)``
        (None: the fusion alone), the per-language means weighted by queries; ``_share``: each
        query's share of the objective (its AP@1000 times its language's weight over its
        language's queries), for ``one_se``."""
        parts, aps = [], []
        for i, f in enumerate(folds):
            train = [r for k in folds[1 - i] for r in rows[k]]
            parts.append(score(run(make(i, train)), fold_qs[i], rel, aps))
        n = [len(x) for x in fold_qs]
        out = {k: round((parts[0][k] * n[0] + parts[1][k] * n[1]) / sum(n), 4)
               for k in parts[0]}
        count = {lang: sum(1 for g, _ in aps if g == lang) for lang in ev.LANGS}
        out["_share"] = [LANG_WEIGHT[g] / count[g] * a for g, a in aps]
        return out

    fused = {"setting": "fused only (no re-ranking)", **cross_validated(lambda i, train: None)}
    ev.log(f"  fused only: {fused} ({time.perf_counter() - t0:.0f} s)")
    grid = []
    for c in CS:
        fitted = {}                               # one fit per fold and C, every keep_top
        for keep in KEEP_TOPS:
            def make(i, train, c=c, keep=keep):
                if i not in fitted:
                    fitted[i] = fit(train, c)
                return model_of(fitted[i], keep)
            grid.append({"setting": {"C": c, "keep_top": keep}, **cross_validated(make)})
            ev.log(f"  C {c}, keep_top {keep}: objective {grid[-1]['objective']}, nDCG@10 mean "
                   f"{grid[-1]['ndcg10_mean']} ({time.perf_counter() - t0:.0f} s)")
    kept = [r for r in grid if r["ndcg10_mean"] >= fused["ndcg10_mean"]
            and r["setting"]["keep_top"] >= FIRST_PAGE]
    top = max(kept, key=lambda r: r["objective"]) if kept else None
    best = one_se(kept, top) if top is not None else None
    if best is None or best["objective"] <= fused["objective"]:
        ev.log("no setting beats the fusion under the guard: nothing written")
        best = None
    for r in [fused] + grid:
        r.pop("_share", None)
    all_rows = [r for k in tune for r in rows[k]]
    res = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": "python eval/fit_rerank.py --write-results", "posts": n_posts,
           "seed": args.seed, "fold_seed": FOLD_SEED, "tuning_events": tune, "queries": len(qs),
           "candidates": n_cand, "relevant": n_rel, "embed_model": MODEL,
           "similarity_floor": SIMILARITY_FLOORS[MODEL], "features": list(rerank.FEATURES),
           "fused": fused, "grid": grid, "top": top, "best": best}
    if best is not None:
        s = best["setting"]
        model = model_of(fit(all_rows, s["C"]), s["keep_top"], {
            "by": "eval/fit_rerank.py", "date": res["date"], "split_seed": args.seed,
            "tuning_events": len(tune), "queries": len(qs), "candidates": n_cand,
            "C": s["C"], "cross_validated": {k: best[k] for k in best if k != "setting"},
            "fused_only": {k: fused[k] for k in fused if k != "setting"}})
        res["model"] = model.to_dict()
    print(json.dumps({k: res[k] for k in ("fused", "best")}, indent=1))
    if args.write_results and best is not None:
        rerank.save([model])
        ev.RESULTS.mkdir(parents=True, exist_ok=True)
        (ev.RESULTS / "fit_rerank.json").write_text(json.dumps(res, indent=1) + "\n",
                                                    encoding="utf-8")
        (ev.RESULTS / "fit_rerank.md").write_text(render(res), encoding="utf-8")
        ev.log(f"wrote {rerank.MODEL_FILE.name} and {ev.RESULTS / 'fit_rerank.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

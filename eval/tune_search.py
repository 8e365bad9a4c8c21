"""Choose the hybrid ranking's fusion on the tuning half of the events only.

The defaults of ``townsquare.search.rank.RankWeights`` and the feedback settings of
``townsquare.search.engine.SearchConfig`` are picked by this script, on the *tuning* half of
``eval/search.py``'s events (the same seeded split, seed 11): the test half is never scored
here, so ``eval/search.py``'s test-half figures are not fitted to the queries they measure.

What is scored, for every query of the tuning half (name and keyword queries, in English,
French and Spanish), as townsquare's hybrid ``top`` search returns one page of 1,000:
MAP@1000 and nDCG@10 per language. The objective is (2 x English + French + Spanish) / 4 of
MAP@1000, under a guard: the mean nDCG@10 over the three languages must not fall below that of
the previous defaults (the first option).

Two parts:

1. ``OPTIONS``: one change at a time from the previous defaults, so each one's gain shows:
   RRF weights per list, stronger embedding feedback, the expansion list (RM3-like: BM25 of
   the words the fused top posts share), its weight when no post holds every query word (a
   query in another language), recency off.
2. ``GRID`` around the chosen point: the best setting under the guard becomes the defaults.
3. ``DEPTHS``: the lists' depths around the engine's 1,000, at the engine's defaults, for the
   record: a depth trades recall for latency (bench/search.py), which this objective does not
   see, so they are reported and not chosen from.
4. ``--sweep NAME`` (``SWEEPS``): one setting alone at the engine's defaults, for a setting
   added after the grid: the HNSW beams (``feedback_ef``, ``semantic_ef``), RRF's ``rrf_k``.

Run (after ``python eval/search.py`` has built and embedded the store under ``eval/.work``):

    python eval/tune_search.py [--write-results]
    python eval/tune_search.py --sweep rrf_k [--write-results]

Results: ``eval/results/tune_search.md`` and ``.json``. It runs every setting through the engine
(about 6 s a setting on 2 cores).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as ev

# The previous defaults: RRF weights 1 each, feedback from 10 posts with the query at 0.5, no
# expansion list. (The semantic depth is the engine's own, 1,000, in every setting.)
BEFORE = {"rrf_k": 60, "lexical": 1.0, "any_terms": 1.0, "semantic": 1.0, "feedback": 1.0,
          "expansion": 0.0, "cross_language": 1.0, "feedback_docs": 10,
          "feedback_query_weight": 0.5, "expansion_docs": 0}
OPTIONS: list[tuple[str, dict]] = [
    ("previous defaults", {}),
    ("RRF weights: lexical 2, any-word 0.25, semantic 0.5, feedback 3",
     {"lexical": 2.0, "any_terms": 0.25, "semantic": 0.5, "feedback": 3.0}),
    ("+ feedback from 20 posts, query weight 0.3",
     {"lexical": 2.0, "any_terms": 0.25, "semantic": 0.5, "feedback": 3.0, "feedback_docs": 20,
      "feedback_query_weight": 0.3}),
    ("+ feedback query weight 0.1",
     {"lexical": 2.0, "any_terms": 0.25, "semantic": 0.5, "feedback": 3.0, "feedback_docs": 20,
      "feedback_query_weight": 0.1}),
    ("+ expansion list (50 posts, 10 words, weight 1)",
     {"lexical": 2.0, "any_terms": 0.25, "semantic": 0.5, "feedback": 3.0, "feedback_docs": 20,
      "feedback_query_weight": 0.3, "expansion": 1.0, "expansion_docs": 50}),
    ("+ expansion weight x2 when no post holds every query word",
     {"lexical": 2.0, "any_terms": 0.25, "semantic": 0.5, "feedback": 3.0, "feedback_docs": 20,
      "feedback_query_weight": 0.3, "expansion": 1.0, "expansion_docs": 50,
      "cross_language": 2.0}),
    ("the same, recency and engagement off",
     {"lexical": 2.0, "any_terms": 0.25, "semantic": 0.5, "feedback": 3.0, "feedback_docs": 20,
      "feedback_query_weight": 0.3, "expansion": 1.0, "expansion_docs": 50,
      "cross_language": 2.0, "recency_weight": 0.0, "engagement_weight": 0.0}),
]
# Around the expansion setting above (the other settings as there).
GRID = {"feedback_query_weight": (0.1, 0.3), "semantic": (0.5, 1.0), "feedback": (2.0, 3.0),
        "expansion": (0.5, 1.0, 2.0), "cross_language": (2.0, 4.0, 8.0)}
GRID_BASE = dict(OPTIONS[5][1])
WEIGHT_NAMES = ("rrf_k", "lexical", "any_terms", "semantic", "feedback", "expansion",
                "cross_language", "recency_weight", "engagement_weight")
CONFIG_NAMES = ("feedback_docs", "feedback_query_weight", "expansion_docs")
DEPTH_NAMES = ("lexical_depth", "semantic_depth", "feedback_depth", "expansion_depth")
DEPTHS = [{name: d} for name in DEPTH_NAMES for d in (500, 2000)]
# One setting swept alone, the engine's defaults otherwise (``--sweep NAME``): its values and
# the title of its results (``results/tune_NAME.md``). ``feedback_ef`` and ``semantic_ef``: the
# HNSW beams of the feedback walk and of the query's own (``SearchConfig``; None: as wide as the
# list's depth). ``rrf_k``: RRF's damping constant (``RankWeights.rrf_k``): a larger k
# flattens each list's contributions, so that at depth a post found by several lists outranks
# one found high by one list only.
SWEEPS: dict[str, tuple[tuple, str, str]] = {
    "feedback_ef": ((None, 500, 250, 125, 64), "The feedback walk's beam",
                    "Adopted: `SearchConfig.feedback_ef` = 250."),
    "semantic_ef": ((None, 500, 250, 125, 64), "The query's own walk's beam",
                    "Adopted: `SearchConfig.semantic_ef` = 125 (the best objective; mean "
                    "nDCG@10 as at None)."),
    "rrf_k": ((20, 60, 150, 250, 400, 600, 1000), "RRF's damping constant",
              "Not adopted: `RankWeights.rrf_k` stays 60. A larger k widens what recency and "
              "engagement reorder within one list (~15% of k + rank: the first ~10 ranks at 60, "
              "~60 at 400); this archive's MAP cannot see it, a live stream's top page would. On "
              "the test half 400 gave English MAP@1000 0.787 -> 0.795 and Spanish / English "
              "0.852 -> 0.848 (read once, after the choice)."),
}


# The objective's weight of each language's MAP@1000: (2 x English + French + Spanish) / 4
LANG_WEIGHT = {"en": 0.5, "fr": 0.25, "es": 0.25}


def queries_of(events: list[str]) -> list[tuple[str, str, str, str]]:
    """(event, set, lang, text) for every query of these events."""
    out = []
    for key in events:
        for qset, texts in (("names", ev.EVENTS[key][1:]), ("keywords", ev.KEYWORDS[key])):
            for lang, text in zip(ev.LANGS, texts):
                out.append((key, qset, lang, text))
    return out


def tuning_half(ap: argparse.ArgumentParser, work: Path, seed: int) -> dict:
    """What a tuning script works on: ``eval/search.py``'s store under ``work`` (an error
    through ``ap`` when it is missing or not embedded), its relevance labels (``rel``,
    ``posts``), the tuning half of the events split by ``seed`` (``tune``) and their
    ``queries`` (``queries_of``), and the lexical and semantic systems over it (``ours``,
    ``sem``)."""
    from townsquare.store import open_store
    home = work / "home"
    store = open_store(home)
    if not store.count() or store.embedding_pending():
        ap.error(f"run eval/search.py first: the store at {home} is missing or not embedded")
    rel, n_posts = ev.relevance(store)
    tune, _test = ev.split_events([k for k in ev.EVENTS if rel.get(k)], seed)
    ours = ev.Ours(store, home)
    return {"store": store, "rel": rel, "posts": n_posts, "tune": tune,
            "queries": queries_of(tune), "ours": ours, "sem": ev.Semantic(store, home, ours.lx)}


def score(run, qs, rel, per_query: list | None = None) -> dict[str, float]:
    """Per language MAP@1000 and nDCG@10, the objective and the mean nDCG@10; ``per_query``
    gets each query's ``(language, AP@1000)``, in ``qs``' order."""
    ap: dict[str, list[float]] = {lang: [] for lang in ev.LANGS}
    nd: dict[str, list[float]] = {lang: [] for lang in ev.LANGS}
    for key, _qset, lang, text in qs:
        ranked = run(ev.query_text(text))
        ap[lang].append(ev.ap_at(ranked, rel[key], 1000))
        nd[lang].append(ev.ndcg_at(ranked, rel[key]))
        if per_query is not None:
            per_query.append((lang, ap[lang][-1]))
    out = {}
    for lang in ev.LANGS:
        out[f"map1000_{lang}"] = round(sum(ap[lang]) / len(ap[lang]), 4)
        out[f"ndcg10_{lang}"] = round(sum(nd[lang]) / len(nd[lang]), 4)
    out["objective"] = round(sum(w * out[f"map1000_{lang}"] for lang, w in LANG_WEIGHT.items()), 4)
    out["ndcg10_mean"] = round(sum(out[f"ndcg10_{lang}"] for lang in ev.LANGS) / 3, 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ev.WORK)
    ap.add_argument("--seed", type=int, default=ev.SPLIT_SEED)
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--sweep", choices=sorted(SWEEPS),
                    help="only the sweep of one setting (SWEEPS), written to "
                         "results/tune_NAME.json with --write-results")
    ap.add_argument("--feedback-ef", action="store_true", help="the same as --sweep feedback_ef")
    args = ap.parse_args(argv)
    from townsquare.search.engine import SearchConfig, SearchEngine
    from townsquare.search.rank import RankWeights

    t = tuning_half(ap, args.work, args.seed)
    store, rel, n_posts, tune, qs, ours, sem = (t["store"], t["rel"], t["posts"], t["tune"],
                                                t["queries"], t["ours"], t["sem"])
    ref = ev.Bm25Reference(store)

    def run_of(setting: dict | None, **depths):
        """The engine with ``setting`` over ``BEFORE`` (None: the engine's own defaults, with
        ``depths``: ``SearchConfig`` fields, or ``RankWeights`` ones over its defaults)."""
        if setting is None:
            w = {k: depths.pop(k) for k in list(depths) if k in WEIGHT_NAMES}
            cfg = SearchConfig(**depths, **({"weights": replace(RankWeights(), **w)} if w else {}))
        else:
            p = {**BEFORE, **setting}
            w = RankWeights(**{k: p[k] for k in WEIGHT_NAMES if k in p})
            cfg = SearchConfig(weights=w, **{k: p[k] for k in CONFIG_NAMES})
        eng = SearchEngine(store, embedder=sem.emb, vectors=sem.vectors, lexical_index=ours.lx,
                           config=cfg)
        return lambda text: [h.id for h in eng.run(text, limit=ev.DEPTH).results]

    t0 = time.perf_counter()
    bm25 = score(ref.search, qs, rel)
    if args.feedback_ef or args.sweep:
        return sweep(run_of, args.sweep or "feedback_ef", qs, rel, bm25, {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "posts": n_posts,
            "seed": args.seed, "tuning_events": tune, "queries": len(qs),
            "embed_model": store.embed_model()}, args.write_results)
    options = []
    for name, setting in OPTIONS:
        options.append({"option": name, "setting": setting, **score(run_of(setting), qs, rel)})
        ev.log(f"  {name}: {options[-1]} ({time.perf_counter() - t0:.0f} s)")
    guard = options[0]["ndcg10_mean"]
    grid = []
    for values in itertools.product(*GRID.values()):
        setting = {**GRID_BASE, **dict(zip(GRID, values))}
        grid.append({"setting": setting, **score(run_of(setting), qs, rel)})
        ev.log(f"  grid {dict(zip(GRID, values))}: objective {grid[-1]['objective']}, nDCG@10 "
               f"mean {grid[-1]['ndcg10_mean']} ({time.perf_counter() - t0:.0f} s)")
    kept = [r for r in options + grid if r["ndcg10_mean"] >= guard]
    best = max(kept, key=lambda r: r["objective"])
    depths = [{"setting": {}, **score(run_of(None), qs, rel)}]      # the engine's defaults
    for depth in DEPTHS:
        depths.append({"setting": depth, **score(run_of(None, **depth), qs, rel)})
        ev.log(f"  depth {depth}: objective {depths[-1]['objective']} "
               f"({time.perf_counter() - t0:.0f} s)")
    meta = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "posts": n_posts,
            "seed": args.seed, "tuning_events": tune, "queries": len(qs),
            "embed_model": store.embed_model(), "bm25 (ref)": bm25, "guard_ndcg10_mean": guard,
            "best": best}
    text = render(options, grid, meta, depths)
    print(text)
    if args.write_results:
        ev.RESULTS.mkdir(parents=True, exist_ok=True)
        (ev.RESULTS / "tune_search.json").write_text(
            json.dumps({**meta, "options": options, "grid": grid, "depths": depths}, indent=2)
            + "\n")
        (ev.RESULTS / "tune_search.md").write_text(
            "# Hybrid ranking: fusion chosen on the tuning half\n\nCommand: `python "
            "eval/tune_search.py --write-results` (see its docstring).\n\n" + text + "\n")
    return 0


def sweep(run_of, name: str, qs, rel, bm25: dict, meta: dict, write: bool) -> int:
    """Each value of ``SWEEPS[name]`` on the tuning half (and the seconds its queries took
    here; bench/search.py measures latency at 1.1M posts). Best: the highest objective, ties to
    the value listed first."""
    values, title, decision = SWEEPS[name]
    rows = []
    for v in values:
        t = time.perf_counter()
        rows.append({name: v, **score(run_of(None, **{name: v}), qs, rel),
                     "seconds": round(time.perf_counter() - t, 1)})
        ev.log(f"  {name} {v}: objective {rows[-1]['objective']}, nDCG@10 mean "
               f"{rows[-1]['ndcg10_mean']}")
    best = max(rows, key=lambda r: r["objective"])
    lines = [f"{meta['date']}: {meta['posts']:,} posts, the tuning half only "
             f"({len(meta['tuning_events'])} events, seed {meta['seed']}, {meta['queries']} "
             f"queries), the engine's defaults but `{name}`. Objective: (2 x English + French + "
             f"Spanish) / 4 of MAP@1000. BM25: {bm25['objective']:.4f}.", "",
             f"| {name} | objective | MAP@1000 en | fr | es | nDCG@10 mean | seconds |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        label = "None (= depth)" if r[name] is None else r[name]
        lines.append(f"| {label} | {r['objective']:.4f} | "
                     f"{r['map1000_en']:.4f} | {r['map1000_fr']:.4f} | {r['map1000_es']:.4f} | "
                     f"{r['ndcg10_mean']:.4f} | {r['seconds']} |")
    lines += ["", f"Best: {name} {best[name]} (objective {best['objective']:.4f}). {decision}"]
    text = "\n".join(lines)
    print(text)
    if write:
        command = f"python eval/tune_search.py --sweep {name} --write-results"
        ev.RESULTS.mkdir(parents=True, exist_ok=True)
        (ev.RESULTS / f"tune_{name}.json").write_text(json.dumps(
            {**meta, "command": command, "bm25 (ref)": bm25, "rows": rows, "best": best,
             "decision": decision},
            indent=2) + "\n")
        (ev.RESULTS / f"tune_{name}.md").write_text(
            f"# {title}, measured on the tuning half\n\nCommand: `{command}`.\n\n" + text + "\n")
    return 0


def render(options: list[dict], grid: list[dict], meta: dict, depths: list[dict]) -> str:
    b = meta["bm25 (ref)"]
    lines = [f"{meta['date']}: {meta['posts']:,} posts, embeddings {meta['embed_model']}; the "
             f"tuning half only ({len(meta['tuning_events'])} events, seed {meta['seed']}, "
             f"{meta['queries']} queries). Objective: (2 x English + French + Spanish) / 4 of "
             f"MAP@1000; guard: mean nDCG@10 >= {meta['guard_ndcg10_mean']} (the previous "
             f"defaults').", "",
             "| setting | MAP@1000 en | vs BM25 | fr | fr/en | es | es/en | objective | "
             "nDCG@10 en | fr | es |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| bm25 (ref) | {b['map1000_en']:.3f} | x1.000 | {b['map1000_fr']:.3f} | "
             f"{b['map1000_fr'] / b['map1000_en']:.2f} | {b['map1000_es']:.3f} | "
             f"{b['map1000_es'] / b['map1000_en']:.2f} | {b['objective']:.3f} | "
             f"{b['ndcg10_en']:.3f} | {b['ndcg10_fr']:.3f} | {b['ndcg10_es']:.3f} |"]
    rows = [(r["option"], r) for r in options]
    rows += [("grid " + ", ".join(f"{k} {r['setting'][k]}" for k in GRID), r) for r in grid]
    for name, r in rows:
        en = r["map1000_en"]
        lines.append(f"| {name} | {en:.3f} | x{en / b['map1000_en']:.3f} | "
                     f"{r['map1000_fr']:.3f} | {r['map1000_fr'] / en:.2f} | "
                     f"{r['map1000_es']:.3f} | {r['map1000_es'] / en:.2f} | "
                     f"{r['objective']:.3f} | {r['ndcg10_en']:.3f} | {r['ndcg10_fr']:.3f} | "
                     f"{r['ndcg10_es']:.3f} |")
    best = meta["best"]
    lines += ["", f"Chosen (best objective under the guard): `{ {**BEFORE, **best['setting']} }`: "
              f"objective {best['objective']:.3f}, MAP@1000 English "
              f"x{best['map1000_en'] / b['map1000_en']:.3f} BM25's, mean nDCG@10 "
              f"{best['ndcg10_mean']:.3f}."]
    lines += ["", "Depths of the lists, at the engine's defaults (`SearchConfig()`): reported, not "
              "chosen from, since a deeper list costs latency (`bench/search.py`), which the "
              "objective does not see.", "",
              "| depth | MAP@1000 en | fr | es | objective | mean nDCG@10 |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in depths:
        name = ", ".join(f"{k} {v:,}" for k, v in r["setting"].items()) or "the defaults (1,000)"
        lines.append(f"| {name} | {r['map1000_en']:.3f} | {r['map1000_fr']:.3f} | "
                     f"{r['map1000_es']:.3f} | {r['objective']:.3f} | {r['ndcg10_mean']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

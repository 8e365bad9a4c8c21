"""Choose the hybrid ranking's weights on one half of the events, report them on the other half.

The weights in ``townsquare.search.rank.RankWeights`` and the feedback settings of
``townsquare.search.engine.SearchConfig`` were picked by this script, not by looking at the full
evaluation: the 38 events of ``eval/search.py`` are split in two halves by a seeded shuffle; every
setting of a small grid is scored (mean English nDCG@10 of the hybrid ranking, name and keyword
queries, plus the French and Spanish ones) on the *tuning* half only; the best setting is then
reported on the *held-out* half beside the untuned default and the reference BM25, so the
reported gain is not fitted to the queries it is measured on.

Run (after ``python eval/search.py`` has built and embedded the store under ``eval/.work``):

    python eval/tune_search.py [--write-results]

Results: ``eval/results/tune_search.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as ev

GRID = {
    "rrf_k": (20, 60),
    "lexical": (1.0,),
    "any_terms": (0.5, 1.0),
    "semantic": (0.5, 1.0),
    "feedback": (0.0, 1.0, 2.0),
    "feedback_docs": (5, 10, 20),
    "feedback_query_weight": (0.3, 0.5),
}


def split_events(keys: list[str], seed: int) -> tuple[list[str], list[str]]:
    keys = sorted(keys)
    random.Random(seed).shuffle(keys)
    half = len(keys) // 2
    return sorted(keys[:half]), sorted(keys[half:])


def queries_of(events: list[str]) -> list[tuple[str, str, str, str]]:
    """(event, set, lang, text) for every query of these events."""
    out = []
    for key in events:
        names = ev.EVENTS[key][1:]
        for qset, texts in (("names", names), ("keywords", ev.KEYWORDS[key])):
            for lang, text in zip(ev.LANGS, texts):
                out.append((key, qset, lang, text))
    return out


def score(run, qs, rel) -> dict[str, float]:
    by_lang: dict[str, list[float]] = {lang: [] for lang in ev.LANGS}
    for key, _qset, lang, text in qs:
        by_lang[lang].append(ev.ndcg_at(run(ev.query_text(text)), rel[key]))
    out = {lang: sum(v) / len(v) for lang, v in by_lang.items()}
    out["objective"] = (2 * out["en"] + out["fr"] + out["es"]) / 4
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ev.WORK)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    from townsquare.search.engine import SearchConfig, SearchEngine
    from townsquare.search.rank import RankWeights
    from townsquare.store import open_store

    home = args.work / "home"
    store = open_store(home)
    if not store.count() or store.embedding_pending():
        ap.error(f"run eval/search.py first: the store at {home} is missing or not embedded")
    rel, n_posts = ev.relevance(store)
    events = [k for k in ev.EVENTS if rel.get(k)]
    tune, held = split_events(events, args.seed)
    ours = ev.Ours(store, home)
    sem = ev.Semantic(store, home, ours.lx)
    ref = ev.Bm25Reference(store)

    def engine_run(cfg):
        eng = SearchEngine(store, embedder=sem.emb, vectors=sem.vectors,
                           lexical_index=ours.lx, config=cfg)
        return lambda text: [h.id for h in eng.run(text, limit=ev.DEPTH).results]

    default = SearchConfig(lexical_depth=ev.DEPTH)   # the engine's own semantic depth and floor
    no_feedback = replace(default, feedback_docs=0)
    names = list(GRID)
    rows = []
    t0 = time.perf_counter()
    qs_tune = queries_of(tune)
    for values in itertools.product(*GRID.values()):
        p = dict(zip(names, values))
        if p["feedback"] == 0 and (p["feedback_docs"], p["feedback_query_weight"]) != (10, 0.5):
            continue                                  # feedback off: its settings do not matter
        w = RankWeights(rrf_k=p["rrf_k"], lexical=p["lexical"], any_terms=p["any_terms"],
                        semantic=p["semantic"], feedback=p["feedback"])
        cfg = replace(default, weights=w, feedback_docs=p["feedback_docs"] if p["feedback"] else 0,
                      feedback_query_weight=p["feedback_query_weight"])
        s = score(engine_run(cfg), qs_tune, rel)
        rows.append({**p, **{k: round(v, 4) for k, v in s.items()}})
        ev.log(f"  [{len(rows)}] {p} -> {s['objective']:.4f} ({time.perf_counter() - t0:.0f} s)")
    best = max(rows, key=lambda r: (r["objective"], -r["rrf_k"]))
    ev.log(f"best on the tuning half: {best}")
    bw = RankWeights(rrf_k=best["rrf_k"], lexical=best["lexical"], any_terms=best["any_terms"],
                     semantic=best["semantic"], feedback=best["feedback"])
    best_cfg = replace(default, weights=bw,
                       feedback_docs=best["feedback_docs"] if best["feedback"] else 0,
                       feedback_query_weight=best["feedback_query_weight"])
    report = {}
    for half, evs in (("tuning", tune), ("held-out", held)):
        qs = queries_of(evs)
        report[half] = {
            "events": evs,
            "bm25 (ref)": score(ref.search, qs, rel),
            "hybrid, no feedback (RankWeights())": score(engine_run(no_feedback), qs, rel),
            "hybrid, shipped defaults": score(engine_run(default), qs, rel),
            "hybrid, best of grid": score(engine_run(best_cfg), qs, rel),
        }
    meta = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "posts": n_posts, "seed": args.seed, "grid": GRID, "best": best,
            "embed_model": store.embed_model()}
    text = render(report, meta, len(rows))
    print(text)
    if args.write_results:
        ev.RESULTS.mkdir(parents=True, exist_ok=True)
        (ev.RESULTS / "tune_search.json").write_text(
            json.dumps({**meta, "report": report, "grid_rows": rows}, indent=2) + "\n")
        (ev.RESULTS / "tune_search.md").write_text(
            "# Hybrid ranking: weights tuned on half the events\n\nCommand: `python "
            "eval/tune_search.py --write-results` (see its docstring).\n\n" + text + "\n")
    return 0


def render(report: dict, meta: dict, n_settings: int) -> str:
    lines = [f"{meta['date']}: {meta['posts']:,} posts, embeddings {meta['embed_model']}; "
             f"{n_settings} settings scored on the tuning half (objective: (2 x English + French "
             f"+ Spanish) / 4 of the hybrid nDCG@10, names and keywords queries).", "",
             f"Best on the tuning half: `{ {k: meta['best'][k] for k in GRID} }`.", "",
             "| half | system | nDCG@10 en | fr | es | en vs bm25 |", "|---|---|---:|---:|---:|---:|"]
    for half, r in report.items():
        base = r["bm25 (ref)"]["en"]
        for name in ("bm25 (ref)", "hybrid, no feedback (RankWeights())", "hybrid, shipped defaults",
                     "hybrid, best of grid"):
            s = r[name]
            lines.append(f"| {half} ({len(r['events'])} events) | {name} | {s['en']:.3f} | "
                         f"{s['fr']:.3f} | {s['es']:.3f} | x{s['en'] / base:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

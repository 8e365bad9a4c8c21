"""The report of ``bench/search.py``: its results (a dict, as written to
``bench/results/search.json``) rendered as ``bench/results/search.md``, and the before/after
table of two runs (``--compare``).

    >>> ratio(3.0, 2.0), ratio(1.0, 0.0)
    (1.5, None)
"""
from __future__ import annotations

from pathlib import Path

# issue 18: per query kind, ours / tantivy (the deep reference) at most these ratios
TARGETS = {"p50_ratio": 1.5, "p99_ratio": 3.0, "hybrid_p50_ms": 15.0}
FIRST = "hybrid, first run"     # the warm-up runs of the hybrid queries (see report)
OPS_HYBRID = "operators, hybrid"   # the operator queries with the semantic stage on (no target)
ROWS = ("term", "phrase", "operators", "lexical (all 150)", "hybrid", OPS_HYBRID, FIRST, "latest")


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def report(res: dict) -> str:
    m = res["machine"]
    lines = [f"Search latency, {res['date']}: {res['posts']:,} posts, {res['vectors']:,} vectors, "
             f"{m['cpus']} CPUs, SQLite {m['sqlite']}, load {m['load_1min_before']:.2f} before and "
             f"{m['load_1min_after']:.2f} after (1-minute average)", "",
             "| queries | n | ours p50 | p95 | p99 | tantivy p50 | p99 | ours/tantivy p50 | p99 "
             "| tantivy top 200 p50 | p99 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k in ROWS:
        if k not in res["ours"]:          # a run from before the row, or without vectors
            continue
        o, r, r2 = res["ours"][k], res["tantivy"].get(k), res["tantivy_top200"].get(k)
        ra = res["ratios"].get(k, {})
        ref = (f"{r['p50_ms']} | {r['p99_ms']} | {ra['p50']} | {ra['p99']} | {r2['p50_ms']} | "
               f"{r2['p99_ms']}") if r else "- | - | - | - | - | -"
        lines.append(f"| {k} | {o['n']} | {o['p50_ms']} | {o['p95_ms']} | {o['p99_ms']} | {ref} |")
    bad = [k for k, v in res["met"].items() if not v]
    lines += ["", "References, on the text part of each lexical query (operators dropped): "
              "*tantivy* does our lexical arm's retrieval, every word top 1,000 plus, for two or "
              "more words or phrases, any word top 1,000, ids from its id column; *tantivy top "
              "200* is the earlier reference, every word top 200 with each stored document read. "
              "*latest*: our `latest` mode on the same 150 queries (no reference). *operators, "
              "hybrid*: the 50 operator queries with the semantic stage on, each run beside its "
              "lexical runs (no target: what an operator query costs in the default mode, where "
              "the lexical lists are read 1,000 deep). *hybrid, first "
              "run*: each hybrid query's first run (the warm-up), the store's pages and the "
              "index's memory that it reads not yet touched by it: what a new query costs, as "
              "every query a user types is (the other rows are medians of repeated runs).",
              "", f"Targets (issue 18): ours/tantivy p50 <= {TARGETS['p50_ratio']}x and p99 <= "
              f"{TARGETS['p99_ratio']}x per lexical kind, hybrid p50 <= {TARGETS['hybrid_p50_ms']} "
              f"ms" + (" (not measured here: no vectors, the hybrid queries ran lexical)"
                       if not res["vectors"] else "") + ": "
              + ("all met." if not bad else "NOT met: " + ", ".join(bad) + "."),
              "", "Mean time per stage (ms), from `timings_ms` (hybrid: `embed_query` and "
              "`semantic` run on a worker thread beside `lexical`, `any_terms` and `prefetch`; "
              "`semantic_wait` is what the query waited for them):", "",
              "| queries | " + " | ".join(_STAGES) + " |", "|---|" + "---:|" * len(_STAGES)]
    for k, st in res["stages_mean_ms"].items():
        lines.append(f"| {k} | " + " | ".join(str(st.get(n, "-")) for n in _STAGES) + " |")
    if res.get("second_pass"):
        sp = res["second_pass"]
        lines += ["", "How deep each lexical list was read for a first page (depth: queries; "
                  "`SearchConfig.lexical_first_depth`; 1,000: read whole): " + "; ".join(
                      f"{k} " + ", ".join(f"{int(d):,}: {n}" for d, n in v.items())
                      for k, v in res["lexical_depths"].items()) + ".", "",
                  "Second pass, after the rows above, each lexical query's runs interleaved "
                  "again: ours; ours with every list read whole (`lexical_first_depth=0`: the "
                  "engine before early termination, the same pages); tantivy as above (deep); "
                  "tantivy reading each query's lists only as deep as ours did for its first "
                  "page (the same retrieval work: what is left of ours is the rest of the "
                  "engine, operators, ranking fields, fusion, the proof, near-duplicates, the "
                  "page's posts); tantivy on our index running the queries our lexical arm "
                  "compiles, operators in, read as deep as the deep reference (what the "
                  "operators cost tantivy itself; context, not the target's reference). p50 "
                  "in ms (ratio to tantivy deep):", "",
                  "| queries | ours | ours, lists read whole | tantivy | tantivy at our depth | "
                  "ours / tantivy at our depth | tantivy, our compiled queries |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for k in sp["top"]:
            o, w, r, t = (sp[n][k]["p50_ms"] for n in ("top", "whole", "ref", "ref_same"))
            c = sp.get("ref_compiled", {}).get(k, {}).get("p50_ms")
            lines.append(f"| {k} | {o} ({ratio(o, r)}x) | {w} ({ratio(w, r)}x) | {r} | {t} | "
                         f"{ratio(o, t)} | " + (f"{c} ({ratio(c, r)}x) |" if c else "- |"))
    cols = res.get("columns_us")
    if cols:
        sizes = list(next(iter(cols.values())))
        lines += ["", "One `fast_field_values` call on our index (us, median): a column in the "
                  "stream's order beside the same values through `lexindex.scramble` (what "
                  "search reads since SCHEMA 4), and a count column:", "",
                  "| column | " + " | ".join(f"{int(n):,} hits" for n in sizes) + " |",
                  "|---|" + "---:|" * len(sizes)]
        for field, v in cols.items():
            lines.append(f"| `{field}` | " + " | ".join(str(v[n]) for n in sizes) + " |")
    rr = res.get("rerank")
    if rr:
        lines += ["", "Third pass, the learned re-ranking (`search.rerank`): each hybrid query's "
                  "runs interleaved, the default engine against the same engine with it off "
                  f"(`SearchConfig.rerank=False`). It ran for {rr['first_pages_reranked']} of "
                  f"{rr['queries']} first pages of 20 (the others lie inside the head it keeps "
                  "as fused, so it is skipped). p50 / p99 in ms:", "",
                  "| page | re-ranked | fused only |", "|---|---:|---:|"]
        for limit in (20, 1000):
            a, b = rr[f"reranked, limit {limit}"], rr[f"fused only, limit {limit}"]
            lines.append(f"| {limit} posts | {a['p50_ms']} / {a['p99_ms']} | "
                         f"{b['p50_ms']} / {b['p99_ms']} |")
    return "\n".join(lines)


# embed_query and semantic run on a worker thread beside lexical, any_terms and prefetch
# (hybrid): semantic_wait is what the query waited for them, so the stages add up to more than
# total
_STAGES = ("parse", "lexical", "any_terms", "prefetch", "embed_query", "semantic", "semantic_wait",
           "semantic_filter", "feedback", "rank", "deeper", "prove", "hydrate", "collapse",
           "total")


def compare(before: dict, after: dict, path: Path, label: str | None = None) -> str:
    """A before/after table of two runs' results (``--compare``)."""
    lines = ["## Before and after", "", f"Before: {label or path.name}, {before['date']}, load "
             f"{before['machine'].get('load_1min_before', '?'):.2f}; after: this run.", "",
             "| queries | before p50 | p99 | ours/tantivy p50 | p99 | after p50 | p99 "
             "| ours/tantivy p50 | p99 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k in ROWS:
        cells = []
        for res in (before, after):
            o, ra = res["ours"].get(k), res.get("ratios", {}).get(k, {})
            cells.append(f"{o['p50_ms']} | {o['p99_ms']} | {ra.get('p50', '-')} | "
                         f"{ra.get('p99', '-')}" if o else "- | - | - | -")
        lines.append(f"| {k} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)

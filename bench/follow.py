"""Follow benchmark: posts/s each live source sustains into a store, and how soon a post sent is
findable there, at Twitter's average of 5,700 posts/s.

What it measures
----------------
For each source (X's filtered stream, Bluesky's Jetstream, Mastodon's streaming API, an NDJSON
feed), a local fake server (``tests/follow/fakes.py``, in a process of its own) sends made-up
posts in that platform's frames, and ``townsquare.follow.Collector`` with its default settings
(batches of 1,000 posts or 0.2 s, a queue of 10,000 frames, blocking on overflow) follows it into
a fresh ``SQLiteStore`` file, as ``townsquare follow`` would.

``throughput``  the server sends ``--posts`` posts as fast as the collector reads them. Rate =
                posts / (last batch committed - connection opened): parse, normalize, batch,
                write (posts, provenance, FTS5), end to end.
``latency``     the server sends at ``--rate`` posts/s (default 5,700) for ``--seconds``, on
                schedule (every millisecond it sends what is due). A third process polls the store
                file the way a reader does (its own connection, ``posts_since`` every 2 ms) and
                notes when each post first shows; every 100th post is also searched for by a word
                only it holds (``lexical_ids``, FTS5). Latency = time seen - time sent (both
                ``time.time()`` on this machine), per post: p50, p99, max.

The sender, the collector and the poller are three processes on a 2-core machine: the figures
include their competition for the CPU, as a collector beside a server would see. Post text is
synthetic (16 words from a made-up vocabulary, plus the probe word); nothing is read from
``../shared/data`` and nothing is written outside ``bench/.work/`` (deleted at the end).

Run
---
    python bench/follow.py --write-results

(from the repository root, in the project's virtual environment; about a minute and a half).
Options: ``--posts N`` (throughput, default 30,000), ``--rate`` and ``--seconds`` (latency,
default 5,700 for 8 s), ``--sources x,bluesky,mastodon,ndjson``, ``--write-results`` (write
``bench/results/follow.json`` and ``follow.md``).

Reading the results
-------------------
``posts/s`` over 5,700 says how much headroom a collector has over Twitter's average on this
machine. Latency is dominated by the batch window (up to 0.2 s, or the time 1,000 posts take to
arrive) plus one commit; a p99 far above that means the store fell behind the stream.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

import orjson  # noqa: E402

from townsquare.follow import (  # noqa: E402
    Collector,
    IdSpace,
    JetstreamStream,
    MastodonStream,
    NativeRef,
    NDJSONStream,
    XStream,
)
from townsquare.follow.source import Credential  # noqa: E402
from townsquare.store.sqlite import SQLiteStore  # noqa: E402

WORK = REPO / "bench" / ".work" / "follow"
RESULTS = REPO / "bench" / "results"
SOURCES = ("x", "bluesky", "mastodon", "ndjson")
TWITTER_RATE = 5_700
T0_MS = 1_700_000_000_000
HOST = "mastodon.example"


# --- frames (sender side) -------------------------------------------------------------------------
def _vocabulary(n: int = 20_000) -> list[str]:
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(n)]


def _iso(ms: int) -> str:
    d = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def build_frames(kind: str, n: int) -> tuple[list[bytes], list[int]]:
    """``n`` frames of ``kind`` and the store id of each one's post."""
    from tests.follow.fakes import snowflake, sse
    rng = random.Random(20)
    vocab = _vocabulary()
    space = IdSpace()
    frames, ids = [], []
    for i in range(n):
        text = f"probe{i:07d} " + " ".join(rng.choice(vocab) for _ in range(16))
        ms = T0_MS + i
        if kind in ("x", "ndjson"):
            pid = snowflake(ms, i)
            tweet = {"id": str(pid), "text": text, "author_id": str(1000 + i % 97),
                     "created_at": _iso(ms), "lang": "en"}
            if kind == "x":
                frames.append(orjson.dumps({"data": tweet, "includes": {"users": [
                    {"id": str(1000 + i % 97), "username": f"user{i % 97}", "name": "U"}]},
                    "matching_rules": [{"id": "1", "tag": "bench"}]}) + b"\r\n")
            else:
                frames.append(orjson.dumps(tweet) + b"\n")
        elif kind == "bluesky":
            did, rkey = f"did:plc:bench{i % 97}", f"3kbench{i:08d}"
            pid = space.post_id(NativeRef("bluesky", f"at://{did}/app.bsky.feed.post/{rkey}"))
            frames.append(orjson.dumps({
                "did": did, "time_us": ms * 1000, "kind": "commit",
                "commit": {"rev": "r", "operation": "create", "collection": "app.bsky.feed.post",
                           "rkey": rkey, "cid": "c", "record": {
                               "$type": "app.bsky.feed.post", "text": text, "langs": ["en"],
                               "createdAt": _iso(ms)}}}))
        else:
            local = str(110_000_000_000_000_000 + i)
            pid = space.post_id(NativeRef("mastodon", f"{HOST}/{local}"))
            status = {"id": local, "created_at": _iso(ms), "language": "en",
                      "content": f"<p>{text}</p>", "url": f"https://{HOST}/@u/{local}",
                      "account": {"id": str(i % 97), "acct": f"user{i % 97}"},
                      "tags": [], "mentions": [], "media_attachments": []}
            frames.append(sse("update", orjson.dumps(status).decode()))
        ids.append(pid)
    return frames, ids


# --- sender process -------------------------------------------------------------------------------
def sender(kind: str, n: int, rate: float | None, conn) -> None:
    """Serve ``n`` frames to the first client, paced at ``rate`` (None: as fast as read); send
    the URL, then the send time of every frame, over ``conn``."""
    frames, _ = build_frames(kind, n)
    sent = [0.0] * n

    async def groups():
        # Every millisecond, the frames due by then (or 256 at a time when not paced); a
        # group's send time is when the socket took it.
        i = 0
        start = time.perf_counter()
        while i < n:
            if rate is None:
                j = min(n, i + 256)
            else:
                j = min(n, max(i + 1, int((time.perf_counter() - start) * rate)))
            yield frames[i:j]
            now = time.time()
            sent[i:j] = [now] * (j - i)
            i = j
            if rate is not None:
                await asyncio.sleep(0.001)

    async def main():
        done = asyncio.Event()
        if kind == "bluesky":
            import websockets.asyncio.server

            async def handler(ws):
                async for group in groups():
                    for f in group:
                        await ws.send(f.decode())
                done.set()
                await asyncio.Event().wait()
            async with websockets.asyncio.server.serve(handler, "127.0.0.1", 0,
                                                       compression=None) as server:
                host, port = list(server.sockets)[0].getsockname()[:2]
                conn.send(f"ws://{host}:{port}/subscribe")
                await done.wait()
                conn.send(sent)
                await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            return
        from tests.follow.fakes import HttpFake, Stream

        async def chunks():
            async for group in groups():
                yield b"".join(group)
            done.set()
        path = {"x": "/2/tweets/search/stream", "mastodon": "/api/v1/streaming/public",
                "ndjson": "/feed"}[kind]
        async with HttpFake(path, [Stream(chunks(), end="hold")]) as fake:
            conn.send(fake.url + (path if kind == "ndjson" else ""))
            await done.wait()
            conn.send(sent)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)   # until "stop"

    asyncio.run(main())


# --- poller process -------------------------------------------------------------------------------
def poller(db: str, n: int, probe_every: int, conn) -> None:
    """Note when each post first shows in the store (and when its probe word finds it)."""
    store = SQLiteStore(db)
    conn.send("ready")
    seen: dict[int, float] = {}
    found: dict[int, float] = {}
    text_index: dict[int, str] = {}
    seq = 0
    deadline = time.time() + 120
    while len(seen) < n and time.time() < deadline:
        rows = store.posts_since(seq, 10_000)
        now = time.time()
        for pid, s, text in rows:
            if pid not in seen:
                seen[pid] = now
                word = text.split(" ", 1)[0]
                if int(word[5:]) % probe_every == 0:
                    text_index[pid] = word
            seq = max(seq, s)
        for pid, word in list(text_index.items()):
            if pid in store.lexical_ids(word, 5):
                found[pid] = time.time()
                del text_index[pid]
        if not rows:
            time.sleep(0.002)
    store.close()
    conn.send((seen, found))


# --- one run --------------------------------------------------------------------------------------
def make_source(kind: str, url: str):
    if kind == "x":
        return XStream(Credential.from_env("T", {"T": "bench"}), base_url=url)
    if kind == "bluesky":
        return JetstreamStream(url)
    if kind == "mastodon":
        return MastodonStream(f"https://{HOST}", streaming_url=url)
    return NDJSONStream.from_url(url)


def run_one(kind: str, n: int, rate: float | None, probe_every: int = 100) -> dict:
    ctx = mp.get_context("spawn")
    db = WORK / f"{kind}-{'latency' if rate else 'throughput'}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    SQLiteStore(db).close()
    s_parent, s_child = ctx.Pipe()
    snd = ctx.Process(target=sender, args=(kind, n, rate, s_child), daemon=True)
    snd.start()
    url = s_parent.recv()
    pol = p_parent = None
    if rate:
        p_parent, p_child = ctx.Pipe()
        pol = ctx.Process(target=poller, args=(str(db), n, probe_every, p_child), daemon=True)
        pol.start()
        p_parent.recv()             # polling before the first frame is sent
    store = SQLiteStore(db)
    committed = 0
    last_commit = 0.0

    async def follow():
        stop = asyncio.Event()

        def on_commit(c):
            nonlocal committed, last_commit
            committed += len(c.ids)
            last_commit = c.at_s
            if committed >= n:
                stop.set()
        c = Collector(make_source(kind, url), store, on_commit=on_commit)
        task = asyncio.create_task(c.run(stop))
        try:
            await asyncio.wait_for(asyncio.shield(stop.wait()), timeout=120)
        except TimeoutError:
            stop.set()
        await task
        return c

    t_start = time.time()
    c = asyncio.run(follow())
    connected = c.stats.connected_since_s or t_start
    sent = s_parent.recv()
    s_parent.send("stop")
    out = {"source": kind, "posts": committed, "stored": store.count(),
           "stats": c.snapshot(), "mode": "latency" if rate else "throughput"}
    store.close()
    if rate:
        seen, found = p_parent.recv()
        _, ids = build_frames(kind, n)
        lat = sorted((seen[pid] - sent[i]) * 1000 for i, pid in enumerate(ids) if pid in seen)
        probes = sorted((found[pid] - sent[i]) * 1000 for i, pid in enumerate(ids) if pid in found)
        span = max(sent) - min(sent)
        out.update(rate_asked=rate, rate_sent=round(n / span) if span else None,
                   seen=len(lat), latency_ms=_pcts(lat), probes=len(probes),
                   probe_latency_ms=_pcts(probes))
        pol.join(5)
    else:
        secs = last_commit - connected
        out.update(seconds=round(secs, 3), posts_per_s=round(committed / secs) if secs else None,
                   vs_twitter=round(committed / secs / TWITTER_RATE, 2) if secs else None)
    snd.join(5)
    if snd.is_alive():
        snd.terminate()
    return out


def _pcts(xs: list[float]) -> dict:
    if not xs:
        return {"p50": None, "p99": None, "max": None}
    q = statistics.quantiles(xs, n=100, method="inclusive") if len(xs) > 1 else [xs[0]] * 99
    return {"p50": round(q[49], 1), "p99": round(q[98], 1), "max": round(max(xs), 1)}


# --- report ---------------------------------------------------------------------------------------
def machine_info() -> dict:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cpu_count": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            # Other work on the machine shows in every figure: the load when the run began.
            "load_average_1m": round(os.getloadavg()[0], 2)}


def table(results: list[dict]) -> str:
    by = {(r["source"], r["mode"]): r for r in results}
    lines = ["| source | posts/s sustained | vs 5,700 | sent at (posts/s) | seen p50 | seen p99 "
             "| seen max | search p50 | search p99 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for kind in SOURCES:
        t, lt = by.get((kind, "throughput")), by.get((kind, "latency"))
        if not t and not lt:
            continue
        cells = [kind,
                 f"{t['posts_per_s']:,}" if t and t.get("posts_per_s") else "",
                 f"{t['vs_twitter']}x" if t and t.get("vs_twitter") else ""]
        if lt:
            la, pr = lt["latency_ms"], lt["probe_latency_ms"]
            cells += [f"{lt['rate_sent']:,}" if lt.get("rate_sent") else "",
                      *(f"{la[k]} ms" if la[k] is not None else "" for k in ("p50", "p99", "max")),
                      *(f"{pr[k]} ms" if pr[k] is not None else "" for k in ("p50", "p99"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(summary: dict, tab: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "follow.json").write_text(json.dumps(summary, indent=2) + "\n")
    m = summary["machine"]
    md = ["# Follow benchmark (`bench/follow.py`)", "",
          f"{platform.machine()}, {m['cpu_count']} cores, Python {m['python']}, SQLite "
          f"{m['sqlite']}; {m['date']}, load average {m['load_average_1m']} when it began. "
          f"Command: `{summary['command']}`. Fake servers and a store poller in processes of "
          "their own on the same cores; synthetic posts.", "",
          f"Throughput: {summary['posts']:,} posts per source, sent as fast as read. Latency: "
          f"{summary['rate']:,} posts/s for {summary['seconds']} s; *seen* = the post shows in "
          "a `SELECT` of another connection (`posts_since`), *search* = every 100th post found "
          "by its own word through FTS5 (`lexical_ids`), both from the moment its frame was "
          "sent.", "", tab, ""]
    (RESULTS / "follow.md").write_text("\n".join(md))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, default=30_000)
    ap.add_argument("--rate", type=float, default=TWITTER_RATE)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    kinds = [k for k in args.sources.split(",") if k]
    if unknown := set(kinds) - set(SOURCES):
        ap.error(f"unknown sources {sorted(unknown)}")
    WORK.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    results = []
    try:
        for kind in kinds:
            for rate, n in ((None, args.posts), (args.rate, int(args.rate * args.seconds))):
                print(f"{kind} {'latency' if rate else 'throughput'} ...", file=sys.stderr,
                      flush=True)
                r = run_one(kind, n, rate)
                print(json.dumps({k: v for k, v in r.items() if k != "stats"}), file=sys.stderr)
                results.append(r)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    tab = table(results)
    print(tab)
    summary = {"command": "python bench/follow.py " + " ".join(argv or sys.argv[1:]),
               "machine": machine, "posts": args.posts, "rate": args.rate,
               "seconds": args.seconds, "results": results}
    if args.write_results:
        write_results(summary, tab)
    return 0


if __name__ == "__main__":
    sys.exit(main())

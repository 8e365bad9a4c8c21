"""Ingest benchmark: posts/s and memory of the lexical path at >= 1,000,000 posts.

What it measures
----------------
The lexical ingest path as the product runs it -- ``IngestPipeline(SQLiteStore(db)).run([dir])``:
read and parse the CSV/TSV files, normalize each post (validation, Snowflake time, entities), dedup
by id, and store it (posts, provenance, FTS5 index) in batched transactions. The input is the real
datasets in ``../shared/data`` (CrisisLex T6, CrisisNLP AIDR volunteers, CrisisNLP LREC2016
CrowdFlower, HumAID: 184,641 records), replayed until at least 1,000,000 posts are read.

Replay: round ``r`` is a copy of every dataset file with each record's tweet id shifted back by
``r * 2**52`` (``r * 2**30`` ms, about 12.4 days of Snowflake time, so decoded times stay in the
past and ids stay positive). Nothing else in the files changes: same headers, quoting, line ends
and bytes, so the readers see the same layouts and the same bad rows. Round 0 is the data as is.
The script checks that no shifted id collides with another round's ids before it measures.
Replay files are written under ``bench/.work/`` (git-ignored) and deleted at the end; no tweet
text is ever written into the repository. Writing them is timed separately and is not part of
any rate.

Each measurement runs in a fresh child process, so its peak RSS is its own:

``one round``   the pipeline on round 0 only (~185k posts), into a fresh store.
``replay``      the pipeline on all rounds (>= 1M posts), into a fresh store: the headline rate.
``re-ingest``   the same files again into the replay store: every post should come back
                ``unchanged`` (idempotent upsert; only lookups, no writes).
``inline``      the replay again into a fresh store with ``writer="inline"``: the one-process
                loop, to show what the writer process (the default for large inputs) adds.
``floor``       the reference, run side by side on the same files: the plainest load into SQLite
                with an FTS5 index -- ``csv`` module rows, ``int`` ids, in-batch dedup plus a lookup
                of ids already stored, ``executemany`` of ``(id, text)`` into a table and its FTS5
                index; no normalization, entities, labels, provenance or content hashes. Same
                SQLite settings as the store (WAL, synchronous=NORMAL, 64 MiB cache, same
                tokenizer, FTS5 automerge 16, 5,000-row transactions, ids sorted per batch), so
                ``ours / floor`` is the share of the floor's speed that townsquare keeps.

Memory counts the whole process tree: the ingest process plus its writer process. A thread
samples their summed ``VmRSS`` every 0.2 s; the pipeline's ``progress`` callback records it each
time another 100,000 posts have been stored, giving the series RSS at 100k, 200k, ... posts. Peak
is the parent's ``VmHWM`` plus the writer's last-seen ``VmHWM`` (an upper bound: both include an
interpreter and imports). "Flat" means the replay's peak is within 20% of the one-round peak although it read
about six times as many posts.

Run
---
    python bench/ingest.py --write-results

(from the repository root, in the project's virtual environment; a few minutes on 2 cores; run
nothing else heavy meanwhile). Options: ``--rounds N`` (default: enough for >= 1,000,000 posts),
``--data PATH`` (default ``../shared/data``), ``--write-results`` (write
``bench/results/ingest.json`` and ``bench/results/ingest.md``). Progress goes to stderr, the table
to stdout.

Reading the results
-------------------
``posts/s`` is posts read / pipeline seconds (the files' discovery included, replay generation
excluded). ``vs Twitter`` is that rate over Twitter's average of 5,700 posts/s, ``vs target`` over
the 25,000 posts/s requirement (>= 1.0 meets it), ``vs floor`` over the floor's rate measured in
the same run (how close to bare SQLite+FTS5 the full path runs). The RSS series should level off
once SQLite's page cache (64 MiB) is full; a steady climb per 100k posts would be a leak.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WORK = REPO / "bench" / ".work"
RESULTS = REPO / "bench" / "results"

TARGET_POSTS_PER_S = 25_000
TWITTER_POSTS_PER_S = 5_700           # Twitter's average, ~500M posts/day
MIN_POSTS = 1_000_000
ID_SHIFT = 1 << 52                    # per round: 2**30 ms (~12.4 days) of Snowflake time
MIN_SNOWFLAKE_ID = 1 << 40            # below this townsquare cannot decode a time from the id
SAMPLE_EVERY_POSTS = 100_000
SAMPLE_INTERVAL_S = 0.2
FLAT_TOLERANCE = 0.20
FLOOR_BATCH = 5000

# A record's first field is its tweet id: '3252...' (quoted) or a bare number.
_ID_FIELD = re.compile(rb"^(['\"]?)(\d{1,19})(['\"]?)(?=[,\t])")
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- memory ----------------------------------------------------------------------------------------
def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib() -> float:
    kib = _status_kib("VmRSS")
    if kib is None:                     # not Linux: the peak is the best we have
        import resource
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024, 1)


def peak_rss_mib() -> float:
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024, 1)


def _descendants(pid: int = 0) -> list[int]:
    """Pids of this process's children, grandchildren, ... (the ingest's writer process)."""
    out, todo = [], [pid or os.getpid()]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = [int(x) for x in (task / "children").read_text().split()]
                out += kids
                todo += kids
        except OSError:
            continue
    return out


def _proc_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib() -> float:
    """RSS of this process plus its descendants: the writer process's memory counts too."""
    return round(rss_mib() + sum(_proc_kib(p, "VmRSS") for p in _descendants()) / 1024, 1)


class RssSampler(threading.Thread):
    """Samples the process tree's RSS every ``interval`` seconds; ``max_mib`` is the highest
    sample, ``child_peak_kib`` each descendant's own peak (VmHWM) as last seen."""

    def __init__(self, interval: float = SAMPLE_INTERVAL_S):
        super().__init__(daemon=True)
        self.interval = interval
        self.max_mib = tree_rss_mib()
        self.child_peak_kib: dict[int, int] = {}
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.max_mib = max(self.max_mib, tree_rss_mib())
            for pid in _descendants():
                hwm = _proc_kib(pid, "VmHWM")
                if hwm:
                    self.child_peak_kib[pid] = max(self.child_peak_kib.get(pid, 0), hwm)
            self.samples += 1

    def peak_mib(self) -> float:
        """This process's peak plus each descendant's: an upper bound on the tree's peak."""
        return round(peak_rss_mib() + sum(self.child_peak_kib.values()) / 1024, 1)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        self.max_mib = max(self.max_mib, tree_rss_mib())
        return self.max_mib


def db_size_mib(db: Path) -> float:
    total = sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())
    return round(total / 2**20, 1)


# --- replay files ----------------------------------------------------------------------------------
def source_files(data: Path) -> list[tuple[Path, str]]:
    """(file, layout) for every CSV/TSV under ``data`` whose header is a known dataset layout."""
    from townsquare.ingest.tabular import table_source
    out = []
    for f in sorted(data.rglob("*")):
        if f.is_file() and f.suffix.lower() in (".csv", ".tsv") and not any(
                part.startswith(".") for part in f.relative_to(data).parts):
            layout = table_source(f)
            if layout:
                out.append((f, layout))
    return out


def split_records(data: bytes) -> tuple[list[bytes], list[int]]:
    """Physical lines (line ends kept) and the indexes of lines that start a record: the header is
    line 0; a line starts a record when the quotes before it are balanced (as the reader joins)."""
    lines = _LINE.findall(data)
    starts, parity = [], 0
    for i, ln in enumerate(lines):
        if i > 0 and parity == 0:
            starts.append(i)
        parity = (parity + ln.count(b'"')) % 2
    return lines, starts


def shift_ids(lines: list[bytes], starts: list[int], shift: int) -> bytes:
    if shift == 0:
        return b"".join(lines)
    out = list(lines)
    for i in starts:
        m = _ID_FIELD.match(out[i])
        if m:
            new = int(m.group(2)) - shift
            out[i] = m.group(1) + str(new).encode() + m.group(3) + out[i][m.end():]
    return b"".join(out)


def build_replay(data: Path, dest: Path, rounds: int | None) -> dict:
    files = source_files(data)
    if not files:
        raise SystemExit(f"no dataset CSV/TSV files with a known layout under {data}")
    parsed, ids, records = [], [], 0
    by_layout: dict[str, int] = {}
    for f, layout in files:
        lines, starts = split_records(f.read_bytes())
        parsed.append((f, lines, starts))
        records += len(starts)
        by_layout[layout] = by_layout.get(layout, 0) + len(starts)
        for i in starts:
            m = _ID_FIELD.match(lines[i])
            if m:
                ids.append(int(m.group(2)))
    if rounds is None:
        rounds = math.ceil(MIN_POSTS / records)
    id_set = set(ids)
    if ids and min(ids) - (rounds - 1) * ID_SHIFT < MIN_SNOWFLAKE_ID:
        raise SystemExit(f"--rounds {rounds} shifts ids below Snowflake range; use fewer rounds")
    # Round r holds id - r*SHIFT; ids of rounds r and r+k collide iff a - b == k*SHIFT.
    collisions = sum(1 for a in id_set for k in range(1, rounds) if a - k * ID_SHIFT in id_set)
    if collisions:
        raise SystemExit(f"{collisions} shifted ids collide with ids of another round")
    t0 = time.perf_counter()
    written = 0
    for r in range(rounds):
        for f, lines, starts in parsed:
            out = dest / f"round_{r:02d}" / f.relative_to(data)
            out.parent.mkdir(parents=True, exist_ok=True)
            written += out.write_bytes(shift_ids(lines, starts, r * ID_SHIFT))
        log(f"  replay round {r + 1}/{rounds} written")
    return {
        "rounds": rounds,
        "files_per_round": len(files),
        "records_per_round": records,
        "records_by_layout": dict(sorted(by_layout.items())),
        "ids_per_round": len(ids),
        "distinct_ids_per_round": len(id_set),
        "records_total": records * rounds,
        "id_shift_per_round": f"-{ID_SHIFT} (2**52)",
        "cross_round_id_collisions": collisions,
        "bytes_written": written,
        "seconds": round(time.perf_counter() - t0, 2),
    }


# --- child measurements ----------------------------------------------------------------------------
def child_pipeline(db: Path, inputs: list[Path], label: str, writer: str = "auto") -> dict:
    from townsquare.ingest.pipeline import IngestPipeline
    from townsquare.store.sqlite import SQLiteStore

    store = SQLiteStore(db)
    rss_start = rss_mib()
    series: list[dict] = []
    state = {"posts": 0, "next": SAMPLE_EVERY_POSTS, "t0": 0.0}

    def progress(fr, posts_added, quarantined_added, file_done):
        state["posts"] += posts_added
        while state["posts"] >= state["next"]:
            rss = tree_rss_mib()
            el = time.perf_counter() - state["t0"]
            series.append({"posts": state["posts"], "rss_mib": rss, "seconds": round(el, 2)})
            log(f"  [{label}] {state['posts']:>9,} posts  {el:6.1f} s  RSS {rss:6.1f} MiB")
            state["next"] += SAMPLE_EVERY_POSTS

    sampler = RssSampler()
    sampler.start()
    state["t0"] = time.perf_counter()
    report = IngestPipeline(store, writer=writer).run(inputs, progress=progress)
    wall = time.perf_counter() - state["t0"]
    sampled_max = sampler.stop()
    count = store.count()
    store.close()
    t = report.totals
    skipped = {f.path: f.skipped for f in report.files if f.skipped}
    return {
        "files": len(report.files) - len(skipped),
        "skipped_files": len(skipped),
        "records": sum(f.records for f in report.files),
        "posts_read": report.posts_read,
        "inserted": t.inserted, "updated": t.updated, "unchanged": t.unchanged,
        "skipped_deleted": t.skipped_deleted, "quarantined": t.quarantined,
        "posts_in_store": count,
        "seconds": round(report.seconds, 2),
        "wall_seconds": round(wall, 2),
        "posts_per_s": round(report.posts_read / report.seconds) if report.seconds else None,
        "rss_start_mib": rss_start,
        "rss_end_mib": rss_mib(),
        "rss_max_sampled_mib": sampled_max,
        "peak_rss_mib": sampler.peak_mib(),
        "writer": writer,
        "writer_processes_seen": len(sampler.child_peak_kib),
        "rss_series": series,
        "db_mib": db_size_mib(db),
    }


_FLOOR_SCHEMA = """
CREATE TABLE posts (id INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE VIRTUAL TABLE posts_fts USING fts5(
    text, content='posts', content_rowid='id', tokenize="unicode61 remove_diacritics 2");
INSERT INTO posts_fts(posts_fts, rank) VALUES ('automerge', 16);
"""


def _floor_files(root: Path) -> list[Path]:
    return sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in (".csv", ".tsv"))


def child_floor(db: Path, inputs: list[Path], label: str) -> dict:
    con = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "temp_store=MEMORY",
                   "cache_size=-65536"):
        con.execute(f"PRAGMA {pragma}")
    con.executescript(_FLOOR_SCHEMA)
    rss_start = rss_mib()
    series: list[dict] = []
    rows_read = bad = inserted = dup = 0
    next_mark = SAMPLE_EVERY_POSTS

    def flush(batch: dict[int, str]) -> None:
        nonlocal inserted, dup, next_mark
        ids = sorted(batch)
        con.execute("BEGIN IMMEDIATE")
        known: set[int] = set()
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            known.update(r[0] for r in con.execute(
                f"SELECT id FROM posts WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        new = [(i, batch[i]) for i in ids if i not in known]
        con.executemany("INSERT INTO posts (id, text) VALUES (?, ?)", new)
        con.executemany("INSERT INTO posts_fts (rowid, text) VALUES (?, ?)", new)
        con.execute("COMMIT")
        inserted += len(new)
        dup += len(ids) - len(new)
        while rows_read - bad >= next_mark:
            rss = rss_mib()
            el = time.perf_counter() - t0
            series.append({"posts": rows_read - bad, "rss_mib": rss, "seconds": round(el, 2)})
            log(f"  [{label}] {rows_read - bad:>9,} rows   {el:6.1f} s  RSS {rss:6.1f} MiB")
            next_mark += SAMPLE_EVERY_POSTS

    sampler = RssSampler()
    sampler.start()
    t0 = time.perf_counter()
    files = [f for root in inputs for f in _floor_files(root)]
    batch: dict[int, str] = {}
    for path in files:
        delim = "\t" if path.suffix.lower() == ".tsv" else ","
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=delim)
            header = [h.strip().lower() for h in next(reader, [])]
            id_col = next(header.index(h) for h in ("tweet_id", "tweet id") if h in header)
            text_col = next(header.index(h) for h in ("tweet_text", "tweet") if h in header)
            for row in reader:
                if not row:
                    continue
                rows_read += 1
                try:
                    batch[int(row[id_col].strip().strip("'"))] = row[text_col]
                except (ValueError, IndexError):
                    bad += 1
                    continue
                if len(batch) >= FLOOR_BATCH:
                    flush(batch)
                    batch = {}
    if batch:
        flush(batch)
    seconds = time.perf_counter() - t0
    sampled_max = sampler.stop()
    count = con.execute("SELECT count(*) FROM posts").fetchone()[0]
    con.close()
    posts = rows_read - bad
    return {
        "files": len(files),
        "rows_read": rows_read,
        "posts_read": posts,
        "bad_rows": bad,
        "inserted": inserted,
        "duplicates": dup,
        "posts_in_store": count,
        "seconds": round(seconds, 2),
        "wall_seconds": round(seconds, 2),
        "posts_per_s": round(posts / seconds) if seconds else None,
        "rss_start_mib": rss_start,
        "rss_end_mib": rss_mib(),
        "rss_max_sampled_mib": sampled_max,
        "peak_rss_mib": peak_rss_mib(),
        "rss_series": series,
        "db_mib": db_size_mib(db),
    }


def run_child(kind: str, db: Path, inputs: list[Path], label: str, writer: str = "auto") -> dict:
    log(f"{label}: {kind} into {db.name} ...")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", kind, "--_db", str(db),
           "--_label", label, "--_writer", writer, "--_inputs", *map(str, inputs)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed (exit {proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    log(f"{label}: {result['posts_read']:,} posts in {result['seconds']} s = "
        f"{result['posts_per_s']:,} posts/s, peak RSS {result['peak_rss_mib']} MiB")
    return result


# --- report ----------------------------------------------------------------------------------------
def machine_info() -> dict:
    import townsquare
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = _status_kib_meminfo()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "memory_gib": round(mem / 2**20, 1) if mem else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "townsquare": getattr(townsquare, "__version__", None) or _dist_version(),
    }


def _status_kib_meminfo() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _dist_version() -> str | None:
    try:
        from importlib.metadata import version
        return version("townsquare")
    except Exception:
        return None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def summarize(replay: dict, one: dict, full: dict, again: dict, inline: dict, floor: dict,
              data: Path) -> dict:
    flat_limit = round(one["peak_rss_mib"] * (1 + FLAT_TOLERANCE), 1)
    series = full["rss_series"]
    growth = None
    if len(series) >= 3:   # from the 200k sample to the last one, per 100k posts
        a, b = series[1], series[-1]
        growth = round((b["rss_mib"] - a["rss_mib"]) / ((b["posts"] - a["posts"]) / 100_000), 2)
    rate = full["posts_per_s"]
    return {
        "benchmark": "ingest (lexical path: parse, normalize, id dedup, store with FTS5)",
        "command": "python bench/ingest.py --write-results",
        "data": os.path.relpath(data, Path(__file__).resolve().parents[1]),
        "machine": machine_info(),
        "replay": replay,
        "runs": {"one_round": one, "replay": full, "reingest": again, "replay_inline": inline,
                 "floor": floor},
        "headline": {
            "posts_read": full["posts_read"],
            "posts_per_s": rate,
            "reingest_posts_per_s": again["posts_per_s"],
            "floor_posts_per_s": floor["posts_per_s"],
            "inline_writer_posts_per_s": inline["posts_per_s"],
            "ratio_vs_inline_writer": ratio(rate, inline["posts_per_s"]),
            "one_round_posts_per_s": one["posts_per_s"],
            "target_posts_per_s": TARGET_POSTS_PER_S,
            "twitter_average_posts_per_s": TWITTER_POSTS_PER_S,
            "ratio_vs_target": ratio(rate, TARGET_POSTS_PER_S),
            "ratio_vs_twitter": ratio(rate, TWITTER_POSTS_PER_S),
            "ratio_vs_floor": ratio(rate, floor["posts_per_s"]),
            "reingest_ratio_vs_floor": ratio(again["posts_per_s"], floor["posts_per_s"]),
            "meets_target": bool(rate and rate >= TARGET_POSTS_PER_S),
            "at_least_1m_posts": full["posts_read"] >= MIN_POSTS,
            "peak_rss_one_round_mib": one["peak_rss_mib"],
            "peak_rss_replay_mib": full["peak_rss_mib"],
            "peak_rss_floor_mib": floor["peak_rss_mib"],
            "rss_growth_mib_per_100k_after_200k": growth,
            "flat_memory": full["peak_rss_mib"] <= flat_limit,
            "flat_rule": f"replay peak RSS <= one-round peak x {1 + FLAT_TOLERANCE:g} "
                         f"({flat_limit} MiB)",
            "reingest_all_unchanged": again["unchanged"] > 0 and again["inserted"] == 0
                                      and again["updated"] == 0,
        },
    }


def render_table(s: dict) -> str:
    h, runs, m = s["headline"], s["runs"], s["machine"]
    floor_rate = h["floor_posts_per_s"]

    def row(name, r):
        return (f"| {name} | {r['posts_read']:,} | {r['seconds']:.1f} | {r['posts_per_s']:,} | "
                f"{ratio(r['posts_per_s'], TARGET_POSTS_PER_S)} | "
                f"{ratio(r['posts_per_s'], TWITTER_POSTS_PER_S)} | "
                f"{ratio(r['posts_per_s'], floor_rate)} | {r['peak_rss_mib']:.0f} | "
                f"{r['db_mib']:.0f} |")

    one, full, again, floor = runs["one_round"], runs["replay"], runs["reingest"], runs["floor"]
    inline = runs["replay_inline"]
    lines = [
        f"Ingest benchmark, {m['date']}: {m['cpu_count']} CPUs ({m['cpu_model']}), "
        f"Python {m['python']}, SQLite {m['sqlite']}",
        "",
        "| run | posts | seconds | posts/s | vs target 25,000 | vs Twitter 5,700 | vs floor | "
        "peak RSS MiB (with writer) | db MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        row("one round (round 0 = the data as is)", one),
        row(f"replay, {s['replay']['rounds']} rounds (headline)", full),
        row("re-ingest of the replay files", again),
        row("replay with the writer inline (one process)", inline),
        row("floor: csv + sqlite3 executemany + FTS5", floor),
        "",
        f"Replay: {full['inserted']:,} inserted, {full['updated']:,} updated, "
        f"{full['unchanged']:,} unchanged, {full['quarantined']:,} quarantined; "
        f"{full['posts_in_store']:,} posts in store. "
        f"Re-ingest: {again['inserted']:,} inserted, {again['updated']:,} updated, "
        f"{again['unchanged']:,} unchanged.",
        "",
        "RSS (MiB) after each 100,000 posts, replay run: "
        + ", ".join(f"{round(p['posts'], -3) // 1000:,}k: {p['rss_mib']:.0f}" for p in full["rss_series"]),
        "",
        f"Target met: {'yes' if h['meets_target'] else 'NO'} ({h['posts_per_s']:,} posts/s vs "
        f"{TARGET_POSTS_PER_S:,}). Flat memory: {'yes' if h['flat_memory'] else 'NO'} "
        f"(peak {h['peak_rss_replay_mib']} MiB at {full['posts_read']:,} posts vs "
        f"{h['peak_rss_one_round_mib']} MiB at {one['posts_read']:,}; rule: {h['flat_rule']}; "
        f"growth after 200k: {h['rss_growth_mib_per_100k_after_200k']} MiB per 100k posts).",
        f"Replay files ({s['replay']['rounds']} x {s['replay']['records_per_round']:,} records, "
        f"{s['replay']['bytes_written'] / 2**20:.0f} MiB) took {s['replay']['seconds']} s to "
        f"write, not counted in any rate.",
    ]
    return "\n".join(lines)


def write_results(s: dict, table: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(s, indent=2) + "\n")
    md = ["# Ingest benchmark", "",
          f"Command: `{s['command']}` (see the docstring of `bench/ingest.py`). "
          f"Data: the shared datasets' {s['replay']['records_per_round']:,} CSV/TSV records, "
          f"replayed {s['replay']['rounds']} times with ids shifted.", "", table, ""]
    (RESULTS / "ingest.md").write_text("\n".join(md))


# --- main ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=None,
                    help="replay rounds (default: enough for >= 1,000,000 posts)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help=f"the shared datasets (default: {DEFAULT_DATA})")
    ap.add_argument("--write-results", action="store_true",
                    help="write bench/results/ingest.json and ingest.md")
    ap.add_argument("--_child", choices=("pipeline", "floor"), help=argparse.SUPPRESS)
    ap.add_argument("--_db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_label", default="run", help=argparse.SUPPRESS)
    ap.add_argument("--_writer", default="auto", help=argparse.SUPPRESS)
    ap.add_argument("--_inputs", type=Path, nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._child:
        if args._child == "pipeline":
            out = child_pipeline(args._db, args._inputs, args._label, args._writer)
        else:
            out = child_floor(args._db, args._inputs, args._label)
        print(json.dumps(out))
        return 0

    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be >= 1")
    data = args.data.resolve()
    if not data.is_dir():
        ap.error(f"no datasets at {data} (pass --data)")
    WORK.mkdir(parents=True, exist_ok=True)
    work = WORK / f"ingest-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    try:
        replay_dir = work / "replay"
        log(f"writing replay files under {replay_dir} ...")
        replay = build_replay(data, replay_dir, args.rounds)
        log(f"replay: {replay['rounds']} rounds x {replay['records_per_round']:,} records "
            f"in {replay['seconds']} s")
        one = run_child("pipeline", work / "one.db", [replay_dir / "round_00"], "one round")
        for p in work.glob("one.db*"):
            p.unlink()
        full = run_child("pipeline", work / "replay.db", [replay_dir], "replay")
        again = run_child("pipeline", work / "replay.db", [replay_dir], "re-ingest")
        for p in work.glob("replay.db*"):
            p.unlink()
        inline = run_child("pipeline", work / "inline.db", [replay_dir], "replay, inline writer",
                           writer="inline")
        for p in work.glob("inline.db*"):
            p.unlink()
        floor = run_child("floor", work / "floor.db", [replay_dir], "floor")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        try:
            WORK.rmdir()          # only when empty: another run may be using it
        except OSError:
            pass

    summary = summarize(replay, one, full, again, inline, floor, data)
    table = render_table(summary)
    print(table)
    if args.write_results:
        write_results(summary, table)
        log(f"wrote {RESULTS / 'ingest.json'} and {RESULTS / 'ingest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

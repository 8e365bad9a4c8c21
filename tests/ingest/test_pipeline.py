from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from townsquare.export import export_jsonl
from townsquare.ingest.pipeline import IngestPipeline
from townsquare.store.sqlite import SQLiteStore

from ..conftest import FIXTURES

BASE = 1212092628029698048


def _dump(store) -> list[dict]:
    buf = io.BytesIO()
    export_jsonl(store, buf)
    return [orjson.loads(line) for line in buf.getvalue().splitlines()]


def test_samples_round_trip_through_ingest_and_export(tmp_path):
    first = SQLiteStore(tmp_path / "a.db")
    r = IngestPipeline(first).run([FIXTURES])
    assert r.totals.quarantined == 0 and r.totals.inserted == 16   # 4+1+1 v1, 7 v2, 3 archive
    exported = tmp_path / "export.jsonl"
    exported.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in _dump(first)))
    second = SQLiteStore(tmp_path / "b.db")
    r2 = IngestPipeline(second).run([exported])
    assert r2.totals.inserted == 16 and r2.totals.quarantined == 0
    assert _dump(second) == _dump(first)          # every field, labels and sources included


def test_reingest_leaves_the_same_rows(tmp_path):
    store = SQLiteStore(tmp_path / "a.db")
    IngestPipeline(store).run([FIXTURES])
    before = _dump(store)
    r = IngestPipeline(store).run([FIXTURES])
    assert (r.totals.inserted, r.totals.updated) == (0, 0)
    assert _dump(store) == before and store.count() == 16


def test_quarantine_keeps_file_line_and_reason_and_the_rest_is_stored(tmp_path):
    f = tmp_path / "mixed.csv"
    f.write_text(f"id,text\n{BASE},good one\nbad,no id\n{BASE + 1},\n{BASE + 2},good two\n")
    store = SQLiteStore(tmp_path / "a.db")
    r = IngestPipeline(store, batch_size=1).run([f])
    assert (r.totals.inserted, r.totals.quarantined) == (2, 2)
    q = {(i.line, i.reason.split(":")[0]) for i in store.quarantine_items()}
    assert q == {(3, "id"), (4, "text")}
    assert all(i.file == str(f.resolve()) for i in store.quarantine_items())


def _big_csv(path: Path, n: int) -> None:
    with open(path, "w") as f:
        f.write("id,text\n")
        for i in range(n):
            f.write(f"{BASE + i},post number {i} about the flood in sector {i % 97}\n")


def _writer_processes(parent: int | None = None) -> list[int]:
    """Writer processes alive (a zombie is dead), the children of ``parent`` when given: other
    sessions on the machine may run ingests of their own meanwhile."""
    out = []
    for d in Path("/proc").iterdir():
        try:
            if not (d.name.isdigit() and b"townsquare.ingest.writer" in (d / "cmdline").read_bytes()):
                continue
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            if stat[0] != "Z" and (parent is None or int(stat[1]) == parent):
                out.append(int(d.name))
        except OSError:
            continue
    return out


@pytest.mark.parametrize("writer", ["process", "inline"])
def test_sigkill_mid_file_then_rerun_gives_a_consistent_store(tmp_path, writer):
    n = 300_000
    data = tmp_path / "big.csv"
    _big_csv(data, n)
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "townsquare.cli", "ingest", str(data), "--home", str(home),
           "--no-late", "--batch-size", "2000", "--writer", writer]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = home / "townsquare.db"
    deadline = time.time() + 60
    stored = 0
    while time.time() < deadline:           # wait until some batches are committed, not all
        time.sleep(0.05)
        if db.exists():
            try:
                s = SQLiteStore(db, timeout_s=0.2)
                stored = s.count()
                s.close()
            except Exception:  # noqa: BLE001 - the writer may hold the lock; try again
                continue
            if stored >= 20_000:
                break
    writers = _writer_processes(parent=proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < stored < n, "the kill must land mid-file"

    def alive() -> list[int]:
        return [pid for pid in writers if pid in _writer_processes()]

    deadline = time.time() + 5
    while alive() and time.time() < deadline:   # the writer dies with its parent
        time.sleep(0.05)
    assert alive() == []
    mid = SQLiteStore(db)
    assert mid.integrity_check() == [] and mid.count() < n
    mid.close()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = SQLiteStore(db)
    assert after.integrity_check() == []
    assert after.count() == n
    ids = [p.id for p in after.iter_posts()]
    assert ids == [BASE + i for i in range(n)]          # every post once, none missing
    assert after.lexical_ids('"number 299999"') == [BASE + n - 1]


def test_writer_process_and_inline_store_the_same_rows(tmp_path):
    data = tmp_path / "posts.csv"
    _big_csv(data, 3000)
    with open(data, "a") as f:
        f.write("not-an-id,broken row\n")
    dumps, reports = [], []
    for writer in ("process", "inline"):
        store = SQLiteStore(tmp_path / f"{writer}.db")
        seen = []
        r = IngestPipeline(store, batch_size=500, writer=writer).run(
            [FIXTURES, data], progress=lambda fr, n, bad, done: seen.append((n, bad, done)))
        reports.append((r.totals.inserted, r.totals.quarantined, r.posts_read,
                        [(f.path, f.posts, f.quarantined) for f in r.files], seen))
        dumps.append([{k: v for k, v in d.items()} for d in _dump(store)])
        assert store.integrity_check() == []
    assert reports[0] == reports[1]
    assert reports[0][0] == 3016 and reports[0][1] == 1
    assert dumps[0] == dumps[1]


def test_a_failing_writer_process_raises_with_its_traceback(tmp_path):
    from townsquare.ingest.writer import WriterError, WriterProcess

    blocker = tmp_path / "file"
    blocker.write_text("x")
    # The opener fails in the child: its store path lies under a regular file.
    opener = SQLiteStore(tmp_path / "ok.db").opener()
    bad = type(opener)(opener.func, str(blocker / "sub" / "t.db"))
    w = WriterProcess(bad)
    with pytest.raises(WriterError, match="writer process"):
        w.submit(1, ([], []))
        w.finish()

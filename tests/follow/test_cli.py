"""``townsquare follow SOURCE`` as a user runs it: a subprocess against each source's local fake
server (``fakes.InThread``), stopped by SIGTERM, after which the store holds exactly the posts
sent minus the posts deleted, once each. Also: what SIGTERM commits (posts received but not yet
written), Bluesky's cursor kept in ``HOME/follow/`` and resumed 5 s early by the next run,
credentials from a variable or a file that never show in the output, X's rule commands, the
periodic late stage, a run into PostgreSQL, and bad options as one-line errors (exit 2)."""
from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.follow.conftest import clean_env
from tests.follow.fakes import (
    Deliver,
    HttpFake,
    InThread,
    JetstreamFake,
    Status,
    Stream,
    jetstream_delete,
    jetstream_events,
    line,
    mastodon_status,
    sse,
    x_delete_frame,
    x_synthetic_frame,
)
from townsquare.cli import app
from townsquare.follow import IdSpace, NativeRef
from townsquare.follow.x import RULES_PATH, STREAM_PATH
from townsquare.store import open_store

TOKEN = "cli-bearer-s3cret"
T0_US = 1_700_000_000_000_000
# Frames held until the stop: nothing is written before SIGTERM, so what the store holds after it
# is what the stop committed.
HOLD_ALL = ("--max-delay", "600", "--batch-size", "100000")


class Follow:
    """``townsquare follow ARGS --json`` as a subprocess; its JSON lines as they come."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None,
                 stdin: bytes | None = None, stats_every: str = "0.2"):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "townsquare", "follow", *args, "--home", str(home), "--json",
             "--stats-every", stats_every],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or clean_env())
        self.lines: queue.Queue = queue.Queue()
        self._out: list[dict] = []
        self._err: list[bytes] = []
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._threads:
            t.start()
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(json.loads(raw))
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self._err.extend(self.proc.stderr)

    @property
    def stderr(self) -> str:
        return b"".join(self._err).decode(errors="replace")

    def wait_for(self, done: Callable[[dict], bool], timeout_s: float = 60.0) -> dict:
        """The first progress line for which ``done`` holds; fails if the process ends first."""
        deadline = time.monotonic() + timeout_s
        last = None
        while True:
            try:
                item = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                pytest.fail(f"not reached in {timeout_s} s; last progress: {last}\n{self.stderr}")
            if item is None:
                self.proc.wait(10)
                pytest.fail(f"follow exited {self.proc.returncode}: {self.stderr[-3000:]}")
            self._out.append(item)
            if item["event"] == "progress":
                last = item
                if done(item):
                    return item

    def stop(self) -> dict:
        """SIGTERM; the command exits 0 with its ``stopped`` line."""
        self.proc.send_signal(signal.SIGTERM)
        return self.finish()

    def finish(self, timeout_s: float = 60.0) -> dict:
        """Wait for the exit (0); returns the last line (``stopped``)."""
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"follow did not exit in {timeout_s} s: {self.stderr[-3000:]}")
        for t in self._threads:
            t.join(10)
        assert rc == 0, self.stderr[-3000:]
        while (item := self.lines.get(timeout=10)) is not None:
            self._out.append(item)
        final = self._out[-1]
        assert final["event"] == "stopped" and not final["connected"], final
        return final

    @property
    def stdout(self) -> str:
        return "\n".join(json.dumps(x) for x in self._out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def stored(target: str | Path) -> list[int]:
    """The ids in the store at ``target``, each once, in id order (a duplicate fails)."""
    with open_store(target) as s:
        ids = [p.id for p in s.iter_posts()]
        assert s.count() == len(ids) == len(set(ids))
    return sorted(ids)


def bluesky_id(event: dict) -> int:
    return IdSpace().post_id(NativeRef(
        "bluesky", f"at://{event['did']}/app.bsky.feed.post/{event['commit']['rkey']}"))


def mastodon_id(local: str) -> int:
    return IdSpace().post_id(NativeRef("mastodon", f"mastodon.example/{local}"))


# --- X ------------------------------------------------------------------------------------------
def test_x_stream_reconnects_and_sigterm_commits_what_was_received(tmp_path):
    frames = [x_synthetic_frame(i) for i in range(30)]
    ids = [int(f["data"]["id"]) for f in frames]
    deleted = {ids[3], ids[20]}
    acts = [
        # cut mid-frame after a keep-alive; the reconnect re-delivers 8 and 9 (duplicates)
        Stream([line(f) for f in frames[:10]] + [b"\r\n"], end="cut", tail=line(frames[10])[:25]),
        Stream([line(f) for f in frames[8:20]] + [line(x_delete_frame(ids[3]))], end="close"),
        Stream([line(f) for f in frames[20:]] + [line(x_delete_frame(ids[20]))], end="hold"),
    ]
    home = tmp_path / "home"
    with InThread(HttpFake(STREAM_PATH, acts)) as fake:
        f = Follow(home, "x", fake.url, "--token-env", "MY_X_TOKEN", "--backfill-minutes", "2",
                   *HOLD_ALL, env=clean_env(MY_X_TOKEN=TOKEN))
        # 10 + 13 + 11 frames read (the cut one is not a frame); none written yet
        before = f.wait_for(lambda s: s["frames"] >= 34)
        final = f.stop()
    assert before["posts"] == 0 and before["deletes"] == 0 and before["connected"]
    assert final["deletes"] == 2 and final["reconnects"] == 2 and final["partial_frames"] == 1
    assert stored(home) == sorted(set(ids) - deleted)
    reqs = fake.stream_requests()
    assert [r.headers["authorization"] for r in reqs] == [f"Bearer {TOKEN}"] * 3
    assert [r.query.get("backfill_minutes") for r in reqs] == [None, ["1"], ["1"]]
    assert TOKEN not in f.stdout and TOKEN not in f.stderr
    with open_store(home) as s:
        assert s.deleted_ids() >= deleted
        assert {p.source for p in s.iter_posts()} == {"x"}


def test_x_rule_commands(tmp_path):
    rules: dict[str, dict] = {}

    def handler(req):
        assert req.headers["authorization"] == f"Bearer {TOKEN}"
        if req.method == "GET":
            return Status(200, json.dumps({"data": list(rules.values()),
                                           "meta": {"result_count": len(rules)}}).encode())
        body = req.json()
        if "add" in body:
            created = [{"id": str(1000 + len(rules) + k), **r} for k, r in enumerate(body["add"])]
            if req.query.get("dry_run") != ["true"]:
                rules.update((r["id"], r) for r in created)
            return Status(201, json.dumps({"data": created}).encode())
        gone = [i for i in body["delete"]["ids"] if rules.pop(i, None)]
        return Status(200, json.dumps({"meta": {"summary": {"deleted": len(gone)}}}).encode())

    env = clean_env(X_BEARER_TOKEN=TOKEN)               # X's default variable

    def run(*args: str) -> Any:
        r = subprocess.run([sys.executable, "-m", "townsquare", "follow", "x", fake.url, *args,
                            "--home", str(tmp_path / "home"), "--json"],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert TOKEN not in r.stdout + r.stderr
        return json.loads(r.stdout)

    with InThread(HttpFake(STREAM_PATH, [], {RULES_PATH: handler})) as fake:
        added = run("--rule", "flood lang:en -is:retweet", "--tag", "flood")
        assert added == {"added": [{"id": "1000", "value": "flood lang:en -is:retweet",
                                    "tag": "flood"}], "errors": [], "dry_run": False}
        assert run("--list-rules") == {"rules": added["added"]}
        assert run("--delete-rule", "1000") == {"deleted": 1, "asked": 1}
    assert rules == {}
    assert fake.stream_requests() == []                  # rule commands never open the stream


# --- Bluesky ------------------------------------------------------------------------------------
def test_bluesky_cursor_is_saved_and_the_next_run_resumes_5_s_early(tmp_path):
    events = jetstream_events(40, start_us=T0_US, step_us=1_000_000, dids=3)  # one a second
    posts = [e for e in events if e["kind"] == "commit"]
    events.insert(25, jetstream_delete(posts[5], events[24]["time_us"] + 1))
    events.append(jetstream_delete(posts[-1], events[-1]["time_us"] + 1_000_000))
    deleted = {bluesky_id(posts[5]), bluesky_id(posts[-1])}
    want = sorted({bluesky_id(p) for p in posts} - deleted)
    home = tmp_path / "home"

    # A session cut mid-frame, then one that stays open: the reconnect rewinds 5 s, so the
    # server sends some events twice.
    with InThread(JetstreamFake(events, [Deliver(upto=20, end="mid-frame"),
                                         Deliver(end="hold")])) as fake:
        f = Follow(home, "bluesky", fake.url)
        f.wait_for(lambda s: s["deletes"] >= 2)
        final = f.stop()
    assert stored(home) == want
    # each post inserted once (the two deleted ones too, before their delete events came)
    assert final["reconnects"] == 1 and final["inserted"] == len(posts)
    assert int(fake.requests[1]["cursor"][0]) == events[19]["time_us"] - 5_000_000
    assert len(fake.sent) > len(set(fake.sent))
    cursor_file = home / "follow" / "bluesky.cursor"
    saved = int(cursor_file.read_text())
    assert saved == events[-1]["time_us"]                       # the last event committed

    # The next run starts from the saved cursor, 5 s early: those events come again, are stored
    # once, and the post deleted among them stays deleted.
    again = [i for i, e in enumerate(events) if e["time_us"] >= saved - 5_000_000]
    assert bluesky_id(posts[-1]) in {bluesky_id(events[i]) for i in again
                                     if events[i]["kind"] == "commit"}
    with InThread(JetstreamFake(events, [Deliver(end="hold")])) as fake:
        f = Follow(home, "bluesky", fake.url)
        f.wait_for(lambda s: s["frames"] >= len(again) and s["deletes"] >= 1)
        final = f.stop()
    assert fake.requests[0]["cursor"] == [str(saved - 5_000_000)]
    assert fake.requests[0]["wantedCollections"] == ["app.bsky.feed.post"]
    assert fake.sent == again
    assert final["inserted"] == 0 and stored(home) == want


def test_bluesky_into_postgresql(tmp_path, pg_url):
    psycopg = pytest.importorskip("psycopg")
    events = jetstream_events(12, start_us=T0_US, dids=2)
    posts = [e for e in events if e["kind"] == "commit"]
    events.append(jetstream_delete(posts[0], events[-1]["time_us"] + 1))
    want = sorted({bluesky_id(p) for p in posts} - {bluesky_id(posts[0])})
    with InThread(JetstreamFake(events, [Deliver(end="hold")])) as fake:
        f = Follow(tmp_path / "home", "bluesky", fake.url, env=clean_env(TOWNSQUARE_STORE=pg_url))
        f.wait_for(lambda s: s["deletes"] >= 1)
        f.stop()
    assert stored(pg_url) == want
    with psycopg.connect(pg_url) as c:                  # namespaced ids: a partition of their own
        where = {r[0] for r in c.execute("SELECT tableoid::regclass::text FROM posts")}
    assert where == {"posts_platforms"}
    assert not (tmp_path / "home" / "townsquare.db").exists()


# --- Mastodon -----------------------------------------------------------------------------------
def test_mastodon_with_a_token_file_and_last_event_id(tmp_path):
    statuses = [mastodon_status(i) for i in range(20)]
    boost = mastodon_status(20, reblog=statuses[4])
    ev = [sse("update", json.dumps(s), str(n)) for n, s in enumerate(statuses)]
    acts = [
        Stream([sse(None)] + ev[:8], end="cut", tail=b"id: 8\nevent: upd",
               content_type="text/event-stream"),
        Stream(ev[7:] + [sse("delete", statuses[3]["id"], "d1"),
                         sse("update", json.dumps(boost), "20")],
               end="hold", content_type="text/event-stream"),
    ]
    token = tmp_path / "token"
    token.write_text("mastodon-s3cret\n")
    home = tmp_path / "home"
    with InThread(HttpFake("/api/v1/streaming/hashtag", acts)) as fake:
        # The instance is mastodon.example (its ids); its streaming API is the fake.
        f = Follow(home, "mastodon", "https://mastodon.example", "--streaming-url", fake.url,
                   "--tag", "riverton", "--token-file", str(token), *HOLD_ALL)
        before = f.wait_for(lambda s: s["frames"] >= 8 + 13 + 2)
        final = f.stop()
    assert before["posts"] == 0 and final["deletes"] == 1
    assert final["source"] == "mastodon:mastodon.example"
    want = {mastodon_id(s["id"]) for s in statuses} | {mastodon_id(boost["id"])}
    assert stored(home) == sorted(want - {mastodon_id(statuses[3]["id"])})
    reqs = fake.stream_requests()
    assert [r.headers.get("last-event-id") for r in reqs] == [None, "7"]
    assert all(r.headers["authorization"] == "Bearer mastodon-s3cret"
               and r.query == {"tag": ["riverton"]} for r in reqs)
    assert "mastodon-s3cret" not in f.stdout + f.stderr
    with open_store(home) as s:
        assert s.get(mastodon_id(boost["id"])).repost_of_id == mastodon_id(statuses[4]["id"])
    # `townsquare stats` shows the source as its last snapshot left it: stopped, not connected.
    r = CliRunner().invoke(app, ["stats", "--home", str(home), "--json"], env=clean_env())
    assert r.exit_code == 0, r.output
    (snap,) = json.loads(r.stdout)["follow"]
    assert snap["source"] == "mastodon:mastodon.example" and snap["kind"] == "mastodon"
    assert not snap["connected"] and snap["deletes"] == 1 and not snap["stale"]
    assert (home / "follow" / "mastodon_mastodon.example.stats.json").exists()


# --- NDJSON -------------------------------------------------------------------------------------
def test_ndjson_over_http_with_the_late_stage_every_half_second(tmp_path):
    frames = [x_synthetic_frame(i) for i in range(30)]
    ids = [int(f["data"]["id"]) for f in frames]
    gone = {"delete": {"status": {"id_str": str(ids[7])}}}
    acts = [Stream([line(f) for f in frames[:10]], end="cut", tail=line(frames[10])[:30],
                   content_type="application/x-ndjson"),
            Stream([line(f) for f in frames[9:]] + [line(gone)], end="hold",
                   content_type="application/x-ndjson")]
    home = tmp_path / "home"
    with InThread(HttpFake("/feed", acts)) as fake:
        url = fake.url
        f = Follow(home, "ndjson", url + "/feed?since=0", "--name", "feed",
                   "--token-env", "FEED_TOKEN", "--late-every", "0.5",
                   env=clean_env(FEED_TOKEN="feed-s3cret"))
        # every post written, and the late stage caught up with them (language, near-dups)
        f.wait_for(lambda s: s["deletes"] >= 1 and s["late_stage"]["processed"] >= 29)
        final = f.stop()
    assert stored(home) == sorted(set(ids) - {ids[7]})
    assert final["source"] == "feed" and final["locator"] == f"ndjson:{url}/feed"
    assert [r.headers["authorization"] for r in fake.stream_requests()] == [
        "Bearer feed-s3cret"] * 2
    assert "feed-s3cret" not in f.stdout + f.stderr
    with open_store(home) as s:
        assert s.pending_enrichment(100) == []             # nothing left for the late stage


def test_ndjson_from_stdin_ends_with_its_input_and_catches_up(tmp_path):
    frames = [x_synthetic_frame(i) for i in range(15)]
    ids = [int(f["data"]["id"]) for f in frames]
    body = b"".join(line(f) for f in frames) + b"not json\n" + \
        line({"delete": {"status": {"id_str": str(ids[0])}}})
    home = tmp_path / "home"
    final = Follow(home, "ndjson", "-", stdin=body).finish()
    assert final["quarantined"] == 1 and final["deletes"] == 1
    assert final["late_stage"]["processed"] == 14          # the input ended: caught up at once
    assert stored(home) == ids[1:]


# --- options ------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, env, named", [
    (["bluesky", "--rule", "flood"], {}, "--rule"),
    (["x", "--list-rules", "--delete-rule", "1"], {"X_BEARER_TOKEN": TOKEN}, "--list-rules"),
    (["x", "--tag", "flood"], {"X_BEARER_TOKEN": TOKEN}, "--tag"),
    (["x"], {}, "X_BEARER_TOKEN"),                           # no token: before connecting
    (["x", "--token-env", TOKEN], {}, "--token-env"),        # the token itself, not a NAME
    (["x", "--token-env", "A", "--token-file", "t"], {}, "--token-file"),
    (["x", "--backfill-minutes", "6"], {"X_BEARER_TOKEN": TOKEN}, "--backfill-minutes"),
    (["mastodon"], {}, "WHERE"),
    (["mastodon", "ftp://m.example"], {}, "WHERE"),
    (["ndjson", "https://f.example", "--did", "did:plc:a"], {}, "--did"),
    (["bluesky", "--token-env", "T"], {}, "--token-env"),
    (["threads"], {}, "SOURCE"),
    (["bluesky", "--overflow", "drop-newest"], {}, "--overflow"),
    (["bluesky", "--stats-every", "0"], {}, "--stats-every"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, env, named):
    r = CliRunner().invoke(app, ["follow", *args, "--home", str(tmp_path / "home")],
                           env={"X_BEARER_TOKEN": None, **env})
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and "Traceback" not in r.output
    assert named in r.output and TOKEN not in r.output
    assert not (tmp_path / "home").exists()                  # nothing started, nothing created

"""``townsquare serve --follow SOURCE``: a server that follows NDJSON feeds (local fakes) makes
their posts searchable through ``/v1/search``, shows each source in ``/v1/stats``, and on SIGTERM
commits what its streams received (also posts still waiting for their batch) and leaves each
source's stats ``connected: false``. Bad ``--follow`` words are one-line errors (exit 2)."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.follow.conftest import clean_env
from tests.follow.fakes import HttpFake, InThread, Stream, line, x_synthetic_frame
from townsquare.cli import app
from townsquare.follow.stats import read_stats, state_folder
from townsquare.store import open_store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(home: Path, *follow: str) -> tuple[subprocess.Popen, str]:
    """``townsquare serve --follow ...`` on a free port; returns once it answers ``/health``."""
    port = free_port()
    log = home.parent / "server.log"
    args = [a for spec in follow for a in ("--follow", spec)]
    proc = subprocess.Popen([sys.executable, "-m", "townsquare", "serve", "--home", str(home),
                             "--port", str(port), "--no-auth", "--backend", "extractive",
                             "--no-embed", *args],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=clean_env())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"server did not answer in 120 s: {log.read_text()[-3000:]}")


def poll(get, done, timeout_s: float = 60.0):
    """``get()`` until ``done(value)``; returns that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = get()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not reached in {timeout_s} s: {value}")
        time.sleep(0.2)


def test_followed_posts_are_searchable_and_sigterm_commits_and_disconnects(tmp_path):
    frames = [x_synthetic_frame(i) for i in range(20)]
    ids = [int(f["data"]["id"]) for f in frames]
    late = [x_synthetic_frame(i, base_ms=1_700_100_000_000) for i in range(10)]
    late_ids = [int(f["data"]["id"]) for f in late]
    gone = {"delete": {"status": {"id_str": str(ids[5])}}}
    feed = Stream([line(f) for f in frames] + [line(gone)], end="hold",
                  content_type="application/x-ndjson")
    # The second feed's posts wait for a batch that only the stop completes.
    held = Stream([line(f) for f in late], end="hold", content_type="application/x-ndjson")
    home = tmp_path / "home"
    with InThread(HttpFake("/feed", [feed])) as a, InThread(HttpFake("/held", [held])) as b:
        proc, url = serve(home, f"ndjson {a.url}/feed --name feed",
                          f"ndjson {b.url}/held --name held --max-delay 600 --batch-size 100000")
        try:
            with httpx.Client(base_url=url, timeout=30) as c:
                def search():
                    r = c.get("/v1/search", params={"q": "gauge", "mode": "latest",
                                                    "limit": 100})
                    assert r.status_code == 200, r.text
                    return sorted(int(h["id"]) for h in r.json()["results"])

                found = poll(search, lambda got: got == sorted(set(ids) - {ids[5]}))
                assert not set(found) & set(late_ids)          # held back: not written yet

                def follow_stats():
                    r = c.get("/v1/stats")
                    assert r.status_code == 200, r.text
                    return {s["source"]: s for s in r.json()["follow"]}

                stats = poll(follow_stats, lambda s: s.get("feed", {}).get("deletes") == 1
                             and s.get("held", {}).get("frames") == 10)
            assert stats["feed"]["connected"] and stats["feed"]["connected_since"]
            assert stats["feed"]["kind"] == "ndjson" and not stats["feed"]["stale"]
            assert stats["feed"]["locator"] == f"ndjson:{a.url}/feed"
            assert stats["feed"]["posts"] == 20 and stats["held"]["posts"] == 0
        finally:
            proc.send_signal(signal.SIGTERM)
            # uvicorn ends the process with the signal once the app has shut down
            rc = proc.wait(60)
    log = (tmp_path / "server.log").read_text()
    assert rc in (0, -signal.SIGTERM), log[-3000:]
    with open_store(home) as s:
        assert sorted(p.id for p in s.iter_posts()) == sorted(set(ids + late_ids) - {ids[5]})
    after = {s["source"]: s for s in read_stats(state_folder(home), time.time())}
    assert after.keys() == {"feed", "held"}
    assert not after["feed"]["connected"] and after["feed"]["connected_since"] is None
    assert not after["held"]["connected"] and after["held"]["posts"] == 10
    # and as `townsquare stats` shows them
    r = CliRunner().invoke(app, ["stats", "--home", str(home), "--json"], env=clean_env())
    assert r.exit_code == 0, r.output
    assert {s["source"]: s["connected"] for s in json.loads(r.stdout)["follow"]} == {
        "feed": False, "held": False}


@pytest.mark.parametrize("specs, named", [
    (["ndjson"], "--follow 'ndjson'"),                             # no URL
    (["bluesky --late-every 5"], "--late-every"),                  # an option of the command
    (["bluesky --token-env T"], "--token-env"),
    (["x --nonsense"], "--nonsense"),
    (["bluesky", "bluesky wss://jetstream1.example/subscribe"], "two sources named 'bluesky'"),
    (['mastodon "https://m.example'], "--follow 'mastodon"),       # an unclosed quote
])
def test_bad_follow_words_are_one_line_errors(tmp_path, specs, named):
    args = [a for s in specs for a in ("--follow", s)]
    r = CliRunner().invoke(app, ["serve", "--home", str(tmp_path), "--no-auth", *args],
                           env=clean_env())
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and "Traceback" not in r.output
    assert named in r.output

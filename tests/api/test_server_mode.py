"""Server mode: two API workers and two ingesting clients on one PostgreSQL store.

No post may be lost or duplicated, every worker must see every post (whichever worker took it),
and both workers must show the same stories (the leader computes them, the other loads them).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.api.conftest import EVENTS, _iso, start_server, stop_server

pytestmark = pytest.mark.slow

BASE = 1_600_000_000_000_000_000
T0 = 1_700_000_000_000
PER_CLIENT, BATCH = 600, 50


def _batch(client: int, start: int) -> list[dict]:
    """Posts with ids unique to this client, plus one id that both clients send (the same post
    twice must stay one post). The events' texts recur so that stories form."""
    texts = [t for ts in EVENTS.values() for t in ts]
    out = []
    for i in range(start, start + BATCH):
        n = client * PER_CLIENT + i
        out.append({"id": str(BASE + n), "text": f"{texts[n % len(texts)]} (update {n})",
                    "created_at": _iso(T0 + n * 1000), "author_id": str(1000 + n % 97),
                    "lang": "en"})
    out.append({"id": str(BASE + 10_000 + start), "text": "both clients send this post",
                "created_at": _iso(T0), "author_id": "7", "lang": "en"})
    return out


def _all_ids(c: httpx.Client, q: str) -> list[int]:
    ids, cursor = [], None
    while True:
        params = {"q": q, "mode": "latest", "limit": 100, **({"cursor": cursor} if cursor else {})}
        r = c.get("/v1/search", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [int(h["id"]) for h in body["results"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids


def test_two_workers_two_clients_lose_and_duplicate_nothing(pg_url, tmp_path):
    env = {**os.environ, "TOWNSQUARE_STORE": pg_url}
    subprocess.run([sys.executable, "-m", "townsquare", "migrate", "--home", str(tmp_path)],
                   env=env, check=True, capture_output=True, timeout=120)
    for i in range(2):                               # each worker's own home: keys, logs
        (tmp_path / f"w{i}").mkdir()
    workers = [start_server(tmp_path / f"w{i}", "--no-auth", "--backend", "extractive",
                            "--no-embed", env={"TOWNSQUARE_STORE": pg_url}) for i in range(2)]
    try:
        urls = [u for _, u, _ in workers]
        errors: list[str] = []

        def ingest(client: int) -> None:
            # Each client alternates between the workers, batch by batch.
            with httpx.Client(timeout=60) as c:
                for k, start in enumerate(range(0, PER_CLIENT, BATCH)):
                    r = c.post(urls[(client + k) % 2] + "/v1/posts", json=_batch(client, start))
                    if r.status_code != 200:
                        errors.append(r.text)

        threads = [threading.Thread(target=ingest, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        expected = {BASE + n for n in range(2 * PER_CLIENT)}
        shared = {BASE + 10_000 + s for s in range(0, PER_CLIENT, BATCH)}
        for url in urls:                 # every worker sees every post, once
            with httpx.Client(base_url=url, timeout=60) as c:
                assert c.get("/v1/stats").json()["posts"] == len(expected) + len(shared)
                for pid in sorted(expected | shared):
                    r = c.get(f"/v1/posts/{pid}")
                    assert r.status_code == 200 and r.json()["id"] == str(pid), r.text
                # and search finds them there (near-duplicates collapse into one hit per group,
                # so at least one per distinct event text, however far linking has got)
                ids = _all_ids(c, "update")
                n_texts = sum(len(ts) for ts in EVENTS.values())
                assert len(ids) == len(set(ids)) and set(ids) <= expected and len(ids) >= n_texts
                assert set(_all_ids(c, '"both clients send this post"')) <= shared
        leaders = []
        for url in urls:
            with httpx.Client(base_url=url, timeout=60) as c:
                leaders.append(c.get("/v1/stats").json()["server_mode"]["background_leader"])
        assert sorted(leaders) == [False, True]          # exactly one runs the background work
        # One worker computed the stories; the other shows the same ones.
        deadline = time.time() + 120
        while True:
            views = []
            for url in urls:
                with httpx.Client(base_url=url, timeout=60) as c:
                    body = c.get("/v1/stories", params={"all": "true", "limit": 100}).json()
                    views.append(sorted((s["id"], s["posts"]) for s in body["stories"]))
            if views[0] and views[0] == views[1] and sum(n for _, n in views[0]) > 0:
                break
            assert time.time() < deadline, f"workers disagree on stories: {views}"
            time.sleep(1.0)
    finally:
        for proc, _, _ in workers:
            stop_server(proc)


def test_a_keys_rate_limit_holds_across_workers(pg_url, tmp_path):
    import shutil
    env = {**os.environ, "TOWNSQUARE_STORE": pg_url}
    homes = [tmp_path / "w0", tmp_path / "w1"]
    for h in homes:
        h.mkdir()
    key = subprocess.run([sys.executable, "-m", "townsquare", "keys", "create", "--scope", "read",
                          "--rate", "3", "--home", str(homes[0])], env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout.strip()
    shutil.copy(homes[0] / "keys.db", homes[1] / "keys.db")     # the same keys on both machines
    workers = [start_server(h, "--backend", "extractive", "--no-embed",
                            env={"TOWNSQUARE_STORE": pg_url}) for h in homes]
    try:
        codes = []
        for i in range(5):                   # alternate: each worker alone would allow 3
            r = httpx.get(workers[i % 2][1] + "/v1/search", params={"q": "x"},
                          headers={"Authorization": f"Bearer {key}"}, timeout=60)
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 429, 429]
        assert int(r.headers["retry-after"]) >= 1
    finally:
        for proc, _, _ in workers:
            stop_server(proc)

"""The single writer: group commit loses nothing and reports each request's own statuses."""
from __future__ import annotations

import threading

from townsquare.api.writequeue import WriteQueue
from townsquare.posts import Post
from townsquare.store import open_store
from townsquare.store.base import Quarantined, Stored

BASE = 1_212_092_628_029_698_048


def _posts(start: int, n: int) -> list[Stored]:
    return [Stored(Post(id=BASE + i, text=f"post {i}", source="api").normalized())
            for i in range(start, start + n)]


def test_concurrent_writers_lose_nothing_and_get_their_own_statuses(tmp_path):
    q = WriteQueue(open_store(tmp_path / "t.db"), max_group=1000)
    results = {}

    def client(k: int):
        futs = [q.write(_posts(k * 1000 + j * 50, 50)) for j in range(20)]
        results[k] = [f.result(timeout=60) for f in futs]
    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, rs in results.items():
        assert all(r.inserted == 50 and len(r.statuses) == 50 for r in rs)
        assert all(BASE + k * 1000 <= pid < BASE + (k + 1) * 1000
                   for r in rs for pid in r.statuses)
    assert q.transactions < 80                    # requests were grouped
    q.close()
    with open_store(tmp_path / "t.db") as s:
        assert s.count() == 4000


def test_statuses_updated_unchanged_deleted_and_quarantine(tmp_path):
    q = WriteQueue(open_store(tmp_path / "t.db"))
    assert q.write(_posts(0, 2)).result().inserted == 2
    assert q.delete([BASE]).result() == 1
    changed = [Stored(Post(id=BASE + 1, text="post 1, edited", source="api").normalized())]
    r = q.write(_posts(0, 1) + changed,
                [Quarantined("api", "POST /v1/posts", 3, "id: missing")]).result()
    assert r.statuses == {BASE: "deleted", BASE + 1: "updated"}
    assert (r.skipped_deleted, r.updated, r.quarantined) == (1, 1, 1)
    assert q.call(lambda s: s.count()).result() == 1
    q.close()


def test_a_failed_transaction_fails_its_requests_only(tmp_path):
    q = WriteQueue(open_store(tmp_path / "t.db"))
    boom = q.call(lambda s: 1 / 0)
    ok = q.write(_posts(0, 3))
    try:
        boom.result()
        raise AssertionError("expected ZeroDivisionError")
    except ZeroDivisionError:
        pass
    assert ok.result().inserted == 3
    q.close()

"""``api.statscache.StoreCounts``: /v1/stats's scans read anew while cheap, from a copy of
bounded age beyond (a real SQLite store; a clock the tests move)."""
from __future__ import annotations

import threading

import pytest

from townsquare.api.statscache import StoreCounts
from townsquare.posts import Post
from townsquare.store import open_store
from townsquare.store.base import Stored

A = 1212092628029698048


def _write(store, n: int, start: int = 0) -> None:
    store.write_batch([Stored(Post(id=A + start + i, text=f"post {i}", source="s1",
                                   lang="en").normalized(),
                              "f.csv", i + 1) for i in range(n)], [])


class Clock:
    def __init__(self):
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def target(tmp_path):
    return str(tmp_path / "t.db")


def test_cheap_counts_are_read_anew_at_every_request(target):
    with open_store(target) as store:
        counts = StoreCounts(lambda: open_store(target))
        _write(store, 2)
        assert counts.get(store)[0]["by_lang"] == {"en": 2}
        _write(store, 3, start=2)
        got, about = counts.get(store)
        assert got == store.stats_counts() and got["by_lang"] == {"en": 5}
        assert about["age_s"] == 0.0 and about["refreshing"] is False


def test_costly_counts_come_from_a_copy_refreshed_on_a_thread_once_too_old(target):
    clock = Clock()
    opened, gate = [], threading.Event()

    def open_one():
        opened.append(1)
        gate.wait(10)                       # the refresh holds until the test lets it go
        return open_store(target)
    with open_store(target) as store:
        # inline_s 0: every read counts as costly (as a store of millions of posts is)
        counts = StoreCounts(open_one, inline_s=0.0, min_age_s=10.0, clock=clock)
        _write(store, 2)
        assert counts.get(store)[0]["by_lang"] == {"en": 2}      # no copy yet: read now
        assert opened == []
        _write(store, 3, start=2)
        clock.t += 5
        got, about = counts.get(store)                            # younger than 10 s: the copy
        assert got["by_lang"] == {"en": 2} and about["age_s"] == 5.0
        assert not about["refreshing"] and opened == []
        clock.t += 6
        got, about = counts.get(store)              # 11 s old: served, and a refresh starts
        assert got["by_lang"] == {"en": 2} and about["refreshing"] is True
        assert counts.get(store)[1]["refreshing"] is True      # no second refresh meanwhile
        gate.set()
        counts.wait(10)
        got, about = counts.get(store)
        assert got["by_lang"] == {"en": 5} and about["age_s"] == 0.0 and opened == [1]
        assert about["as_of"].endswith("Z")


def test_the_copy_may_age_in_proportion_to_what_a_read_costs(target):
    counts = StoreCounts(lambda: open_store(target), min_age_s=10.0, duty=0.05)
    counts._took = 2.0                    # a read of 2 s: at most one every 40 s (5% of a core)
    assert counts.max_age_s() == 40.0
    counts._took = 0.1
    assert counts.max_age_s() == 10.0


def test_a_first_request_waits_for_the_first_copy_rather_than_scanning_again(target):
    gate, opened = threading.Event(), []

    def slow_open():
        opened.append(1)
        gate.wait(10)
        return open_store(target)
    with open_store(target) as store:
        _write(store, 2)
        counts = StoreCounts(slow_open, inline_s=0.0)
        counts.refresh()                            # as the server does when it starts
        got = []
        t = threading.Thread(target=lambda: got.append(counts.get(store)))
        t.start()
        t.join(0.2)
        assert t.is_alive()                         # waiting for the refresh, not scanning
        gate.set()
        t.join(10)
        assert got[0][0]["by_lang"] == {"en": 2} and opened == [1]


def test_one_refresh_at_a_time(target):
    gate = threading.Event()

    def slow_open():
        gate.wait(10)
        return open_store(target)
    with open_store(target):
        counts = StoreCounts(slow_open)
        assert counts.refresh() is True
        assert counts.refresh() is False            # one is running
        gate.set()
        counts.wait(10)
        assert counts.refresh() is True
        counts.wait(10)


def test_a_failed_refresh_keeps_the_copy_and_waits_before_trying_again(target):
    clock = Clock()
    tries = []

    def broken():
        tries.append(1)
        raise OSError("disk gone")
    with open_store(target) as store:
        _write(store, 1)
        counts = StoreCounts(broken, inline_s=0.0, min_age_s=10.0, clock=clock)
        assert counts.get(store)[0]["by_lang"] == {"en": 1}
        clock.t += 11
        counts.get(store)
        counts.wait(10)
        assert tries == [1] and counts.failures == 1
        got, about = counts.get(store)                      # no new try within 10 s
        counts.wait(10)
        assert tries == [1] and got["by_lang"] == {"en": 1} and about["age_s"] == 11.0
        clock.t += 11
        counts.get(store)
        counts.wait(10)
        assert tries == [1, 1]


@pytest.mark.parametrize("kw", [{"inline_s": -1}, {"min_age_s": -1}, {"duty": 0}, {"duty": 2}])
def test_bad_settings_are_refused(kw, target):
    with pytest.raises(ValueError):
        StoreCounts(lambda: open_store(target), **kw)

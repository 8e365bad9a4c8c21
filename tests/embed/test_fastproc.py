"""``embed.fastproc``: a model in a child process of its own answers as it would here, reports
its errors, survives its child's death (the call it was serving fails, the next one starts
another) and ends its child when closed."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from townsquare.embed.fastproc import ProcessEmbedder, UnseenProcessEmbedder


class Letters:
    """A toy model (importable, so a spawned child can build it): a text's vector counts its
    letters a to d, normalized; ``unseen`` is the share of its characters outside a to d."""

    name, dim = "letters", 4

    def __init__(self, fail: str | None = None):
        if fail == "load":
            raise ValueError("no table here")
        self.fail = fail

    def passages(self, texts):
        if self.fail == "call" and "boom" in texts:
            raise KeyError("boom")
        if self.fail == "hang" and "wait" in texts:
            time.sleep(120)
        out = np.array([[t.count(c) for c in "abcd"] for t in texts], dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)   # (n, 4)

    def query(self, text):
        return self.passages([text])[0]

    def passages_and_unseen(self, texts):
        unseen = np.array([sum(c not in "abcd" for c in t) / max(len(t), 1) for t in texts],
                          dtype=np.float32)
        return self.passages(texts), unseen


TEXTS = ["abba", "cab", "dad", "xyz", ""]


@pytest.fixture
def child():
    emb = UnseenProcessEmbedder(Letters, name="letters", dim=4, start_timeout_s=60)
    yield emb
    emb.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_model_in_its_own_process_answers_as_it_does_here(child):
    here = Letters()
    assert child.pid is not None and child.pid != os.getpid()
    np.testing.assert_array_equal(child.passages(TEXTS), here.passages(TEXTS))
    vecs, unseen = child.passages_and_unseen(TEXTS)
    want_vecs, want_unseen = here.passages_and_unseen(TEXTS)
    np.testing.assert_array_equal(vecs, want_vecs)
    np.testing.assert_array_equal(unseen, want_unseen)
    np.testing.assert_array_equal(child.query("bad"), here.query("bad"))
    assert child.passages([]).shape == (0, 4)
    assert [a.shape for a in child.passages_and_unseen([])] == [(0, 4), (0,)]
    assert (child.name, child.dim, child.space) == ("letters", 4, None)


def test_a_model_that_fails_to_load_says_why_at_once():
    with pytest.raises(RuntimeError, match="ValueError: no table here"):
        ProcessEmbedder(Letters, ("load",), name="letters", dim=4, start_timeout_s=60)


def test_an_error_in_a_call_is_raised_here_and_the_child_goes_on():
    emb = ProcessEmbedder(Letters, ("call",), name="letters", dim=4, start_timeout_s=60)
    try:
        with pytest.raises(RuntimeError, match="KeyError"):
            emb.passages(["boom"])
        assert emb.passages(["ab"]).shape == (1, 4) and emb.starts == 1
    finally:
        emb.close()


def test_a_child_that_dies_fails_its_call_and_the_next_starts_another(child):
    first = child.pid
    os.kill(first, signal.SIGKILL)                  # its end of the pipe closes with it
    with pytest.raises(RuntimeError, match="process ended"):
        child.passages(["ab"])
    assert child.pid is None
    np.testing.assert_array_equal(child.passages(TEXTS), Letters().passages(TEXTS))
    assert child.starts == 2 and child.pid not in (None, first)


def test_closing_ends_the_child_and_later_calls_fail(child):
    pid = child.pid
    child.close()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    with pytest.raises(RuntimeError, match="closed"):
        child.passages(["ab"])
    child.close()                                   # idempotent


def test_settings_are_validated_before_any_process_starts():
    with pytest.raises(ValueError, match="dim"):
        ProcessEmbedder(Letters, name="letters", dim=0)
    with pytest.raises(ValueError, match="start_timeout_s"):
        ProcessEmbedder(Letters, name="letters", dim=4, start_timeout_s=0)


def test_closing_does_not_wait_for_a_child_that_hangs():
    """A server's shutdown closes the fast tier while its thread may be waiting on the child:
    a child that never answers is killed, and the waiting call fails."""
    import threading
    emb = ProcessEmbedder(Letters, ("hang",), name="letters", dim=4, start_timeout_s=60)
    errors: list[Exception] = []

    def waiting():
        try:
            emb.passages(["wait"])
        except RuntimeError as e:
            errors.append(e)
    t = threading.Thread(target=waiting)
    t.start()
    time.sleep(0.5)                                 # the call is in flight
    t0 = time.monotonic()
    emb.close()
    t.join(10)
    assert time.monotonic() - t0 < 10 and not t.is_alive()
    assert len(errors) == 1 and "process ended" in str(errors[0])

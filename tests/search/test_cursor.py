"""Search cursors come back from the client: whatever a forged one holds (a field missing, of the
wrong type, out of range, or unknown), ``SearchEngine.run`` raises ``SearchError``, never
``KeyError``, ``TypeError`` or a store error (which the API would answer with a 500)."""
from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from townsquare.posts import Post
from townsquare.search.engine import SearchEngine, SearchError
from townsquare.store.base import Stored
from townsquare.store.sqlite import SQLiteStore

BASE = 1_212_092_628_029_698_048
T0 = 1_600_000_000_000
QUERY = "flood"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    store = SQLiteStore(tmp_path_factory.mktemp("cursor") / "t.db")
    store.write_batch([Stored(Post(id=BASE + i, source="t", text=f"flood report number {i}",
                                   created_at=T0 + i * 60_000, author_handle=f"a{i}").normalized())
                       for i in range(12)], [])
    yield SearchEngine(store)
    store.close()


def encode(d) -> str:
    # the stdlib's dumps: it writes what a forger may send (integers past 64 bits, NaN)
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


def decode(cursor: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def state(engine, mode: str) -> dict:
    """What a real cursor of ``mode`` for ``QUERY`` carries (to forge from)."""
    c = engine.run(QUERY, mode=mode, limit=2).next_cursor
    assert c is not None
    return decode(c)


@pytest.mark.parametrize("mode", ["top", "latest"])
def test_a_real_cursor_and_its_re_encoding_still_page(engine, mode):
    d = state(engine, mode)
    assert set(d) == ({"v", "f", "s", "n", "o", "r"} if mode == "top" else {"v", "f", "s", "n", "b"})
    assert len(engine.run(QUERY, mode=mode, limit=2, cursor=encode(d)).results) == 2


def _forgeries(d: dict) -> list:
    # each field a cursor always has, missing ("o" and "b" are absent from a first page's state)
    out = [{k: v for k, v in d.items() if k != key} for key in ("v", "f", "s", "n")]
    for key in ("v", "s", "n", "o", "b", "r"):
        for bad in ("9", None, 1.5, True, [], {}, -1, 2**63, 2**70, float("nan")):
            out.append({**d, key: bad})
    out += [{**d, "b": [1]}, {**d, "b": [1, 2, 3]}, {**d, "b": ["1", 2]}, {**d, "b": [1, 2**64]},
            {**d, "b": [True, 1]}, {**d, "b": "12"}, {**d, "f": 7}, {**d, "extra": 0},
            {**d, "n": 253_402_300_800_000}, [d], "cursor", 12, None]
    return out


@pytest.mark.parametrize("mode", ["top", "latest"])
def test_every_forged_field_is_a_search_error(engine, mode):
    real = state(engine, mode)
    for forged in _forgeries(real):
        with pytest.raises(SearchError, match="cursor"):
            engine.run(QUERY, mode=mode, limit=2, cursor=encode(forged))


@pytest.mark.parametrize("mode", ["top", "latest"])
def test_a_field_of_the_other_mode_is_refused(engine, mode):
    other = {"top": ("b", [T0, BASE]), "latest": ("o", 2)}[mode]
    with pytest.raises(SearchError, match="not a cursor"):
        engine.run(QUERY, mode=mode, cursor=encode({**state(engine, mode), other[0]: other[1]}))


@pytest.mark.parametrize("mode", ["top", "latest"])
def test_the_largest_values_a_cursor_may_hold_are_served(engine, mode):
    d = {**state(engine, mode), "s": 2**63 - 1, "n": 253_402_300_799_999}
    d.update({"o": 2**63 - 1} if mode == "top" else {"b": [2**63 - 1, -(2**63)]})
    r = engine.run(QUERY, mode=mode, limit=2, cursor=encode(d))
    # top: an offset past every result; latest: every post is before the largest (time, id)
    assert len(r.results) == (0 if mode == "top" else 2)


def test_garbage_that_is_not_base64_json_is_a_search_error(engine):
    for cursor in ("!!!", "e30", encode([1, 2]), "eyJ2Ijox", "\u00e9t\u00e9", "A" * 2000):
        with pytest.raises(SearchError):
            engine.run(QUERY, cursor=cursor)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=3), kids, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.sampled_from(["top", "latest"]),
       changes=st.dictionaries(st.sampled_from(["v", "f", "s", "n", "o", "b", "x"]), _JSON,
                               max_size=3),
       dropped=st.sets(st.sampled_from(["v", "f", "s", "n", "o", "b"]), max_size=2))
def test_any_tampered_cursor_pages_or_is_a_search_error(engine, mode, changes, dropped):
    d = {k: v for k, v in {**state(engine, mode), **changes}.items() if k not in dropped}
    try:
        engine.run(QUERY, mode=mode, limit=2, cursor=encode(d))
    except SearchError:
        pass


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=80) | _JSON.map(lambda v: json.dumps(v).encode()))
def test_any_random_cursor_is_a_search_error(engine, raw):
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if not cursor:
        return
    with pytest.raises(SearchError):
        engine.run(QUERY, cursor=cursor)

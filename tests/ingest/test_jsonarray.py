"""Issue 17, group 7 (JSON part): a ``.json`` array streams item by item, and a truncated one keeps
the valid posts before the truncation (quarantined with its item number and line)."""
from __future__ import annotations

import io
import itertools

import orjson

from townsquare.ingest.jsonarray import iter_array
from townsquare.ingest.pipeline import IngestPipeline
from townsquare.store.sqlite import SQLiteStore

from ..conftest import FIXTURES

BASE = 1212092628029698048


def _tweet(i: int) -> dict:
    return {"id": str(BASE + i), "text": f"post {i}: water rising on [Main] st, {{sandbags}}",
            "created_at": "2019-12-31T18:30:00.000Z", "entities": {"hashtags": [{"tag": "x"}]}}


class Endless(io.TextIOBase):
    """A JSON array that never ends, made on demand: read whole, it would never return."""

    def __init__(self):
        self.items = (orjson.dumps(_tweet(i)).decode() + ",\n" for i in itertools.count())
        self.chars_read = 0

    def read(self, n: int = -1) -> str:
        out = "[" if self.chars_read == 0 else ""
        while len(out) < n:
            out += next(self.items)
        self.chars_read += len(out)
        return out


def test_an_array_is_read_item_by_item():
    stream = Endless()
    first = list(itertools.islice(iter_array(stream), 5))
    assert [i.value["id"] for i in first] == [str(BASE + i) for i in range(5)]
    assert stream.chars_read < 3 << 20          # a chunk or two, not the (endless) file


def test_a_truncated_array_keeps_the_posts_before_the_cut(tmp_path):
    text = orjson.dumps([_tweet(i) for i in range(5)], option=orjson.OPT_INDENT_2).decode()
    cut = text.index(str(BASE + 3)) + 5           # inside the 4th item
    f = tmp_path / "cut.json"
    f.write_text(text[:cut])
    store = SQLiteStore(tmp_path / "t.db")
    r = IngestPipeline(store).run([f])
    assert [p.id - BASE for p in store.iter_posts()] == [0, 1, 2]    # all were lost before
    assert r.totals.quarantined == 1
    (q,) = store.quarantine_items()
    brace = text.rindex("{", 0, text.index(str(BASE + 3)))        # where the 4th item starts
    assert q.line == 4
    assert q.reason == (f"json: the file ends inside item 4 (line {text[:brace].count(chr(10)) + 1}"
                        "): the array is cut off there; the 3 items before it were read")


def test_a_bad_item_costs_that_item_only(tmp_path):
    # 1e400 stops ijson's C backend for the rest of the file; here it is item 2's error alone.
    items = [orjson.dumps(_tweet(i)).decode() for i in range(4)]
    items[1] = items[1].replace('"created_at"', '"n": 1e400, "created_at"')
    items[2] = '{"id": "12", "text": tru}'
    f = tmp_path / "a.json"
    f.write_text("[" + ",".join(items) + "]  ")
    store = SQLiteStore(tmp_path / "t.db")
    r = IngestPipeline(store).run([f])
    assert [p.id - BASE for p in store.iter_posts()] == [0, 3]
    reasons = {q.line: q.reason for q in store.quarantine_items()}
    assert set(reasons) == {2, 3} and all(r.startswith("json: item ") for r in reasons.values())
    assert r.totals.quarantined == 2


def test_structure_errors_between_items_are_reported_where_they_are():
    def errors(text: str) -> list[tuple[int, str]]:
        return [(i.number, i.error.split(" (")[0]) for i in iter_array(io.StringIO(text))
                if i.error]

    assert errors('[{"a": 1},,{"b": 2}]') == [(2, "json: item 2")]          # empty item
    assert errors('[{"a": 1}, {"b": 2},]') == []                            # trailing comma
    assert errors('[{"a": 1}] x') == [(2, "json: text after the array's closing ']'")]
    assert errors('[{"a": 1}, {"b": 2}') == [
        (3, "json: the file ends after item 2 without the array's closing ']'")]
    assert errors('[{"a": 1}, 12') == [(2, "json: the file ends inside item 2")]  # 12 or 123?
    assert errors('{"a": 1}') == [(1, "json: not an array")]


def test_an_item_too_big_to_be_a_post_is_skipped_without_being_held():
    big = '{"text": "' + "x" * 5000 + '", "more": [' + ", ".join(["1"] * 2000) + "]}"
    items = list(iter_array(io.StringIO(f'[{{"id": 1}}, {big}, {{"id": 3}}]'),
                            max_item_chars=1000))
    assert [i.value for i in items] == [{"id": 1}, None, {"id": 3}]
    assert items[1].error == "json: item 2 (line 1) is longer than 1,000 characters: not a post"


def test_an_archive_cut_off_keeps_its_first_tweets(tmp_path):
    src = (FIXTURES / "archive" / "data" / "tweets.js").read_text()
    d = tmp_path / "data"
    d.mkdir()
    (d / "account.js").write_text((FIXTURES / "archive" / "data" / "account.js").read_text())
    (d / "tweets.js").write_text(src[:src.rindex('"tweet"')])   # the last tweet cut off
    store = SQLiteStore(tmp_path / "t.db")
    r = IngestPipeline(store).run([d])
    assert store.count() == 2 and r.totals.quarantined == 1
    assert all(p.author_handle for p in store.iter_posts())

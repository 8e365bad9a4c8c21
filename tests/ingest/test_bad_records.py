"""Issue 17, group 4 (per record) and group 1 (the text cap): a value no post can hold is the
record's quarantine entry (file, line, field, reason), never a crash that loses the good posts
beside it; and the HTTP ingest path applies the same rules (it validates through ``Post``)."""
from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from townsquare.api.ingestbody import parse_body
from townsquare.cli import app
from townsquare.ingest.pipeline import IngestPipeline
from townsquare.posts import MAX_TEXT_CHARS
from townsquare.store.sqlite import SQLiteStore

BASE = 1212092628029698048
runner = CliRunner()


def _v2(i: int, **kw) -> dict:
    return {"id": str(BASE + i), "text": f"post {i} about the flood", **kw}


def _jsonl(path, objs) -> None:
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in objs))


def _quarantine(store) -> dict[int, str]:
    return {q.line: q.reason for q in store.quarantine_items()}


# Values that crashed a reader or the store before (OverflowError, ValueError, TypeError), each
# with the field its quarantine reason must name.
BAD_V2 = [
    ({"created_at": 1e30}, "created_at"),
    ({"created_at": -1e30}, "created_at"),
    ({"created_at": "99999999999999999999999"}, "created_at"),
    ({"public_metrics": {"like_count": 1 << 63}}, "like_count"),
    ({"public_metrics": {"retweet_count": -5}}, "retweet_count"),
    ({"geo": {"coordinates": {"coordinates": [1e308, 0]}}}, "coordinates"),
    ({"author_id": "99999999999999999999"}, "author_id"),
    ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "text"),
]


def test_bad_numbers_and_a_huge_text_are_quarantined_and_the_good_posts_stored(tmp_path):
    objs = [_v2(0)]
    for i, (kw, _field) in enumerate(BAD_V2, 1):
        objs.append(_v2(i, **kw))
    objs.append(_v2(99))
    f = tmp_path / "mixed.jsonl"
    _jsonl(f, objs)
    store = SQLiteStore(tmp_path / "t.db")
    r = IngestPipeline(store).run([f])
    assert (r.totals.inserted, r.totals.quarantined) == (2, len(BAD_V2))
    assert store.get(BASE) is not None and store.get(BASE + 99) is not None
    reasons = _quarantine(store)
    for line, (_kw, field) in enumerate(BAD_V2, 2):
        assert reasons[line].startswith(field + ":"), (line, reasons[line])
    assert all(q.file == str(f.resolve()) for q in store.quarantine_items())


def test_the_same_in_v1_objects_csv_rows_and_townsquare_exports(tmp_path):
    v1 = tmp_path / "v1.jsonl"
    _jsonl(v1, [{"id_str": str(BASE + 1), "text": "ok", "created_at": "Tue Dec 31 18:30:00 +0000 2019"},
                {"id_str": str(BASE + 2), "text": "bad", "created_at": 1e30},
                {"id_str": str(BASE + 3), "text": "bad", "favorite_count": 1e300},
                {"id_str": str(BASE + 4), "text": "bad", "retweet_count": "²"},
                {"id_str": str(BASE + 5), "text": "bad",
                 "coordinates": {"coordinates": [18446744073709551615, 1]}},
                {"id_str": str(BASE + 6), "text": "bad", "entities": "not an object",
                 "extended_entities": [1]},
                {"id_str": str(BASE + 7), "text": "ok too"}])
    csv = tmp_path / "t.csv"
    csv.write_text("id,text,created_at,retweet_count,lat,lon\n"
                   f"{BASE + 10},fine,,,,\n"
                   f"{BASE + 11},bad,1e30,,,\n"
                   f"{BASE + 12},bad,,²,,\n"
                   f"{BASE + 13},bad,,{'9' * 30},,\n"
                   f"{BASE + 14},bad,,,inf,1\n"
                   f"{BASE + 15},fine too,,,,\n")
    export = tmp_path / "export.jsonl"
    good = {"id": str(BASE + 20), "text": "x", "source": "s", "hashtags": [], "lat": None,
            "lon": None}
    _jsonl(export, [good, {**good, "id": str(BASE + 21), "lat": "north", "lon": 1},
                    {**good, "id": str(BASE + 22), "hashtags": "flood"}])
    store = SQLiteStore(tmp_path / "t.db")
    r = IngestPipeline(store).run([v1, csv, export])
    stored = sorted(p.id - BASE for p in store.iter_posts())
    assert stored == [1, 6, 7, 10, 15, 20]       # (6: the wrong-typed entities read as absent)
    assert r.totals.quarantined == 4 + 4 + 2
    by_file = {}
    for q in store.quarantine_items(100):
        by_file.setdefault(q.file.rsplit("/", 1)[1], []).append((q.line, q.reason.split(":")[0]))
    assert sorted(by_file["v1.jsonl"]) == [(2, "created_at"), (3, "like_count"),
                                           (4, "retweet_count"), (5, "coordinates")]
    assert sorted(by_file["t.csv"]) == [(3, "created_at"), (4, "retweet_count"),
                                        (5, "retweet_count"), (6, "coordinates")]
    assert sorted(by_file["export.jsonl"]) == [(2, "coordinates"), (3, "hashtags")]


def test_cli_ingest_of_a_file_with_an_overflowing_time_exits_0_with_the_good_posts(tmp_path):
    # The report: created_at 1e30 raised OverflowError, exit 1, the valid posts lost.
    f = tmp_path / "p.jsonl"
    _jsonl(f, [_v2(1), _v2(2, created_at=1e30), _v2(3)])
    home = str(tmp_path / "h")
    r = runner.invoke(app, ["ingest", str(f), "--home", home, "--no-late", "--json"])
    assert r.exit_code == 0, r.output
    res = orjson.loads(r.stdout)
    assert (res["inserted"], res["quarantined"]) == (2, 1)
    r = runner.invoke(app, ["ingest", str(f), "--home", home, "--no-late", "--strict"])
    assert r.exit_code == 1


def test_the_http_body_gets_the_same_rules(tmp_path):
    body = orjson.dumps({"data": [_v2(1), _v2(2, created_at=1e30),
                                  _v2(3, text="y" * (MAX_TEXT_CHARS + 1)),
                                  _v2(4, public_metrics={"like_count": 1 << 63}),
                                  _v2(5, public_metrics={"reply_count": "1e999"}), _v2(6)]})
    items = parse_body(body, "api")
    assert [i.post is not None for i in items] == [True, False, False, False, False, True]
    assert [i.error.split(":")[0] for i in items if i.error] == [
        "created_at", "text", "like_count", "reply_count"]


@pytest.mark.parametrize("n", [MAX_TEXT_CHARS, MAX_TEXT_CHARS + 1])
def test_the_text_cap_counts_characters_after_unescaping(tmp_path, n):
    # Twitter's APIs send "&amp;" for "&": a post at the cap arrives longer than the cap.
    f = tmp_path / "p.jsonl"
    _jsonl(f, [_v2(1, text="&amp;" * n)])
    store = SQLiteStore(tmp_path / "t.db")
    r = IngestPipeline(store).run([f])
    assert r.totals.inserted == (1 if n <= MAX_TEXT_CHARS else 0)

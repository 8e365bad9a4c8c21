"""``townsquare stories --at`` and ``townsquare trends --at`` on the invented 2012-2013 archive
(``tests/archive_stream.py``), and the fallback of both without ``--at``: the archive's latest
post is weeks after its last story, so "now" holds nothing."""
from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from tests.archive_stream import write
from townsquare.cli import app
from townsquare.posts import parse_time_ms

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("archive")
    home = str(tmp / "home")
    r = runner.invoke(app, ["ingest", str(write(tmp / "archive.jsonl")), "--home", home])
    assert r.exit_code == 0, r.output
    return home


def run_json(*args: str):
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return orjson.loads(r.stdout)


def terms(story: dict) -> set[str]:
    return set(story["top_terms"])


def test_stories_at_a_moment(home):
    r = run_json("stories", "--home", home, "--at", "2012-10-30T12:00:00Z")
    assert r["at"] == "2012-10-30T12:00:00.000Z" and r["fallback"] is None
    assert [("harborview" in terms(s), s["active"]) for s in r["stories"]] == [(True, True)]
    s = r["stories"][0]
    assert 0 < s["recent_posts"] <= s["posts"] == len(s["post_ids"])
    blast = run_json("stories", "--home", home, "--at", "2013-04-16")
    assert blast["stories"] and all("kestrel" in terms(s) for s in blast["stories"])
    wide = run_json("stories", "--home", home, "--at", "2013-06-01", "--recent", "30d")
    assert any("alder" in terms(s) for s in wide["stories"])           # the tornado, 12 days back
    assert run_json("stories", "--home", home, "--at", "2013-06-01")["stories"] == []


def test_stories_without_at_fall_back_to_the_latest_stories(home):
    r = run_json("stories", "--home", home)
    assert r["stories"] and r["fallback"]["reason"]
    assert r["at"] == r["fallback"]["at"] < r["fallback"]["from"]
    assert terms(r["stories"][0]) & {"flood", "quarry"}
    assert runner.invoke(app, ["stories", "--home", home]).exit_code == 0   # the human output
    # a range still prints the plain list, as before
    assert isinstance(run_json("stories", "--home", home, "--all"), list)


def test_trends_at_a_moment_and_the_fallback_without_one(home):
    storm = run_json("trends", "--home", home, "--window", "1d", "--baseline", "7",
                     "--at", "2012-10-30T12:00:00Z")
    assert storm["now"] == "2012-10-30T12:00:00.000Z" and storm["fallback"] is None
    assert "harborview" in {x for t in storm["trends"] for x in [t["label"], *t["merged"]]}
    now = run_json("trends", "--home", home)
    fb = now["fallback"]
    assert now["trends"] and fb["at"] == now["now"] < fb["from"]
    assert parse_time_ms(fb["at"]) < parse_time_ms("2013-06-24")
    assert runner.invoke(app, ["trends", "--home", home]).exit_code == 0


@pytest.mark.parametrize("args, line", [
    (["stories", "--at", "soon"], "error: --at: expected a time like 2020-01-02"),
    (["trends", "--at", "soon"], "error: --at: expected a time like 2020-01-02"),
    (["stories", "--at", "1969-07-20"], "error: --at: must be from 1970-01-01 on"),
    (["trends", "--at", "1969-07-20"], "error: --at: must be from 1970-01-01 on"),
    (["stories", "--at", "2013-01-01", "--all"], "error: --at shows one moment"),
    (["stories", "--at", "2013-01-01", "--since", "2012-01-01"], "error: --at shows one moment"),
    (["stories", "--at", "2013-01-01", "--recent", "31d"], "error: --recent: at most 30d"),
])
def test_bad_moments_are_one_line_with_exit_code_2(home, args, line):
    r = runner.invoke(app, [*args, "--home", home])
    assert r.exit_code == 2, r.output
    assert line in r.output and "Traceback" not in r.output
    assert len([x for x in r.output.splitlines() if x.strip()]) == 1

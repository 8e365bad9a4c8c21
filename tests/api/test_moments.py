"""``at=`` on ``/v1/stories`` and ``/v1/trends``, and the fallback of both without it, on the
invented 2012-2013 archive (``tests/archive_stream.py``: its latest post is weeks after its last
story). In process, through the app ``townsquare serve`` builds; bad values are a 400 or a 422
naming the parameter (``query.at`` where FastAPI's validation refuses it)."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.api.conftest import runtime_settings
from tests.archive_stream import write
from townsquare.api.app import create_app
from townsquare.api.runtime import Runtime
from townsquare.cli import app as cli
from townsquare.posts import parse_time_ms


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("archive")
    home = tmp / "home"
    r = CliRunner().invoke(cli, ["ingest", str(write(tmp / "archive.jsonl")), "--home", str(home)])
    assert r.exit_code == 0, r.output
    rt = Runtime(runtime_settings(home), start=False, embed=False)
    while rt.background.step()["stories"]:     # the background work, stepped here
        pass
    with TestClient(create_app(rt, keys=None, auth=False), raise_server_exceptions=False) as c:
        yield c
    rt.close()


def ok(c: TestClient, path: str, **params) -> dict:
    r = c.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def error(c: TestClient, path: str, status: int, **params) -> dict:
    r = c.get(path, params=params)
    assert r.status_code == status, r.text
    return r.json()["error"]


def terms(story: dict) -> set[str]:
    return set(story["top_terms"])


def test_stories_at_a_moment(client):
    r = ok(client, "/v1/stories", at="2012-10-30T12:00:00Z")
    assert r["at"] == "2012-10-30T12:00:00.000Z" and r["fallback"] is None
    assert [("harborview" in terms(s), s["active"]) for s in r["stories"]] == [(True, True)]
    assert r["stories"][0]["recent_posts"] > 0 and r["lag_posts"] == 0
    blast = ok(client, "/v1/stories", at="1366142400")                  # unix seconds: 04-16
    assert blast["stories"] and all("kestrel" in terms(s) for s in blast["stories"])
    assert ok(client, "/v1/stories", at="2013-06-01")["stories"] == []
    wide = ok(client, "/v1/stories", at="2013-06-01", recent="30d")
    assert any("alder" in terms(s) for s in wide["stories"])


def test_stories_without_at_fall_back_to_the_latest_stories(client):
    r = ok(client, "/v1/stories", limit=10)
    fb = r["fallback"]
    assert r["stories"] and fb["reason"] and r["at"] == fb["at"] < fb["from"]
    assert terms(r["stories"][0]) & {"flood", "quarry"}
    assert ok(client, "/v1/stories", all="true")["fallback"] is None


def test_trends_at_a_moment_and_the_fallback_without_one(client):
    storm = ok(client, "/v1/trends", window="1d", baseline=7, at="2012-10-30T12:00:00Z")
    assert storm["now"] == "2012-10-30T12:00:00.000Z" and storm["fallback"] is None
    assert "harborview" in {x for t in storm["trends"] for x in [t["label"], *t["merged"]]}
    now = ok(client, "/v1/trends")
    fb = now["fallback"]
    assert now["trends"] and fb["at"] == now["now"] < fb["from"]
    assert parse_time_ms(fb["at"]) < parse_time_ms("2013-06-24")


@pytest.mark.parametrize("path", ["/v1/stories", "/v1/trends"])
@pytest.mark.parametrize("at, code, param", [
    ("soon", "invalid_time", "at"),
    ("1969-07-20", "invalid_time", "at"),                          # before the epoch
    ("10000-01-01", "invalid_time", "at"),                         # past year 9999
    ("2013-02-30", "invalid_time", "at"),
    ("2013-04-15T18:00:00Z" + " " * 21, "invalid_parameter", "query.at"),   # over 40 characters
])
def test_a_bad_moment_is_a_400_naming_the_parameter(client, path, at, code, param):
    e = error(client, path, 400, at=at)
    assert (e["code"], e["param"]) == (code, param)


@pytest.mark.parametrize("params", [{"at": "2013-01-01", "all": "true"},
                                    {"at": "2013-01-01", "since": "2012-01-01"}])
def test_a_moment_and_a_range_together_are_refused(client, params):
    assert error(client, "/v1/stories", 400, **params)["param"] == "at"


@pytest.mark.parametrize("recent, param", [("31d", "recent"), ("soon", "query.recent"),
                                           ("0h", "query.recent")])
def test_the_recent_span_is_bounded(client, recent, param):
    assert error(client, "/v1/stories", 400, at="2013-01-01", recent=recent)["param"] == param

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from townsquare.cli import app

from .conftest import FIXTURES

runner = CliRunner()


def test_ingest_stats_delete_export_with_home(tmp_path):
    home = str(tmp_path / "h")
    r = runner.invoke(app, ["ingest", str(FIXTURES), "--home", home, "--json"])
    assert r.exit_code == 0, r.output
    res = orjson.loads(r.stdout)
    assert res["inserted"] == 16 and res["late_stage"]["processed"] == 16
    s = orjson.loads(runner.invoke(app, ["stats", "--home", home, "--json"]).stdout)
    assert s["posts"] == 16 and s["late_stage"]["pending_posts"] == 0
    assert set(s["by_lang"]) >= {"en", "fr", "es"}
    r = runner.invoke(app, ["delete", "1647181156468154369", "--home", home])
    assert r.exit_code == 0 and "deleted 1 of 1" in r.stdout
    out = tmp_path / "e.jsonl"
    r = runner.invoke(app, ["export", "--home", home, "-o", str(out)])
    assert r.exit_code == 0 and len(out.read_text().splitlines()) == 15


def test_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TOWNSQUARE_HOME", str(tmp_path / "env"))
    r = runner.invoke(app, ["ingest", str(FIXTURES / "v1_sample.json"), "--no-late"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "env" / "townsquare.db").exists()


def test_strict_exits_nonzero_only_when_something_was_quarantined(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\nnope,hello\n1212092628029698048,fine\n")
    home = str(tmp_path / "h")
    assert runner.invoke(app, ["ingest", str(bad), "--home", home, "--no-late"]).exit_code == 0
    r = runner.invoke(app, ["ingest", str(bad), "--home", home, "--no-late", "--strict"])
    assert r.exit_code == 1
    q = orjson.loads(runner.invoke(app, ["quarantine", "--home", home, "--json"]).stdout)
    assert [(i["line"], i["reason"]) for i in q] == [(2, "id: not a numeric id: 'nope'")]


def test_clear_errors_for_bad_arguments(tmp_path):
    r = runner.invoke(app, ["ingest", str(tmp_path / "missing"), "--home", str(tmp_path)])
    assert r.exit_code == 2 and "no such file or folder" in r.output
    r = runner.invoke(app, ["ingest", str(FIXTURES), "--format", "xml", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "unknown format" in r.output
    r = runner.invoke(app, ["delete", "abc", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "not a numeric id" in r.output

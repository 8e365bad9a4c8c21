"""The ads commands end to end: demo catalog, serving with its why, profiles and minors."""
from __future__ import annotations

import json

import orjson
from typer.testing import CliRunner

from townsquare.cli import app

runner = CliRunner()


def _home(tmp_path) -> str:
    rows = []
    hikes = ["Six hour hike to the summit, camping by the lake tonight",
             "Trail running in the hills before work, muddy but great",
             "New hiking boots survived the mountain trail", "Camping trip with the tent in the rain"]
    for i, t in enumerate(hikes):
        rows.append({"id": str(1_600_000_000_000_000_000 + i), "text": t, "author_id": "42",
                     "lang": "en", "created_at": f"2023-11-1{i}T10:00:00.000Z"})
    data = tmp_path / "p.jsonl"
    data.write_bytes(b"\n".join(orjson.dumps({"data": r, "includes": {"users": [
        {"id": "42", "username": "trailann"}]}}) for r in rows) + b"\n")
    home = str(tmp_path / "h")
    assert runner.invoke(app, ["ingest", str(data), "--home", home]).exit_code == 0
    return home


def test_demo_catalog_serve_why_profile(tmp_path):
    home = _home(tmp_path)
    r = runner.invoke(app, ["ads", "campaigns", "load", "--demo", "--home", home])
    assert r.exit_code == 0 and "loaded 12 campaign(s)" in r.stdout
    listed = json.loads(runner.invoke(app, ["ads", "campaigns", "list", "--home", home,
                                            "--json"]).stdout)
    assert len(listed) == 12
    r = runner.invoke(app, ["ads", "serve", "trailann", "--home", home, "--backend", "extractive",
                            "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["campaign"] == "trail-shoes" and d["personalized"] and len(d["copy"]) <= 280
    why = runner.invoke(app, ["ads", "why", str(d["impression_id"]), "--home", home])
    assert why.exit_code == 0 and "outdoors" in why.stdout.lower()
    p = json.loads(runner.invoke(app, ["profile", "trailann", "--home", home, "--json"]).stdout)
    assert p["personalized"] and "201" in p["profile"]["interests"]      # /Hobbies & Leisure/Outdoors
    outdoors = next(t for t in p["topics"] if t["id"] == 201)
    assert outdoors["path"] == "/Hobbies & Leisure/Outdoors" and outdoors["label"] == "Outdoors"
    assert "Delete" not in runner.invoke(app, ["profile", "trailann", "--delete", "--home",
                                               home]).stdout
    assert runner.invoke(app, ["ads", "minor", "trailann", "--home", home]).exit_code == 0
    p = json.loads(runner.invoke(app, ["profile", "trailann", "--home", home, "--json"]).stdout)
    assert not p["personalized"] and p["reason"] == "minor" and "minors" in p["message"]
    r = runner.invoke(app, ["ads", "serve", "trailann", "--home", home, "--backend", "extractive",
                            "--json"])
    assert json.loads(r.stdout)["personalized"] is False


def test_a_bad_campaign_file_names_the_campaign_and_field(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps([{"id": "x", "advertiser": "a", "name": "n",
                              "brief": {"product": "p", "claims": [], "landing_url": "https://a.example"},
                              "targeting": {"keywords": ["muslims"]}, "budget": 1, "bid_cpm": 1}]))
    r = runner.invoke(app, ["ads", "campaigns", "load", str(f), "--home", str(tmp_path / "h")])
    assert r.exit_code == 1 and "targeting.keywords" in r.output and "special category" in r.output

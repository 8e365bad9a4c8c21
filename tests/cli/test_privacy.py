"""``townsquare optout`` and ``townsquare export --user`` end to end: an opt-out deletes the
profile, the next ad is not personalized, the next corpus leaves the user out (its manifest lists
them); --undo lifts it; the export holds the user's posts and ads only. Invented posts only."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from townsquare.cli import app
from townsquare.train.corpus import CorpusManifest, author_digest

runner = CliRunner()
BASE = 1212092628029698048
WORDS = ["flood", "bridge", "river", "rescue", "storm", "power", "school", "road", "shelter",
         "water", "rain", "wind"]
ANN = ["Six hour hike to the summit, camping by the lake tonight",
       "Trail running in the hills before work, muddy but great",
       "New hiking boots survived the long mountain trail",
       "Camping trip with the tent in the rain, still smiling"]


def _home(tmp_path) -> str:
    rows = ["id,text,created_at,author"]
    for i, t in enumerate(ANN):
        rows.append(f'{BASE + i},"{t}",2023-11-1{i}T10:00:00Z,TrailAnn')
    for i in range(30):                  # other users, enough for a corpus build to pass
        text = " ".join(WORDS[(i * k + k) % len(WORDS)] for k in range(1, 10))
        when = f"2023-11-0{1 + i % 9}T{i % 24:02d}:00:00Z"
        rows.append(f'{BASE + 100 + i},"Update {i}: {text}",{when},user{i}')
    data = tmp_path / "p.csv"
    data.write_text("\n".join(rows) + "\n")
    camp = tmp_path / "c.json"
    camp.write_text(json.dumps([{
        "id": "boots", "advertiser": "bootco", "name": "Boots",
        "brief": {"product": "Bootco trail boots", "claims": ["waterproof"],
                  "landing_url": "https://bootco.example", "languages": ["en"]},
        "targeting": {"keywords": ["hike"]}, "budget": 10.0, "bid_cpm": 2.0, "frequency_cap": 20,
        "brand_safety": {"avoid_offensive": False, "avoid_hateful": False,
                         "avoid_crisis": False}}]))
    home = str(tmp_path / "h")
    r = runner.invoke(app, ["ingest", str(data), "--home", home, "--columns",
                            "id=id,text=text,created_at=created_at,author_handle=author"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ads", "campaigns", "load", str(camp), "--home", home])
    assert r.exit_code == 0, r.output
    return home


def _json(args: list[str]) -> dict:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _serve(home: str) -> dict:
    return _json(["ads", "serve", "trailann", "--home", home, "--backend", "extractive", "--json"])


def test_optout_export_and_undo(tmp_path):
    home = _home(tmp_path)
    first = _serve(home)
    assert first["personalized"]
    r = _json(["optout", "@TrailAnn", "--home", home, "--json"])
    assert (r["user"], r["opted_out"], r["changed"], r["profiles_deleted"]) == \
        ("trailann", True, True, 1)
    assert isinstance(r["opted_out_at"], int)
    second = _serve(home)
    assert second["personalized"] is False
    build = _json(["corpus", "build", "--home", home, "--vocab", "300", "--json"])
    assert build["counts"]["opted_out"] == len(ANN)
    m = CorpusManifest.load(tmp_path / "h" / "corpus")
    assert m.opted_out_authors == [author_digest("trailann")]
    assert not {BASE + i for i in range(len(ANN))} & set(m.ids())

    out = tmp_path / "ann.json"
    e = runner.invoke(app, ["export", "--user", "trailann", "-o", str(out), "--home", home])
    assert e.exit_code == 0, e.output
    doc = json.loads(out.read_text())
    assert doc["counts"] == {"posts": len(ANN), "impressions": 2}
    assert sorted(int(p["id"]) for p in doc["posts"]) == [BASE + i for i in range(len(ANN))]
    assert [(i["id"], i["personalized"]) for i in doc["impressions"]] == \
        [(first["impression_id"], True), (second["impression_id"], False)]
    assert all(i["why"] for i in doc["impressions"])
    assert (doc["profile"], doc["profile_reason"]) == (None, "opted_out")
    assert doc["consent"]["opted_out_at"] == r["opted_out_at"]
    p = _json(["profile", "trailann", "--home", home, "--json"])
    assert (p["profile"], p["reason"], p["opted_out_at"]) == (None, "opted_out", r["opted_out_at"])
    assert doc["training"] == {"corpus_built_at": m.created_at, "posts_in_corpus": 0,
                               "left_out_as_opted_out": True}
    assert "user1" not in out.read_text() and "Update" not in out.read_text()

    lines = runner.invoke(app, ["export", "--home", home]).stdout.splitlines()
    assert len(lines) == len(ANN) + 30                   # the whole-store export still works

    u = _json(["optout", "trailann", "--undo", "--home", home, "--json"])
    assert (u["opted_out"], u["opted_out_at"], u["changed"]) == (False, None, True)
    assert _serve(home)["personalized"]
    build = _json(["corpus", "build", "--home", home, "--vocab", "300", "--json"])
    assert build["counts"]["opted_out"] == 0


def test_a_bad_user_is_a_one_line_usage_error(tmp_path):
    home = str(tmp_path / "h")
    r = runner.invoke(app, ["optout", " @ ", "--home", home])
    assert r.exit_code == 2 and "USER: not an author" in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, ["export", "--user", "@", "--home", home])
    assert r.exit_code == 2 and "--user: not an author" in r.output

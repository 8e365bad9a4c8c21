from __future__ import annotations

import orjson
from typer.testing import CliRunner

from townsquare.cli import app

from ..conftest import FIXTURES

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


def test_search_prints_results_timings_and_pages(tmp_path):
    home = str(tmp_path / "h")
    assert runner.invoke(app, ["ingest", str(FIXTURES), "--home", home]).exit_code == 0
    r = runner.invoke(app, ["search", "flood OR bridge OR earthquake OR inondation", "--home", home,
                            "--json", "--limit", "1", "--no-semantic"])
    assert r.exit_code == 0, r.output
    res = orjson.loads(r.stdout)
    assert len(res["results"]) == 1
    assert set(res["results"][0]) >= {"id", "text", "created_at", "author", "score"}
    assert res["timings_ms"]["total"] > 0 and res["semantic"]["used"] is False
    if res["next_cursor"]:
        r2 = runner.invoke(app, ["search", "flood OR bridge OR earthquake OR inondation", "--home",
                                 home, "--json", "--limit", "1", "--no-semantic",
                                 "--cursor", res["next_cursor"]])
        assert orjson.loads(r2.stdout)["results"][0]["id"] != res["results"][0]["id"]


def test_search_errors_name_the_token_and_exit_2(tmp_path):
    home = str(tmp_path / "h")
    runner.invoke(app, ["ingest", str(FIXTURES), "--home", home, "--no-late"])
    r = runner.invoke(app, ["search", "flood frm:bob", "--home", home])
    assert r.exit_code == 2 and "frm:bob" in r.output
    r = runner.invoke(app, ["search", "flood", "--home", home, "--mode", "best"])
    assert r.exit_code == 2 and "mode" in r.output


def test_embed_then_search_is_semantic_and_stats_show_no_lag(tmp_path):
    home = str(tmp_path / "h")
    runner.invoke(app, ["ingest", str(FIXTURES), "--home", home])
    r = runner.invoke(app, ["embed", "--home", home, "--json"])
    assert r.exit_code == 0, r.output
    assert orjson.loads(r.stdout)["pending_posts"] == 0
    s = orjson.loads(runner.invoke(app, ["stats", "--home", home, "--json"]).stdout)
    assert s["embeddings"]["pending_posts"] == 0 and s["embeddings"]["embedded"] == 16
    r = runner.invoke(app, ["search", "tremblement de terre", "--home", home, "--json"])
    res = orjson.loads(r.stdout)
    assert res["semantic"]["used"] is True and res["results"]


def test_trends_stories_story_and_summarize(tmp_path):
    rows = ["id,text,created_at,author"]
    base, t0 = 1212092628029698048, "2020-01-0{d}T1{h}:00:00Z"
    texts = ["Bridge collapse on route 9 after the flood", "Route 9 bridge collapse, flood rising",
             "Flood: route 9 bridge collapse blocks traffic", "The flood took the route 9 bridge",
             "Route 9 bridge collapse photos from the flood"]
    quiet = ["Morning coffee at the park", "Coffee in the park this morning", "A quiet park coffee",
             "Park coffee with friends", "Best coffee near the park"]
    for i, t in enumerate(quiet + texts):           # day 1: coffee; day 2: the flood bursts
        tag = " #flood" if i >= 5 else ""
        rows.append(f'{base + i},"{t}{tag}",{t0.format(d=1 + i // 5, h=i % 5)},user{i}')
    data = tmp_path / "posts.csv"
    data.write_text("\n".join(rows) + "\n")
    home = str(tmp_path / "h")
    r = runner.invoke(app, ["ingest", str(data), "--home", home,
                            "--columns", "id=id,text=text,created_at=created_at,author_handle=author"])
    assert r.exit_code == 0, r.output
    tr = orjson.loads(runner.invoke(app, ["trends", "--home", home, "--window", "1d", "--json"]).stdout)
    assert tr["trends"] and tr["trends"][0]["authors"] >= 3
    assert runner.invoke(app, ["trends", "--home", home, "--window", "soon"]).exit_code == 2
    st = orjson.loads(runner.invoke(app, ["stories", "--home", home, "--json", "--all"]).stdout)
    assert len(st) == 2
    assert "bridge" in st[0]["top_terms"]          # the newest story first
    assert len(st[0]["post_ids"]) == 5 and st[0]["key_posts"] and st[0]["headline"]
    assert st[0]["key_posts"][0]["id"] in st[0]["post_ids"]
    day1 = orjson.loads(runner.invoke(app, ["stories", "--home", home, "--json", "--since",
                                            "2020-01-01", "--until", "2020-01-02"]).stdout)
    assert [s["id"] for s in day1] == [st[1]["id"]]            # only the coffee story that day
    assert runner.invoke(app, ["stories", "--home", home, "--since", "soon"]).exit_code == 2
    sid = st[0]["id"]
    one = orjson.loads(runner.invoke(app, ["story", sid, "--home", home, "--json"]).stdout)
    assert len(one["post_ids"]) == 5 and sum(n for _, n in one["timeline"]) == 5
    assert runner.invoke(app, ["story", "424242", "--home", home]).exit_code == 2
    r = runner.invoke(app, ["summarize", "--story", sid, "--home", home, "--backend", "extractive",
                            "--json"])
    assert r.exit_code == 0, r.output
    s = orjson.loads(r.stdout)
    assert s["sentences"] and all(x["verified"] and len(x["citations"]) >= 2 for x in s["sentences"])
    r = runner.invoke(app, ["summarize", "bridge", "--home", home, "--backend", "extractive"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["summarize", "bridge", "--home", home, "--backend", "extractive",
                            "--json"])
    s = orjson.loads(r.stdout)
    assert "route 9" in " ".join([s["headline"], *(x["text"] for x in s["sentences"])]).lower()
    assert runner.invoke(app, ["summarize", "--home", home]).exit_code == 2
    assert runner.invoke(app, ["summarize", "x", "--home", home, "--backend", "gpt9"]).exit_code == 2

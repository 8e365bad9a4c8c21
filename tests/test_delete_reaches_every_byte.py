"""Issue 17, group 2: a deleted post's bytes leave every file of its home.

A home gets posts, one of them carrying a token found nowhere else, and every derived artifact
(the tantivy index, through a search; the vectors and their faiss file, through ``embed``; the
stories' ``stories.pkl``). The post is deleted (by the CLI, or by ``DELETE /v1/posts/ID`` on a
server's runtime), the maintenance step runs (``townsquare compact``, or the server's own), and
then every file under the home is read as bytes, the SQLite write-ahead log and the tantivy
segment files included, for anything of the post:

- the token, and its tail: FTS5 writes a term minus the prefix it shares with the term before
  it in its b-tree leaf, so the whole token need not appear where the term is;
- its id as a little-endian int64 (numpy's arrays in ``vectors.index``, pickle's long integers in
  ``stories.pkl``; SQLite writes integers big-endian, and keeps the id in its tombstone tables on
  purpose: re-ingesting the source must not bring the post back);
- its embedding, as the float16 blob of the store's ``vectors`` table and as the float32 row of
  the faiss index.

tantivy compresses its term dictionary, so a byte grep cannot see a token there: the index is
asked how many documents hold the term (tantivy counts a deleted document until its segment is
rewritten), and that must be 0.
"""
from __future__ import annotations

import sqlite3
import struct
import time
from contextlib import contextmanager
from pathlib import Path

import orjson
import tantivy
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.api.conftest import runtime_settings
from townsquare.api.app import create_app
from townsquare.api.runtime import Runtime
from townsquare.cli import app
from townsquare.embed.stage import from_blobs
from townsquare.store import open_store

runner = CliRunner()

TOKEN = "zqxdeletetoken7731"
TAIL = TOKEN[3:]       # no other word of the posts starts with "zq": at most "z" is shared
BASE = 1212092628029698048
VICTIM = BASE + 3
BRIDGE = ["Bridge collapse on route 9 after the flood", "Route 9 bridge collapse, flood rising",
          "Flood: route 9 bridge collapse blocks traffic",
          f"Route 9 bridge collapse seen from the {TOKEN} tower, flood everywhere",
          "The flood took the route 9 bridge", "Route 9 bridge collapse photos from the flood",
          "Detour around the route 9 bridge collapse, the flood keeps rising",
          "Route 9 bridge collapse: the flood cut the town in two"]
CHATTER = ["Morning coffee at the park", "New recipe tried tonight, pasta with lemon",
           "My cat refuses to leave the sofa today", "Painting the fence this weekend"]


def _cli(*args: str) -> object:
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return orjson.loads(r.stdout) if "--json" in args else r.stdout


def _listed(home: Path) -> set[int]:
    """Every post id that ``stories --all --json`` lists."""
    return {int(p) for s in _cli("stories", "--home", str(home), "--json", "--all")
            for p in s["post_ids"]}


def _home_with_every_artifact(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A home whose posts reached every derived artifact; the byte patterns of the victim."""
    rows = ["id,text,created_at,author"]
    for i, text in enumerate(BRIDGE + CHATTER):
        rows.append(f'{BASE + i},"{text}",2020-01-02T10:{i:02d}:00Z,user{i}')
    data = tmp_path / "posts.csv"
    data.write_text("\n".join(rows) + "\n")
    home = tmp_path / "h"
    _cli("ingest", str(data), "--home", str(home), "--json",
         "--columns", "id=id,text=text,created_at=created_at,author_handle=author")
    found = _cli("search", TOKEN, "--home", str(home), "--json", "--no-semantic")
    assert [int(h["id"]) for h in found["results"]] == [VICTIM]        # tantivy refreshed
    assert _cli("embed", "--home", str(home), "--json")["index_size"] == len(BRIDGE + CHATTER)
    assert VICTIM in _listed(home)                                     # stories.pkl written
    with open_store(home / "townsquare.db") as store:
        blob = store.vectors_of([VICTIM])[VICTIM]                      # float16 (dim,)
    patterns = {"token": TOKEN.encode(), "tail": TAIL.encode(),
                "id_int64": struct.pack("<q", VICTIM), "vector_f16": blob,
                "vector_f32": from_blobs([blob], len(blob) // 2)[0].tobytes()}
    # The scan sees each of them before the deletion (else it would prove nothing).
    before = _leftovers(home, patterns)
    assert set(before["townsquare.db"]) >= {"token", "tail", "vector_f16"}
    assert set(before["vectors.index"]) >= {"id_int64", "vector_f32"}
    assert set(before["stories.pkl"]) >= {"token", "tail", "id_int64"}
    assert _docs_with_token(home) == 1
    return home, patterns


def _leftovers(home: Path, patterns: dict[str, bytes]) -> dict[str, list[str]]:
    """For each file under ``home`` that holds any of ``patterns``: which."""
    out = {}
    for path in sorted(home.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if hits := [name for name, pat in patterns.items() if pat in data]:
                out[path.relative_to(home).as_posix()] = hits
    return out


def _docs_with_token(home: Path) -> int:
    """How many documents of the home's tantivy index hold the token (deleted ones included,
    until their segment is rewritten)."""
    return tantivy.Index.open(str(home / "lexical")).searcher().doc_freq("text", TOKEN)


@contextmanager
def _another_reader(home: Path):
    """Another connection (as a reader in another process would hold one), open across the
    deletion and the maintenance step: while it is open, closing the store's connections does not
    remove the write-ahead log file, which must then hold nothing of the post either."""
    db = sqlite3.connect(home / "townsquare.db")
    try:
        db.execute("SELECT count(*) FROM posts").fetchone()
        yield
    finally:
        db.close()


def _assert_gone(home: Path, patterns: dict[str, bytes]) -> None:
    assert _leftovers(home, patterns) == {}
    assert _docs_with_token(home) == 0
    assert any(p.suffix == ".term" for p in (home / "lexical").iterdir())   # scanned, and none
    assert VICTIM not in _listed(home)
    assert _listed(home) >= {BASE + i for i in range(len(BRIDGE)) if BASE + i != VICTIM}
    found = _cli("search", TOKEN, "--home", str(home), "--json", "--no-semantic")
    assert found["results"] == []


def test_a_cli_delete_then_compact_leaves_no_byte_of_the_post(tmp_path):
    home, patterns = _home_with_every_artifact(tmp_path)
    with _another_reader(home):
        assert "deleted 1 of 1" in _cli("delete", str(VICTIM), "--home", str(home))
        # No refresh in between: the maintenance step catches every index up itself.
        did = _cli("compact", "--home", str(home), "--json")
        assert did["store"]["deletions"] == 1 and did["store"]["wal_truncated"]
        assert did["lexical_index"]["rebuilt"] and did["lexical_index"]["purged"] == 1
        assert did["vectors"]["tombstones_scrubbed"] == 1
        assert did["stories"]["available"] and did["seconds"] >= 0
        assert (home / "townsquare.db-wal").stat().st_size == 0
        _assert_gone(home, patterns)
    again = _cli("compact", "--home", str(home), "--json")             # nothing new: cheap
    assert again["store"]["deletions"] == 0 and not again["lexical_index"]["rebuilt"]
    assert again["vectors"]["tombstones_scrubbed"] == 0


def test_an_api_delete_then_the_servers_own_step_leaves_no_byte_of_the_post(tmp_path):
    home, patterns = _home_with_every_artifact(tmp_path)
    with _another_reader(home):
        rt = Runtime(runtime_settings(home), start=False)
        try:
            client = TestClient(create_app(rt, keys=None, auth=False))
            r = client.delete(f"/v1/posts/{VICTIM}")
            assert r.status_code == 200, r.text
            assert r.json() == {"id": str(VICTIM), "deleted": True, "was_stored": True}
            rt.step()                              # the indexer's refresh, the stories' step
            found = client.get("/v1/search", params={"q": TOKEN, "limit": 50}).json()
            assert str(VICTIM) not in {h["id"] for h in found["results"]}
            stories = client.get("/v1/stories", params={"all": True, "limit": 50}).json()
            members = {p for s in stories["stories"]
                       for p in client.get(f"/v1/stories/{s['id']}").json()["post_ids"]}
            assert str(BASE) in members and str(VICTIM) not in members
            # The server runs the maintenance step by itself once deletes happened and nothing
            # was written for 30 s (``api.indexer``).
            now = time.monotonic()
            assert not rt.indexer.compaction_due(now)
            assert rt.indexer.compaction_due(now + 31)
            did = rt.indexer.compact()
            assert did["store"]["deletions"] == 1 and did["lexical_index"]["rebuilt"]
            assert did["vectors"]["tombstones_scrubbed"] == 1
            assert not rt.indexer.compaction_due(now + 62)    # done until the next deletion
        finally:
            rt.close()
        assert (home / "townsquare.db-wal").stat().st_size == 0
        _assert_gone(home, patterns)
    # The server's step was the whole of it: `townsquare compact` finds nothing left to do.
    again = _cli("compact", "--home", str(home), "--json")
    assert again["store"]["deletions"] == 0 and not again["lexical_index"]["rebuilt"]
    assert again["vectors"]["tombstones_scrubbed"] == 0

"""Deletions in the tantivy index: applied at the next refresh from the store's deletions log,
and their words removed from the segment files by ``compact``."""
from __future__ import annotations

import json

import pytest

from townsquare.posts import Post
from townsquare.query import parse
from townsquare.search.lexindex import LexicalIndex
from townsquare.store.base import Stored

BASE = 1212092628029698048
TOKEN = "zqxdeletetoken7731"
TEXTS = ["Flood waters rising near the old mill", "The bridge on route nine collapsed",
         f"Flood seen from the {TOKEN} tower", "Red Cross volunteers hand out water",
         "Storm warning: power outage expected tonight", "flood relief now"]
VICTIM = BASE + 2


def _ids(lx: LexicalIndex, query: str) -> list[int]:
    return sorted(pid for pid, _ in lx.top(parse(query), 50)[0])


def _segments(path) -> set[str]:
    """The segment ids whose files are in the index folder."""
    return {p.stem for p in path.iterdir() if p.suffix in (".term", ".store", ".idx")}


@pytest.fixture
def filled(store):
    store.write_batch([Stored(Post(id=BASE + i, text=t, source="t",
                                   created_at=1_600_000_000_000 + i).normalized())
                       for i, t in enumerate(TEXTS)], [])
    return store


@pytest.mark.parametrize("keep_writer", [False, True])     # the CLI's way, and the server's
def test_refresh_applies_a_deletion_and_compact_removes_its_words(filled, tmp_path, keep_writer):
    lx = LexicalIndex(filled, tmp_path / "lexical", keep_writer=keep_writer)
    try:
        assert lx.refresh() == len(TEXTS) and _ids(lx, TOKEN) == [VICTIM]
        assert filled.delete([VICTIM]) == 1
        assert lx.lag() == 1                           # a deletion not applied yet counts
        assert lx.refresh() == 1 and lx.lag() == 0
        assert lx.top(parse(TOKEN), 10) == ([], 0)
        assert VICTIM not in _ids(lx, "flood")
        # tantivy only marks the document: its words stay in the segment (counted by doc_freq)
        # until compact rewrites it.
        assert lx.purge_pending == 1 and lx.share(TOKEN) > 0
        old = _segments(tmp_path / "lexical")
        assert old
        did = lx.compact()
        assert did["rebuilt"] and did["purged"] == 1 and did["documents"] == len(TEXTS) - 1
        assert lx.share(TOKEN) == 0.0 and lx.purge_pending == 0
        assert not old & _segments(tmp_path / "lexical")     # the old segment files are gone
        assert _ids(lx, "flood") == [BASE, BASE + 5] and lx.lag() == 0
        again = lx.compact()                           # nothing deleted since: nothing to do
        assert not again["rebuilt"] and again["documents"] == len(TEXTS) - 1
    finally:
        lx.close()


def test_the_watermarks_persist_with_the_index(filled, tmp_path):
    lx = LexicalIndex(filled, tmp_path / "lexical")
    lx.refresh()
    filled.delete([VICTIM])
    lx.refresh()
    through = lx.deleted_through
    assert through == filled.deletions_since(0, 10)[-1][0]
    back = LexicalIndex(filled, tmp_path / "lexical")
    assert (back.deleted_through, back.purge_pending, back.lag()) == (through, 1, 0)
    assert back.refresh() == 0 and back.top(parse(TOKEN), 10) == ([], 0)
    assert back.compact()["rebuilt"] and back.share(TOKEN) == 0.0     # pending was kept


def test_a_new_index_reads_the_posts_left_and_skips_the_log(filled):
    filled.delete([VICTIM, BASE + 4])
    lx = LexicalIndex(filled, None)
    assert lx.refresh() == len(TEXTS) - 2
    assert lx.deleted_through == filled.deletions_since(0, 10)[-1][0]
    assert (lx.purge_pending, lx.lag()) == (0, 0)
    assert not lx.compact()["rebuilt"]                 # nothing of them was ever written


def test_deleting_the_newest_post_leaves_no_lag(filled):
    lx = LexicalIndex(filled, None)
    lx.refresh()
    newest = BASE + len(TEXTS) - 1
    filled.delete([newest])
    assert lx.refresh() == 1
    assert lx.lag() == 0 and lx.refresh() == 0         # the watermark passed the deleted seq


def test_a_post_deleted_before_the_index_saw_it(filled):
    lx = LexicalIndex(filled, None)
    lx.refresh()
    late = BASE + 100
    filled.write_batch([Stored(Post(id=late, text="gondola cable snapped", source="t",
                                    created_at=1_600_000_000_100).normalized())], [])
    filled.delete([late])
    lx.refresh()
    assert lx.top(parse("gondola"), 10) == ([], 0) and lx.lag() == 0


def test_an_index_written_before_the_log_applies_the_whole_log_once(filled, tmp_path):
    path = tmp_path / "lexical"
    lx = LexicalIndex(filled, path)
    lx.refresh()
    filled.delete([VICTIM])
    meta = path / "townsquare.json"             # an index file of the release before the log
    saved = json.loads(meta.read_text())
    meta.write_text(json.dumps({"watermark": saved["watermark"], "schema": saved["schema"],
                                "scramble": saved["scramble"]}))     # the layout kept
    old = LexicalIndex(filled, path)
    assert old.deleted_through == 0 and old.watermark == saved["watermark"]
    assert old.refresh() == 1 and old.top(parse(TOKEN), 10) == ([], 0)
    assert old.refresh() == 0 and old.purge_pending == 1

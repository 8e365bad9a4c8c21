"""StoreVectors: the vector index file beside the store follows the store's deletions log, and
``compact`` leaves no removed post's vector or id in the file. Random vectors, no model."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from townsquare.embed.stage import from_blobs, to_blob
from townsquare.embed.sync import StoreVectors
from townsquare.posts import Post
from townsquare.store.base import Stored

DIM = 16
BASE = 1212092628029698048
N = 40
VICTIM = BASE + 7


@pytest.fixture
def embedded(store):
    """A store whose ``N`` posts all have (random) vectors of the model ``m``."""
    store.write_batch([Stored(Post(id=BASE + i, text=f"post {i}", source="t").normalized())
                       for i in range(N)], [])
    rows = store.pending_embedding(1000)                          # (id, seq, text)
    vecs = np.random.default_rng(0).standard_normal((len(rows), DIM)).astype(np.float32)
    store.write_vectors("m", [(pid, seq, blob) for (pid, seq, _), blob in zip(rows, to_blob(vecs))],
                        rows[-1][1])
    return store


def _vector(store, pid: int) -> np.ndarray:
    """The post's vector as the index holds it (float32, renormalized), (DIM,)."""
    return from_blobs([store.vectors_of([pid])[pid]], DIM)[0]


def test_refresh_removes_deleted_posts_and_keeps_the_logs_watermark(embedded, tmp_path):
    path = tmp_path / "vectors.index"
    vs = StoreVectors(embedded, path, DIM)
    assert vs.refresh() == N and len(vs) == N
    q = _vector(embedded, VICTIM)
    assert vs.search(q, 1)[0][0] == VICTIM
    assert embedded.delete([VICTIM, BASE + 8]) == 2
    assert vs.refresh() == 2 and len(vs) == N - 2
    assert VICTIM not in vs.index and VICTIM not in {i for i, _ in vs.search(q, N)}
    through = embedded.deletions_since(0, 10)[-1][0]
    assert vs.deleted_through == through
    assert json.loads(path.with_name("vectors.index.json").read_text())["deleted_through"] == through
    back = StoreVectors(embedded, path, DIM)                     # saved: the file has them gone
    assert back.deleted_through == through and VICTIM not in back.index and len(back) == N - 2
    assert back.refresh() == 0


def test_compact_zeroes_the_removed_vectors_and_ids_in_the_file(embedded, tmp_path):
    path = tmp_path / "vectors.index"
    vs = StoreVectors(embedded, path, DIM)
    vs.refresh()
    vec, pid = _vector(embedded, VICTIM).tobytes(), struct.pack("<q", VICTIM)
    assert vec in path.read_bytes() and pid in path.read_bytes()
    embedded.delete([VICTIM])
    vs.refresh()
    assert vec in path.read_bytes() and pid in path.read_bytes()     # a tombstone, until compact
    queries = np.random.default_rng(1).standard_normal((10, DIM)).astype(np.float32)
    before = [vs.search(x, 10) for x in queries]
    did = vs.compact()
    assert did == {"tombstones_scrubbed": 1, "tombstones": 1, "vectors": N - 1}
    data = path.read_bytes()
    assert vec not in data and pid not in data
    assert [vs.search(x, 10) for x in queries] == before          # results do not change
    back = StoreVectors(embedded, path, DIM)
    assert [back.search(x, 10) for x in queries] == before and len(back) == N - 1
    stamp = path.stat().st_mtime_ns
    assert back.compact()["tombstones_scrubbed"] == 0
    assert path.stat().st_mtime_ns == stamp                        # nothing to do: not rewritten


def test_a_new_index_reads_the_vectors_left_and_skips_the_log(embedded, tmp_path):
    embedded.delete([VICTIM])
    vs = StoreVectors(embedded, tmp_path / "vectors.index", DIM)
    vs.refresh()
    assert len(vs) == N - 1 and VICTIM not in vs.index and vs.index.rows == N - 1
    assert vs.deleted_through == embedded.deletions_since(0, 10)[-1][0]
    assert vs.compact()["tombstones_scrubbed"] == 0


def test_an_index_file_from_before_the_log_applies_the_whole_log_once(embedded, tmp_path):
    path = tmp_path / "vectors.index"
    vs = StoreVectors(embedded, path, DIM)
    vs.refresh()
    embedded.delete([VICTIM])
    sidecar = path.with_name("vectors.index.json")
    meta = json.loads(sidecar.read_text())
    del meta["deleted_through"]                    # as the release before the log wrote it
    sidecar.write_text(json.dumps(meta))
    old = StoreVectors(embedded, path, DIM)
    assert old.deleted_through == 0 and VICTIM in old.index
    assert old.refresh() == 1 and VICTIM not in old.index and len(old) == N - 1
    assert old.refresh() == 0


# --- ranking fields beside the vectors -----------------------------------------------------------
def _fields(vs: StoreVectors, ids: list[int], max_seq: int | None = None):
    """``(ids with fields, their fields)`` as ``nearest`` returns them, from a search that
    reaches every post (the neighbours of each id's own vector)."""
    have, rows = [], []
    for pid in ids:
        if pid not in vs.index:
            continue
        near = vs.nearest(vs.index.vectors_of([pid])[1][0], len(vs), max_seq)
        at = near.ids.tolist().index(pid)
        if near.has_fields[at]:
            have.append(pid)
            rows.append(near.fields[at].tolist())
    return have, rows


def test_nearest_gives_the_stores_ranking_fields_within_the_snapshot(embedded, tmp_path):
    from townsquare.embed.sync import FIELDS
    vs = StoreVectors(embedded, tmp_path / "vectors.index", DIM)
    vs.refresh()
    ids = [BASE + 3, BASE + 5, BASE + N + 99]                          # the last: not a post
    have, rows = _fields(vs, ids)
    assert have == ids[:2]
    want = embedded.rank_fields(ids[:2])
    assert rows == [[0 if x is None else x for x in want[i]] for i in ids[:2]]
    near = vs.nearest(_vector(embedded, BASE + 3), 5)
    assert near.ids[0] == BASE + 3 and near.scores[0] == pytest.approx(1.0, abs=1e-3)
    assert [(int(i), s) for i, s in zip(near.ids, near.scores)] == vs.search(
        _vector(embedded, BASE + 3), 5)                                  # search's neighbours
    seq = {pid: s for pid, s, _ in embedded.vectors_after(0, 100)}
    assert _fields(vs, ids[:2], max_seq=seq[BASE + 3])[0] == [BASE + 3]  # before post 5
    assert embedded.delete([BASE + 3]) == 1
    vs.refresh()
    assert BASE + 3 not in vs.nearest(_vector(embedded, BASE + 5), N).ids.tolist()
    back = StoreVectors(embedded, tmp_path / "vectors.index", DIM)   # saved with the file
    assert back.index.column_names == FIELDS and back.index.unknown_columns == 0
    assert _fields(back, [BASE + 5])[1] == rows[1:2]


def test_an_index_file_from_before_the_columns_gets_them_on_its_first_refresh(embedded, tmp_path):
    from townsquare.embed.index import VectorIndex
    path = tmp_path / "vectors.index"
    vs = StoreVectors(embedded, path, DIM)
    vs.refresh()
    plain = VectorIndex(DIM)                                           # as written before
    plain.add(vs.index.ids(), vs.index._row_vectors(np.arange(vs.index.rows)))
    plain.save(path)
    old = StoreVectors(embedded, path, DIM)
    assert old.index.unknown_columns == N and _fields(old, [BASE])[0] == []
    assert old.refresh() == N and old.index.unknown_columns == 0       # filled, and saved
    assert _fields(old, [BASE], max_seq=old.watermark)[0] == [BASE]
    # their seq is the file's watermark, an upper bound: an older snapshot asks the store
    assert _fields(old, [BASE], max_seq=old.watermark - 1)[0] == []
    assert StoreVectors(embedded, path, DIM).index.unknown_columns == 0


def test_vectors_of_come_from_the_index_as_the_store_gives_them(embedded, tmp_path):
    from townsquare.embed.sync import InStoreVectors
    vs = StoreVectors(embedded, None, DIM)
    vs.refresh()
    want = [BASE + 9, BASE + N + 5, BASE + 2]                           # one is not a post
    found, V = vs.vectors_of(want)
    assert found.tolist() == [BASE + 9, BASE + 2]
    assert np.allclose(V, np.stack([_vector(embedded, BASE + 9), _vector(embedded, BASE + 2)]),
                       atol=1e-6)
    f2, V2 = InStoreVectors(embedded).vectors_of(want)                  # the store's own read
    assert f2.tolist() == found.tolist() and np.allclose(V2, V, atol=1e-6)

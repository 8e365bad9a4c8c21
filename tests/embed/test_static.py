"""The static model distilled from e5 (``m2v-e5``): offline, cached, deterministic."""
from __future__ import annotations

import numpy as np

from townsquare.embed.e5onnx import tokenizer_for
from townsquare.embed.models import get_embedder
from townsquare.embed.static import StaticE5Embedder, distill_e5_static

TEXTS = ["The bridge collapsed after the flood", "Great match tonight, we won 3-1", ""]


def _pieces():
    tok = tokenizer_for()
    return sorted({t for q in (False, True) for s in tok.content_ids(TEXTS, q) for t in s})


def test_distils_once_into_the_cache_and_is_deterministic(tmp_path):
    a = distill_e5_static(tmp_path / "a", token_ids=_pieces())
    mtime = a.stat().st_mtime_ns
    assert distill_e5_static(tmp_path / "a", token_ids=_pieces()) == a      # reused
    assert a.stat().st_mtime_ns == mtime
    b = distill_e5_static(tmp_path / "b", token_ids=_pieces())
    assert a.name == b.name and a.read_bytes() == b.read_bytes()           # bit-identical


def test_vectors_are_unit_rows_and_empty_text_is_zero(tmp_path):
    emb = get_embedder("m2v-e5", cache_dir=tmp_path, token_ids=_pieces())
    assert isinstance(emb, StaticE5Embedder) and emb.dim == 256
    P = emb.passages(TEXTS)
    assert P.shape == (3, 256) and P.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(P[:2], axis=1), 1.0, rtol=1e-5)
    assert not P[2].any()
    np.testing.assert_array_equal(P, emb.passages(TEXTS))                  # deterministic
    # A query is the same text without its prefix: queries and passages share one space.
    np.testing.assert_allclose(emb.query(TEXTS[0]), P[0], atol=1e-6)
    assert emb.passages([]).shape == (0, 256)


def test_a_query_finds_the_post_sharing_its_meaning(tmp_path):
    emb = StaticE5Embedder(cache_dir=tmp_path, token_ids=_pieces())
    P = emb.passages(TEXTS[:2])
    assert int((P @ emb.query("The bridge collapsed")).argmax()) == 0

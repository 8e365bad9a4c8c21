"""Issue 17, group 1: language identification is bounded in time. lingua's cost grows with the
square of a word's length; a 1 MB post without ``lang`` held the interpreter lock for 165 s."""
from __future__ import annotations

import time

from townsquare.ingest.language import SAMPLE_CHARS, LanguageIdentifier, language_sample

DETECTOR = LanguageIdentifier()


def test_a_huge_post_takes_milliseconds_not_minutes():
    DETECTOR.detect(["warm the models up: the flood closed the bridge this morning"])
    worst = "a" * 200_000                 # one 200,000-letter word: ~17 s before, whole
    words = "inondation du centre-ville ce matin " * 30_000      # ~1 MB of French
    t0 = time.perf_counter()
    langs = DETECTOR.detect([worst, words])
    assert time.perf_counter() - t0 < 1.0  # measured: ~1 ms
    assert langs[1] == "fr"


def test_the_sample_is_bounded_and_keeps_short_posts_whole():
    post = "Fuertes lluvias inundan el centro de la ciudad esta mañana https://t.co/abc @someone"
    assert language_sample(post) == "Fuertes lluvias inundan el centro de la ciudad esta mañana"
    long = language_sample(("@user " * 100) + "crue de la Seine à Paris " * 1000)
    assert len(long) <= SAMPLE_CHARS and long.startswith("crue de la Seine")
    assert set(long.split()) == {"crue", "de", "la", "Seine", "à", "Paris"}   # whole words

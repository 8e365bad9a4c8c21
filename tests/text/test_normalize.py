"""The four foldings on inputs where they differ, FTS5 parity, stop words, word splitting."""
from __future__ import annotations

import sqlite3

import pytest

from townsquare.text.normalize import (ELISIONS, STOPWORDS, TREND_STOPWORDS, WORD, camel_parts,
                                       fold_case_accents, lower_strip_accents,
                                       lower_strip_accents_canonical, segment, strip_accents)

# input: (strip_accents, fold_case_accents, lower_strip_accents, lower_strip_accents_canonical)
CASES = {
    "Séisme à Québec": ("Seisme a Quebec", "seisme a quebec", "seisme a quebec", "seisme a quebec"),
    "e\u0301te\u0301": ("ete", "ete", "ete", "ete"),                 # already decomposed
    "Straße": ("Straße", "strasse", "straße", "straße"),              # casefold, not lower
    "℡": ("TEL", "tel", "TEL", "℡"),                                  # decomposes to capitals
    "ＡＢ": ("AB", "ab", "ab", "ａｂ"),                                  # fullwidth letters
    "ﬁn": ("fin", "fin", "fin", "ﬁn"),                                # a ligature
    "İzmir": ("Izmir", "izmir", "izmir", "izmir"),
    "ΣΟΦΟΣ": ("ΣΟΦΟΣ", "σοφοσ", "σοφος", "σοφος"),                    # final sigma
    "plain ASCII, 42": ("plain ASCII, 42", "plain ascii, 42", "plain ascii, 42", "plain ascii, 42"),
}


@pytest.mark.parametrize("text", list(CASES))
def test_each_folding_on_tricky_inputs(text):
    got = (strip_accents(text), fold_case_accents(text), lower_strip_accents(text),
           lower_strip_accents_canonical(text))
    assert got == CASES[text]


@pytest.mark.parametrize("text", [
    "Séisme à Québec: COVID-19!", "Ça va, Ñandú, ÉTÉ, Łódź, Øresund, Straße", "Ｆｕｌｌ ﬁn ℡",
    "l'Équateur_x e\u0301te\u0301", "İstanbul ǅ", "#NepalQuake @ann 2015"])
def test_canonical_folding_gives_the_words_of_fts5(text):
    """``lower_strip_accents_canonical`` + ``WORD`` are SQLite FTS5's unicode61 tokens with
    remove_diacritics 2, so the PostgreSQL store can match exactly what the embedded one does."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.execute("INSERT INTO t(rowid, x) VALUES (1, ?)", (text,))
    fts5 = [term for (term,) in db.execute("SELECT term FROM v ORDER BY offset")]
    assert WORD.findall(lower_strip_accents_canonical(text)) == fts5


def test_stop_words_are_folded_and_the_two_lists_differ_on_purpose():
    for words in (STOPWORDS, TREND_STOPWORDS, ELISIONS):
        assert all(fold_case_accents(w) == w for w in words)
    assert {"new", "said", "like"} <= STOPWORDS and not {"new", "said", "like"} & TREND_STOPWORDS
    assert {"http", "https", "www", "avoir", "hemos"} <= TREND_STOPWORDS - STOPWORDS


def test_camel_parts_and_segment():
    assert camel_parts("NYCMarathon2019") == ["NYC", "Marathon", "2019"]
    assert camel_parts(strip_accents("SantéMentale")) == ["Sante", "Mentale"]
    assert camel_parts("nepalquake") == ["nepalquake"]
    counts = {"nepal": 4, "quake": 2, "pray": 3, "for": 9}
    assert segment("prayfornepal", counts) == ["pray", "for", "nepal"]
    assert segment("nepalquake", counts, total=18) == ["nepal", "quake"]
    assert segment("zzqx", counts) == ["zzqx"]          # unknown text stays whole

"""Words for the PostgreSQL store's exact-match index, made in Python so both stores agree.

    >>> words("Séisme à Québec: COVID-19!")
    ['seisme', 'a', 'quebec', 'covid', '19']
    >>> tsvector_literal("the flood, the FLOOD")
    "'flood':2,4 'the':1,3"
    >>> phrase_tsquery("covid-19"), phrase_tsquery("🌊")
    ("'covid' <-> '19'", None)

Why not ``to_tsvector('simple', text)``: PostgreSQL's parser keeps ``-19`` of ``covid-19`` as a
word, treats host names, e-mails and URLs as single tokens and depends on the server's locale,
so ``covid 19`` would not find ``covid-19`` and a search could differ between the two stores.
The embedded store's FTS5 ``unicode61 remove_diacritics 2`` tokenizer splits on every character
that is not a letter or a digit, folds case and drops diacritics; ``words`` does the same here
(``townsquare.text.normalize``), and the store writes the result as a ``tsvector`` literal
(lexemes verbatim, with positions), so matching is the same on both backends whatever the
server's locale. Per-language stemming and
stop words (``to_tsvector('french', ...)``) are used for ranking only, where a looser notion of
"the same word" helps and cannot change which posts match (``townsquare.store.postgres``).
"""
from __future__ import annotations

from townsquare.text.normalize import WORD, lower_strip_accents_canonical

__all__ = ["words", "tsvector_literal", "phrase_tsquery", "MAX_POSITION"]

MAX_POSITION = 16383          # tsvector positions stop here (PostgreSQL's limit)


def words(text: str) -> list[str]:
    """The words of ``text`` in order: runs of letters and digits after FTS5's folding
    (``lower_strip_accents_canonical``: lowercase, diacritics dropped, ``Été`` -> ``ete``)."""
    return WORD.findall(lower_strip_accents_canonical(text))


def _lexeme(word: str) -> str:
    # Words hold letters and digits only, but quote and escape anyway: a literal must never be
    # able to carry tsvector or tsquery syntax.
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(text: str) -> str:
    """``text``'s words with their positions (1-based), as a ``tsvector`` input string."""
    positions: dict[str, list[int]] = {}
    for i, w in enumerate(words(text), start=1):
        positions.setdefault(w, []).append(min(i, MAX_POSITION))
    return " ".join(f"{_lexeme(w)}:{','.join(map(str, sorted(set(ps))))}"
                    for w, ps in sorted(positions.items()))


def phrase_tsquery(text: str) -> str | None:
    """A ``tsquery`` for ``text`` as a phrase of its words (one word: that word), or None when
    it has no word (an emoji, ``!!``): such text cannot be matched through the index."""
    ws = words(text)
    if not ws:
        return None
    return " <-> ".join(_lexeme(w) for w in ws)

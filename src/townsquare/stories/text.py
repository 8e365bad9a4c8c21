"""Features of a post for story clustering: folded words, hashtags and two-word phrases.

    >>> sorted(features("RT @ann: Séisme à #Katmandou, 7.8! https://t.co/x"))
    ['#katmandou', 'katmandou', 'seisme', 'seisme katmandou']
    >>> sorted(features("Praying for everyone in #HurricaneHarvey's path"))
    ['#hurricaneharvey', 'everyone', 'everyone hurricane', 'harvey', 'harvey path', 'hurricane', 'hurricane harvey', 'path', 'praying', 'praying everyone']
    >>> from townsquare.text.normalize import segment
    >>> segment("hurricaneharvey", {"hurricane": 50, "harvey": 20, "harv": 1, "ey": 1})
    ['hurricane', 'harvey']

Folding matches the search index (case, accents); URLs, mentions, the retweet prefix, numbers
and short function words in English, French and Spanish are dropped (IDF would weigh them down
anyway, but they would crowd the centroids' inverted index); possessive 's goes. A hashtag
counts as itself and as its words, so "#Nepal" and "Nepal" meet, and so do "#HurricaneHarvey"
and "hurricane Harvey": CamelCase splits here; an all-lowercase tag ("#hurricaneharvey") is
split by ``townsquare.text.normalize.segment`` against the stream's own vocabulary
(``stories.cluster`` does that). Folding, stop words and the URL and mention rules are the text
toolkit's (``townsquare.text``).
"""
from __future__ import annotations

import re
from collections import Counter

from townsquare.text.normalize import ELISIONS, STOPWORDS, camel_parts, fold_case_accents
from townsquare.text.rules import MENTION_ASCII_START, URL_LOOSE

_RT = re.compile(r"^\s*rt\b:?", re.IGNORECASE)
_TOKEN = re.compile(r"#?[^\W\d_][\w']*", re.UNICODE)


def _clean(tok: str) -> str:
    """Possessive 's goes; a French elision keeps its word; other contractions ("don't",
    "i'm", "ain't") are function words and go entirely."""
    tok = tok.strip("'").removesuffix("'s")
    if "'" in tok and not tok.startswith("#"):
        head, _, tail = tok.partition("'")
        return tail if head.lower() in ELISIONS and "'" not in tail else ""
    return tok


def _singular(w: str) -> str:
    """A light plural strip ("floods" -> "flood", "harveys" -> "harvey"); "ss", "us", "is"
    endings stay ("address", "virus", "crisis")."""
    if len(w) > 4 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-3] + "y" if w.endswith("ies") and len(w) > 5 else w[:-1]
    return w


def words(text: str) -> list[str]:
    """Tokens in order: words folded, hashtags as ``#`` + their original spelling (CamelCase
    kept for ``hashtag_words``), noise removed."""
    s = _RT.sub(" ", MENTION_ASCII_START.sub(" ", URL_LOOSE.sub(" ", text)))
    out = []
    for tok in _TOKEN.findall(s):
        tok = _clean(tok)
        if not tok:
            continue
        if tok.startswith("#"):
            if len(tok) > 2:
                out.append(tok)
            continue
        tok = fold_case_accents(tok)
        if len(tok) >= 2 and tok not in STOPWORDS:
            out.append(_singular(tok))
    return out


def hashtag_words(tag: str) -> list[str]:
    """The words of a hashtag's CamelCase spelling ("#HurricaneHarvey" -> hurricane, harvey);
    one word when it has no case boundary."""
    tag = tag.lstrip("#")
    parts = [fold_case_accents(w) for w in camel_parts(tag) if len(w) >= 2]
    return parts or [fold_case_accents(tag)]


def features(text: str) -> Counter:
    """Feature counts: words, hashtags (folded) and their CamelCase words, adjacent word pairs."""
    toks = words(text)
    c: Counter = Counter()
    plain = []
    for t in toks:
        if t.startswith("#"):
            c["#" + fold_case_accents(t[1:])] += 1
            for w in map(_singular, hashtag_words(t)):
                if w not in STOPWORDS:
                    c[w] += 1
                    plain.append(w)
        else:
            c[t] += 1
            plain.append(t)
    for a, b in zip(plain, plain[1:]):
        if a != b:
            c[f"{a} {b}"] += 1
    return c

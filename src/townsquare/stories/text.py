"""Features of a post for story clustering: folded words, hashtags and two-word phrases.

    >>> sorted(features("RT @ann: Séisme à #Katmandou, 7.8! https://t.co/x"))
    ['#katmandou', 'katmandou', 'seisme', 'seisme katmandou']
    >>> sorted(features("Praying for everyone in #HurricaneHarvey's path"))
    ['#hurricaneharvey', 'everyone', 'everyone hurricane', 'harvey', 'harvey path', 'hurricane', 'hurricane harvey', 'path', 'praying', 'praying everyone']
    >>> segment("hurricaneharvey", {"hurricane": 50, "harvey": 20, "harv": 1, "ey": 1})
    ['hurricane', 'harvey']

Folding matches the search index (case, accents); URLs, mentions, the retweet prefix, numbers
and short function words in English, French and Spanish are dropped (IDF would weigh them down
anyway, but they would crowd the centroids' inverted index); possessive 's goes. A hashtag
counts as itself and as its words, so "#Nepal" and "Nepal" meet, and so do "#HurricaneHarvey"
and "hurricane Harvey": CamelCase splits here; an all-lowercase tag ("#hurricaneharvey") is
split by ``segment`` against the stream's own vocabulary (``stories.cluster`` does that).
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w+")
_RT = re.compile(r"^\s*rt\b:?", re.IGNORECASE)
_TOKEN = re.compile(r"#?[^\W\d_][\w']*", re.UNICODE)
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

STOPWORDS = frozenset(["a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "here", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most", "my", "no", "not", "now", "of", "off", "on", "one", "only", "or", "our", "out", "over", "said", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "up", "us", "very", "via", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you", "your", "amp", "rt", "im", "dont", "cant", "get", "got", "new", "like", "au", "aux", "avec", "ce", "ces", "dans", "de", "des", "du", "elle", "en", "est", "et", "il", "ils", "je", "la", "le", "les", "leur", "lui", "mais", "me", "mes", "ne", "nous", "on", "ou", "par", "pas", "pour", "qui", "que", "sa", "se", "ses", "son", "sur", "ta", "te", "tes", "toi", "ton", "tu", "un", "une", "vos", "vous", "y", "ete", "etre", "al", "como", "con", "del", "el", "ella", "ellos", "en", "es", "esta", "este", "hay", "la", "las", "lo", "los", "mas", "mi", "muy", "no", "nos", "para", "pero", "por", "que", "se", "si", "sin", "su", "sus", "tu", "un", "una", "uno", "y", "ya"])


def fold(s: str) -> str:
    """Lowercase with accents removed: ``fold("Séisme") == "seisme"``."""
    if not s.isascii():
        s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return s.casefold()



_ELISIONS = frozenset("l d j m n s t c qu jusqu lorsqu puisqu".split())   # French: l'eau -> eau


def _clean(tok: str) -> str:
    """Possessive 's goes; a French elision keeps its word; other contractions ("don't",
    "i'm", "ain't") are function words and go entirely."""
    tok = tok.strip("'").removesuffix("'s")
    if "'" in tok and not tok.startswith("#"):
        head, _, tail = tok.partition("'")
        return tail if head.lower() in _ELISIONS and "'" not in tail else ""
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
    s = _RT.sub(" ", _MENTION.sub(" ", _URL.sub(" ", text)))
    out = []
    for tok in _TOKEN.findall(s):
        tok = _clean(tok)
        if not tok:
            continue
        if tok.startswith("#"):
            if len(tok) > 2:
                out.append(tok)
            continue
        tok = fold(tok)
        if len(tok) >= 2 and tok not in STOPWORDS:
            out.append(_singular(tok))
    return out


def hashtag_words(tag: str) -> list[str]:
    """The words of a hashtag's CamelCase spelling ("#HurricaneHarvey" -> hurricane, harvey);
    one word when it has no case boundary."""
    parts = _CAMEL.findall(tag.lstrip("#"))
    return [fold(w) for w in parts if len(w) >= 2] or [fold(tag.lstrip("#"))]


def segment(s: str, counts: dict[str, int], total: int | None = None) -> list[str]:
    """Max-likelihood split of a folded string into words of the stream (Norvig); a piece (up to
    30 characters) that is not a known word gets 10 / (N * 10**len), so unknown text is split
    only where that reveals known words.

    >>> segment("mondaymotivation", {"monday": 5, "motivation": 3, "day": 1})
    ['monday', 'motivation']
    """
    n = len(s)
    total = sum(counts.values()) if total is None else total
    logn, log10 = math.log(total + 1), math.log(10)
    best = [0.0] + [-math.inf] * n
    back = [0] * (n + 1)
    for i in range(1, n + 1):
        for j in range(max(0, i - 30), i):
            piece = s[j:i]
            c = counts.get(piece, 0)
            lp = math.log(c) - logn if c else log10 - logn - len(piece) * log10
            if best[j] + lp > best[i]:
                best[i], back[i] = best[j] + lp, j
    out, i = [], n
    while i > 0:
        out.append(s[back[i]:i])
        i = back[i]
    return out[::-1]


def features(text: str) -> Counter:
    """Feature counts: words, hashtags (folded) and their CamelCase words, adjacent word pairs."""
    toks = words(text)
    c: Counter = Counter()
    plain = []
    for t in toks:
        if t.startswith("#"):
            c["#" + fold(t[1:])] += 1
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

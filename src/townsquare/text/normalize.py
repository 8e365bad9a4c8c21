"""Folding, stop words and word splitting: how two spellings of a word are made to meet.

    >>> fold_case_accents("Séisme à Québec")
    'seisme a quebec'
    >>> strip_accents("Séisme à Québec")
    'Seisme a Quebec'
    >>> camel_parts("NepalQuake2015")
    ['Nepal', 'Quake', '2015']
    >>> segment("prayfornepal", {"pray": 3, "for": 9, "nepal": 2})
    ['pray', 'for', 'nepal']

Four foldings, because four callers need four different things and two of them must agree with
code outside Python (FTS5, tantivy) on data that is already stored:

=================================  ====================================================  =========
function                           what it does                                          who
=================================  ====================================================  =========
``strip_accents``                  NFKD (compatibility forms too: ``ﬁ`` -> ``fi``,       ads
                                   fullwidth ``Ａ`` -> ``A``), combining marks dropped,
                                   case kept
``fold_case_accents``              ``strip_accents`` then ``str.casefold`` (``ß`` ->     stories,
                                   ``ss``): the matching key of a word                   summaries,
                                                                                         ads, chat
``lower_strip_accents``            ``str.lower`` then ``strip_accents``: tantivy's       search,
                                   lowercaser + ASCII folding                            ads copy
``lower_strip_accents_canonical``  NFD (canonical only: ``ﬁ`` and fullwidth letters      store
                                   stay), marks dropped, then ``str.lower``: FTS5's
                                   ``unicode61 remove_diacritics 2``
=================================  ====================================================  =========

They differ only on rare characters (``ß``, ``℡``, ligatures, fullwidth letters), but each
difference is in data someone compares against: the SQLite and PostgreSQL stores must produce
the same words (``townsquare.store.pgtext``), the query side must produce the tantivy index's
tokens, and story features are held by the saved story state.
"""
from __future__ import annotations

import math
import re
import unicodedata

__all__ = ["ELISIONS", "STOPWORDS", "TREND_STOPWORDS", "WORD", "camel_parts", "fold_case_accents",
           "lower_strip_accents", "lower_strip_accents_canonical", "segment", "strip_accents"]


# --- folding -------------------------------------------------------------------------------------
def strip_accents(text: str) -> str:
    """Accents and other combining marks removed after compatibility decomposition (NFKD), case
    kept: ads' case-sensitive keywords (``=Labour``) match on this form.

    >>> strip_accents("Ça fait ＡＢＣ, ﬁn")
    'Ca fait ABC, fin'
    """
    if text.isascii():                       # most posts: nothing to decompose
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def fold_case_accents(text: str) -> str:
    """``strip_accents`` then full case folding: the key on which two spellings of a word are the
    same word for story features, summary checks, ad keywords and the chat API's query words.

    >>> fold_case_accents("Straße ÉTÉ ℡")
    'strasse ete tel'
    """
    return strip_accents(text).casefold()


def lower_strip_accents(text: str) -> str:
    """``str.lower`` first, then ``strip_accents``: what tantivy's lowercaser followed by its ASCII
    folding does to a word, so the search side can build the index's own tokens. Lowercasing
    first leaves uppercase that decomposition makes (``℡`` -> ``TEL``) and ``ß`` as it is.

    >>> lower_strip_accents("Straße ÉTÉ ℡")
    'straße ete TEL'
    """
    return strip_accents(text.lower())


def lower_strip_accents_canonical(text: str) -> str:
    """Marks dropped after canonical decomposition (NFD) only, then lowercase: SQLite FTS5's
    ``unicode61 remove_diacritics 2`` for Latin scripts, which leaves compatibility forms alone
    (a fullwidth ``Ａ`` or the ligature ``ﬁ`` stay). The PostgreSQL store builds its words with it
    so both stores match the same posts.

    >>> lower_strip_accents_canonical("Été ＡＢ ﬁn")
    'ete ａｂ ﬁn'
    """
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


# A run of letters and digits: the words of FTS5's unicode61 tokenizer, the PostgreSQL store's
# exact-match words and the tantivy index's tokens ("covid-19" -> "covid", "19"; "_" splits).
WORD = re.compile(r"[^\W_]+")


# --- stop words ----------------------------------------------------------------------------------
# Folded (``fold_case_accents``), so they are matched after folding. Two lists, because they were
# tuned against different features and changing either changes what those features are:
#
# STOPWORDS: English, French and Spanish function words plus social-media filler ("rt", "amp",
# "via", "im", "dont") and news chatter ("said", "new", "like", "more", "one") that would crowd
# story centroids. Used by story features (``stories.text``, whose centroids the saved story state
# holds), summary checks (``summarize.verify``, ``summarize.evidence``), ads' keyword vocabulary
# (``ads.sensitive``) and the chat API's query words.
STOPWORDS = frozenset(["a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "here", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most", "my", "no", "not", "now", "of", "off", "on", "one", "only", "or", "our", "out", "over", "said", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "up", "us", "very", "via", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you", "your", "amp", "rt", "im", "dont", "cant", "get", "got", "new", "like", "au", "aux", "avec", "ce", "ces", "dans", "de", "des", "du", "elle", "en", "est", "et", "il", "ils", "je", "la", "le", "les", "leur", "lui", "mais", "me", "mes", "ne", "nous", "on", "ou", "par", "pas", "pour", "qui", "que", "sa", "se", "ses", "son", "sur", "ta", "te", "tes", "toi", "ton", "tu", "un", "une", "vos", "vous", "y", "ete", "etre", "al", "como", "con", "del", "el", "ella", "ellos", "en", "es", "esta", "este", "hay", "la", "las", "lo", "los", "mas", "mi", "muy", "no", "nos", "para", "pero", "por", "que", "se", "si", "sin", "su", "sus", "tu", "un", "una", "uno", "y", "ya"])

# TREND_STOPWORDS: the trend detector's (``stories.trends``): more French and Spanish verb forms
# and determiners ("avoir", "sont", "fue", "hemos", "cette"), the words of a URL ("http", "www"),
# and none of the news chatter above, so "new" and "said" can be trend terms and phrases. The two
# lists grew with their callers and the tests that pin those callers' features; merging them
# would change story features (and so saved centroids) or which trends are found.
TREND_STOPWORDS = frozenset(["a", "an", "the", "and", "or", "but", "if", "of", "at", "by", "for", "with", "about", "to", "from", "in", "on", "into", "over", "up", "down", "out", "off", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "have", "has", "had", "me", "my", "we", "our", "you", "your", "he", "him", "his", "she", "her", "it", "its", "they", "them", "their", "this", "that", "these", "those", "what", "which", "who", "whom", "not", "no", "so", "than", "too", "very", "can", "will", "just", "should", "now", "get", "got", "there", "here", "when", "where", "how", "all", "any", "also", "as", "le", "la", "les", "un", "une", "des", "du", "de", "et", "ou", "mais", "donc", "car", "ni", "que", "qui", "quoi", "dont", "ce", "cet", "cette", "ces", "mon", "ma", "mes", "ton", "ta", "tes", "son", "sa", "ses", "notre", "nos", "votre", "vos", "leur", "leurs", "je", "tu", "il", "elle", "on", "nous", "vous", "ils", "elles", "est", "sont", "ete", "etre", "avoir", "ai", "avons", "avez", "ont", "pas", "ne", "plus", "au", "aux", "en", "dans", "par", "pour", "sur", "avec", "sans", "sous", "chez", "se", "lui", "el", "los", "las", "una", "unos", "unas", "del", "al", "pero", "quien", "como", "cuando", "donde", "por", "para", "con", "sin", "sobre", "entre", "es", "fue", "ser", "estar", "esta", "este", "esto", "estos", "estas", "ese", "esa", "eso", "si", "ya", "muy", "mas", "lo", "le", "su", "sus", "mi", "mis", "tus", "yo", "te", "hay", "ha", "han", "he", "hemos", "rt", "via", "amp", "http", "https", "www"])

# French elided articles and pronouns: "l'eau" is the word "eau".
ELISIONS = frozenset(["l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu"])


# --- splitting -----------------------------------------------------------------------------------
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def camel_parts(text: str) -> list[str]:
    """The CamelCase parts of a hashtag's spelling, cut at case changes and digits; ASCII
    letters only, so fold accents first (``strip_accents``) to keep "Santé" whole.

    >>> camel_parts("HurricaneHarvey"), camel_parts("NYCMarathon"), camel_parts("nepal")
    (['Hurricane', 'Harvey'], ['NYC', 'Marathon'], ['nepal'])
    """
    return _CAMEL.findall(text)


def segment(s: str, counts: dict[str, int], total: int | None = None) -> list[str]:
    """Max-likelihood split of a folded string into words of the stream (Norvig); a piece (up to
    30 characters) that is not a known word gets 10 / (N * 10**len), so unknown text is split
    only where that reveals known words. ``counts``: word -> count; ``total`` their sum (given
    when the caller has it, to save the sum).

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

"""URL, mention, hashtag and cashtag patterns: one definition per distinct rule.

    >>> text = "cc @ann＠bob ann@example.org #Flood https://t.co/x). www.example.org"
    >>> MENTION.findall(text), HASHTAG.findall(text)
    (['ann'], ['Flood'])
    >>> [m.group(0).rstrip(URL_TRAIL) for m in URL.finditer(text)]
    ['https://t.co/x']
    >>> URL_LOOSE.sub("<>", text)
    'cc @ann＠bob ann@example.org #Flood <> <>'

Two families, for two jobs:

- **entities** (``MENTION``, ``HASHTAG``, ``CASHTAG``, ``URL``; after twitter-text): what a post
  names, read into ``Post.mentions`` and friends and stored. Strict: an e-mail address holds no
  mention, "a#b" no hashtag, and trailing punctuation (``URL_TRAIL``) is not part of a link.
  ``LINK`` is the personal-data variant: any scheme and bare ``www.`` addresses.
- **noise** (``URL_LOOSE`` and the ``MENTION_*`` rules): what is blanked out before words are
  counted (story and trend features, shingles, language id, ad keywords, summaries). Loose and
  fast: anything from ``http://`` to the next space goes.

The four mention rules differ on e-mail addresses, the fullwidth ``＠`` and what may come before
the ``@``; each is pinned by data made with it (stored signatures, saved story state, a trained
classifier), which is why they are not one rule. What each finds:

=======================  ===========  =======  =======  =========================================
rule                     ``a@b.org``  ``＠c``  ``!@d``  used by
=======================  ===========  =======  =======  =========================================
``MENTION``              no           yes      no       ``posts`` (stored ``mentions``),
                                                        ``train.corpus`` (``<|user|>``)
``MENTION_LOOSE``        yes          yes      yes      near-duplicate shingles (signatures in
                                                        the store), ``ingest.language``
``MENTION_ASCII``        yes          no       yes      ``ads.safety`` (its classifier's training
                                                        form), ``summarize`` (evidence and its
                                                        concepts: ``LINK_OR_MENTION``)
``MENTION_ASCII_START``  no           no       yes      story features (``stories.text``)
=======================  ===========  =======  =======  =========================================
"""
from __future__ import annotations

import re

__all__ = ["CASHTAG", "HASHTAG", "LINK", "LINK_OR_MENTION", "MENTION", "MENTION_ASCII",
           "MENTION_ASCII_START", "MENTION_LOOSE", "SENTENCE_BREAK", "URL", "URL_LOOSE",
           "URL_TRAIL", "clean_post"]

# --- entities ------------------------------------------------------------------------------------
# A tag starts at a non-word boundary, so "a#b" and e-mails are not hashtags or mentions. Python's
# \w is Unicode-aware, so #séisme and #地震 are hashtags; a hashtag needs a letter ("#2015" is none).
HASHTAG = re.compile(r"(?<![\w&/#＃])[#＃](\w*[^\W\d]\w*)")
# group 1: the handle (at most 50 characters) without its "@" or "＠".
MENTION = re.compile(r"(?<![\w@!#$%&*＠])[@＠](\w{1,50})")
# group 1: the symbol ("$ACME", "$BRK.A"); "$5" is an amount, not a cashtag.
CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:[._][A-Za-z]{1,2})?)(?![\w$])")
# An http(s) link up to whitespace, angle brackets or quotes; strip URL_TRAIL off its end.
URL = re.compile(r"\bhttps?://[^\s<>\"'\u201c\u201d]+", re.IGNORECASE)
# Punctuation that ends the sentence around a link rather than the link: "see https://t.co/x."
URL_TRAIL = ".,;:!?)]}'\"…"
# Any scheme-qualified (ftp://, hxxp://) or bare www. address, stopping as URL does: personal-data
# scrubbing removes every link, not only the ones a post's entities list.
LINK = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.)[^\s<>\"'\u201c\u201d]+", re.IGNORECASE)

# --- noise ---------------------------------------------------------------------------------------
# http(s):// or www. and everything up to the next whitespace, punctuation included.
URL_LOOSE = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
# "@" or "＠" and the word after it, wherever it stands (the domain of an e-mail address too).
MENTION_LOOSE = re.compile(r"[@＠]\w+")
# ASCII "@" and the word after it, wherever it stands.
MENTION_ASCII = re.compile(r"@\w+")
# Links and mentions, what word counts leave out (summary evidence, its concepts).
LINK_OR_MENTION = re.compile(f"{URL_LOOSE.pattern}|{MENTION_ASCII.pattern}", re.IGNORECASE)
# ASCII "@" not glued to a word before it: an e-mail address keeps its domain as words.
MENTION_ASCII_START = re.compile(r"(?<!\w)@\w+")


# --- a post as a sentence ------------------------------------------------------------------------
_LEAD = re.compile(r"^\s*(RT\s+)?(@\w+[:,]?\s*)+", re.IGNORECASE)     # "RT @a: @b, ..."
_TRAIL_TAGS = re.compile(r"(\s+#\w+)+\s*$")
# What a retweet chain, a share button or a check-in adds around the words, not part of them:
# "so true RT@a: <quoted>" (the quoted post is the statement), "via @nprnews", "(@ City Market
# w/ 2 others)", mentions at the end, and a shared headline's "| Site" or "- video" suffix.
_INLINE_RT = re.compile(r"(?:^|\s|\W)(?:RT|MT)\s*@\w+:?\s*", re.IGNORECASE)
_VIA = re.compile(r"[\s(]*\bvia\s+@\w+\)?:?", re.IGNORECASE)
_CHECKIN = re.compile(r"\s*\((?:@|at)\s[^)]*\)")
_TRAIL_MENTIONS = re.compile(r"(\s+[@＠]\w+[:,]?)+\s*$")
_SITE_SUFFIX = re.compile(r"(?:\s+\|\s+[^|.!?]{1,40}|\s+[-\u2013\u2014]\s+(?:video|photos?|pictures|"
                          r"in pictures|live( updates)?))\s*$", re.IGNORECASE)
# A word cut short by the client that shared the post ("... Five Days After Disaster N…"): a
# fragment of at most three characters glued to a final ellipsis.
_CUT_WORD = re.compile(r"\s+[^\s…]{1,3}…$")
# Where one sentence ends and the next starts: ".!?", spaces, then a capital, quote or bracket.
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[])")


def clean_post(text: str, max_words: int = 40) -> str:
    """A post as a sentence (a summary's line, a story's headline): URLs, the retweet prefix,
    leading mentions and trailing hashtags removed, the first sentence kept, cut at
    ``max_words``.

    A retweet with a comment in front keeps the quoted post ("wow RT @cnn: Bridge ..."), and
    what sharing adds is dropped: "via @user", a check-in "(@ Place w/ 2 others)", mentions at
    the end, a headline's "| Site" or "- video" suffix, a word the sharing client cut short
    before its final "…" (a fragment of at most three characters: "After Disaster N…").

    >>> clean_post("RT @ann: Bridge collapsed on route 9! More soon http://t.co/x #flood #nj")
    'Bridge collapsed on route 9!'
    >>> clean_post("Told u xD @bo RT@news: Storm is coming to the east coast via @wx @ann")
    'Storm is coming to the east coast'
    >>> clean_post("Preparing for the storm (@ City Market w/ 2 others) http://t.co/x")
    'Preparing for the storm'
    >>> clean_post("Quake death toll rises to 350 | Daily News http://t.co/y")
    'Quake death toll rises to 350'
    >>> clean_post("Teen pulled alive from rubble five days after disaster N… http://t.co/z")
    'Teen pulled alive from rubble five days after disaster'
    >>> clean_post("Stay safe out there everyone…")               # a whole word: kept
    'Stay safe out there everyone…'
    """
    s = URL_LOOSE.sub("", text).replace("\n", " ")
    rts = list(_INLINE_RT.finditer(s))
    if rts and len(s[rts[-1].end():].split()) >= 3:   # the quoted post, not the comment on it
        s = s[rts[-1].end():]
    s = _LEAD.sub("", s)
    s = _CHECKIN.sub("", _VIA.sub("", s))
    for _ in range(2):          # "... #tag @a" and "... @a #tag": both kinds of tail
        s = _TRAIL_MENTIONS.sub("", _TRAIL_TAGS.sub("", s))
    trimmed = _SITE_SUFFIX.sub("", s)
    if len(trimmed.split()) >= 3:                     # else the suffix may be the statement
        s = trimmed
    s = s.strip(" -|:")
    s = " ".join(s.split()).replace("#", "")
    first = SENTENCE_BREAK.split(s, maxsplit=1)[0]
    if _CUT_WORD.search(first) and len(first.split()) > 3:
        first = _CUT_WORD.sub("", first)
    words = first.split()
    out = " ".join(words[:max_words]) + ("..." if len(words) > max_words else "")
    return out.strip()

"""Check a summary sentence against the posts it cites; what fails is never shown.

    >>> posts = {1: ("Bridge on route 9 collapsed, 3 injured", "ann"),
    ...          2: ("Route 9 bridge is down, police say three people hurt", "bob")}
    >>> v = Verifier()
    >>> v.check("The route 9 bridge collapsed and 3 people were injured.", [1, 2], posts).ok
    True
    >>> r = v.check("The route 9 bridge collapsed, killing 12.", [1, 2], posts)
    >>> r.ok, r.reasons
    (False, ['"12" is in none of the cited posts'])
    >>> v.check("The bridge collapsed on route 9.", [1], posts).reasons
    ['backed by 1 author; a claim needs 2 unless the sentence names a single source']

A sentence passes when all of these hold:

1. **Citations**: it cites at least one post, and every cited id is among the posts given.
2. **Checkable facts**: every number, every capitalized name (not the sentence's first word, not
   a common word), every month or weekday appears in the cited posts (case and accents folded;
   number words count as their digits: "three" = "3"). Small models invent dates and tolls;
   this is where they are caught.
3. **Support**: the sentence is about what its posts say: with an embedder, the best cosine
   between the sentence and a cited post is >= ``min_cosine``; always, at least
   ``min_overlap`` of its content words appear in the cited posts.
4. **Corroboration**: its cited posts come from >= ``min_authors`` distinct authors, unless the
   sentence says it rests on one source ("according to one post", "a single user reports",
   "one account says"); Grok's "throwing bricks" story is what this rule is for.
5. **Reads well** (``text.quality.reads_well``, its cited posts as sources): it does not
   repeat itself, talk about itself ("Here's a possible summary"), stop mid-phrase, or quote
   a post's instructions to a model. ``complete=False`` (headlines) lets it end without
   final punctuation.

    >>> v.check("Here is a short summary: the route 9 bridge collapsed, 3 injured.", [1, 2],
    ...         posts).reasons
    ['talks about itself: "here is a short summary"']
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from townsquare.text.normalize import STOPWORDS, fold_case_accents
from townsquare.text.quality import reads_well

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_WORD = re.compile(r"[^\W\d_][\w'\-]*", re.UNICODE)
_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                 "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11",
                 "twelve": "12", "twenty": "20", "hundred": "100", "thousand": "1000",
                 "dozen": "12", "dozens": "12", "hundreds": "100", "thousands": "1000",
                 "million": "1000000", "millions": "1000000"}
_TIME_WORDS = {"january", "february", "march", "april", "may", "june", "july", "august",
               "september", "october", "november", "december", "monday", "tuesday",
               "wednesday", "thursday", "friday", "saturday", "sunday", "yesterday",
               "today", "tonight", "tomorrow"}
# Capitalized words that are not names: sentence openers, pronouns, summary phrasing.
_COMMON_CAPS = STOPWORDS | {"i", "rt", "breaking", "update", "news", "officials", "police",
                            "people", "residents", "several", "many", "some", "posts", "users",
                            "reports", "according", "meanwhile", "also", "however", "headline"}
SINGLE_SOURCE = re.compile(r"\b(according to (one|a single|an?) (post|user|account|source|report)"
                           r"|(one|a single) (post|user|account|source|report)s? (says?|reports?|"
                           r"claims?|states?)|unconfirmed)\b", re.IGNORECASE)


@dataclass(slots=True)
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    cosine: float | None = None
    overlap: float = 0.0
    authors: int = 0


def _norm_number(tok: str) -> str:
    return tok.replace(",", "")


def checkable(sentence: str) -> list[str]:
    """The facts a sentence asserts that its sources must contain: numbers, names, dates.

    >>> checkable("On Monday, Red Cross teams reached 1,200 families in Kathmandu.")
    ['1200', 'monday', 'red', 'cross', 'kathmandu']
    """
    out = [_norm_number(n) for n in _NUMBER.findall(sentence)]
    words = _WORD.findall(sentence)
    for i, w in enumerate(words):
        f = fold_case_accents(w)
        if f in _TIME_WORDS and f not in ("today", "tonight"):
            out.append(f)
        elif w[0].isupper() and i > 0 and f not in _COMMON_CAPS and len(f) > 1:
            out.append(f)
        elif f in _NUMBER_WORDS and f not in ("one",):
            out.append(_NUMBER_WORDS[f])
    seen: dict[str, None] = {}
    for x in out:
        seen.setdefault(x, None)
    return list(seen)


def _source_vocabulary(texts: Sequence[str]) -> set[str]:
    vocab: set[str] = set()
    for t in texts:
        vocab.update(_norm_number(n) for n in _NUMBER.findall(t))
        for w in _WORD.findall(t):
            f = fold_case_accents(w)
            vocab.add(f)
            vocab.update(f.replace("-", " ").split())
            if f in _NUMBER_WORDS:
                vocab.add(_NUMBER_WORDS[f])
            if f.endswith("s"):
                vocab.add(f[:-1])
    return vocab


def content_words(text: str) -> list[str]:
    return [f for f in map(fold_case_accents, _WORD.findall(text))
            if f not in STOPWORDS and len(f) > 2]


@dataclass
class Verifier:
    """``embed`` (text -> unit vector) enables the semantic check; ``post_vectors`` may give the
    cited posts' stored vectors (id -> vector) so they are not embedded again."""
    embed: Callable[[str], np.ndarray] | None = None
    min_cosine: float = 0.80
    min_overlap: float = 0.5
    min_authors: int = 2
    complete: bool = True            # must end like a sentence (False: a headline)

    def check(self, sentence: str, cited: Sequence[int], posts: dict[int, tuple[str, str | None]],
              post_vectors: dict[int, np.ndarray] | None = None) -> Verdict:
        """``posts``: id -> (text, author) of every post the summary may cite."""
        reasons: list[str] = []
        cited = list(dict.fromkeys(cited))
        if not cited:
            return Verdict(False, ["cites no post"])
        unknown = [c for c in cited if c not in posts]
        if unknown:
            return Verdict(False, [f"cites posts that are not evidence: {unknown}"])
        texts = [posts[c][0] for c in cited]
        vocab = _source_vocabulary(texts)
        for fact in checkable(sentence):
            if fact not in vocab and not all(part in vocab for part in fact.split()):
                reasons.append(f'"{fact}" is in none of the cited posts')
        words = content_words(sentence)
        overlap = (sum(1 for w in words if w in vocab or w.rstrip("s") in vocab) / len(words)
                   if words else 0.0)
        if overlap < self.min_overlap:
            reasons.append(f"only {overlap:.0%} of its words are in the cited posts "
                           f"(needs {self.min_overlap:.0%})")
        cos = None
        if self.embed is not None:
            s = self.embed(sentence)
            vecs = [post_vectors[c] if post_vectors and c in post_vectors else self.embed(posts[c][0])
                    for c in cited]
            cos = max(float(np.dot(s, v)) for v in vecs)
            if cos < self.min_cosine:
                reasons.append(f"semantic support {cos:.2f} < {self.min_cosine:.2f}")
        authors = len({(posts[c][1] or f"#{c}").lower() for c in cited})
        if authors < self.min_authors and not SINGLE_SOURCE.search(sentence):
            reasons.append(f"backed by {authors} author{'s' if authors != 1 else ''}; a claim "
                           f"needs {self.min_authors} unless the sentence names a single source")
        reasons.extend(reads_well(sentence, sources=texts, complete=self.complete))
        return Verdict(not reasons, reasons, cos, overlap, authors)

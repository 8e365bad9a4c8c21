"""Language identification for posts whose source gives no language (lingua).

    >>> from townsquare.ingest.language import LanguageIdentifier
    >>> LanguageIdentifier().detect(["Fuertes lluvias inundan el centro de la ciudad esta mañana",
    ...                              "https://t.co/abc @someone"])
    ['es', 'und']

Why lingua, and why a fixed set of languages: lingua is the most accurate detector on short text
that works offline (fastText's langid model must be downloaded). With all 75 of its languages it
labels 1-2% of plain English tweets as Tagalog or Latin and runs at ~900 posts/s on 2 cores; with
the ~30 languages that make up nearly all public posts it runs at ~4,000 posts/s (measured on
HumAID, high-accuracy mode). Posts with fewer than ``MIN_LETTERS`` letters after removing URLs,
@mentions and hashtag signs are ``und`` (undetermined), as Twitter labels them.

Bounded in time: lingua's cost grows with the square of a word's length (100,000 ``a``s took
4.2 s; a 1 MB post without ``lang`` held the interpreter lock for 165 s and stalled the server),
so it sees only the first ``SAMPLE_CHARS`` characters of a post's words (``language_sample``):
~2 ms at most per post whatever it holds (1 MB of random letters: 2.2 ms, 1 MB of one letter:
0.4 ms, on the 2-core machine under load). Accuracy against Twitter's ``lang`` on the 25,976
posts of ``../shared/data/crisisnlp_aidr_volunteers``: unchanged (every answer the same), and on
long posts glued from 4, 8 and 16 of them (mean 388, 789 and 1,578 characters): 0.878, 0.961
and 0.979 against 0.878, 0.961 and 0.992 on the whole text. A sample of 400 characters lost 4
and 7 points on the two longest; one of 2,000 lost nothing but took up to 8 ms
(``bench/large_post.py --language``).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from lingua import Language, LanguageDetectorBuilder

from townsquare.text.rules import MENTION_LOOSE, URL_LOOSE

UNDETERMINED = "und"
MIN_LETTERS = 8
SAMPLE_CHARS = 1000
# The prefix of the raw text cleaned for the sample: room for the URLs and @mentions removed
# from the start of a post (a reply can open with a dozen handles).
_RAW_PREFIX_CHARS = 4 * SAMPLE_CHARS

DEFAULT_LANGUAGES: tuple[str, ...] = (
    "ENGLISH", "SPANISH", "FRENCH", "PORTUGUESE", "GERMAN", "ITALIAN", "DUTCH", "TURKISH",
    "ARABIC", "JAPANESE", "KOREAN", "CHINESE", "RUSSIAN", "HINDI", "INDONESIAN", "TAGALOG",
    "THAI", "POLISH", "URDU", "PERSIAN", "SWEDISH", "GREEK", "UKRAINIAN", "MALAY", "VIETNAMESE",
    "CATALAN", "BENGALI", "HEBREW", "ROMANIAN", "TAMIL",
)

# URLs, @mentions, RT markers and HTML entities: none of them is a word of the post's language.
_NOISE = re.compile(rf"{URL_LOOSE.pattern}|{MENTION_LOOSE.pattern}|\bRT\b|&amp;|&gt;|&lt;",
                    re.IGNORECASE)


def clean_for_language(text: str) -> str:
    """The words of a post: URLs, @mentions, RT markers and HTML entities removed, '#' dropped."""
    return _NOISE.sub(" ", text).replace("#", " ").strip()


def language_sample(text: str) -> str:
    """What language id looks at: the words (``clean_for_language``) of the post's start, at
    most ``SAMPLE_CHARS`` characters, cut at a space when one is near the end.

        >>> len(language_sample("inondation " * 10_000)) <= SAMPLE_CHARS
        True
    """
    words = clean_for_language(text[:_RAW_PREFIX_CHARS])
    if len(words) <= SAMPLE_CHARS:
        return words
    cut = words.rfind(" ", SAMPLE_CHARS // 2, SAMPLE_CHARS)
    return words[:cut if cut > 0 else SAMPLE_CHARS]


class LanguageIdentifier:
    """Batch language id. The detector (and its models, ~100 MB) is built on first use."""

    def __init__(self, languages: Sequence[str] = DEFAULT_LANGUAGES, *, low_accuracy: bool = False):
        unknown = [n for n in languages if not hasattr(Language, n)]
        if unknown:
            raise ValueError(f"unknown language name(s) {unknown}; use lingua's names, e.g. ENGLISH")
        if len(languages) < 2:
            raise ValueError("give at least two languages")
        self.languages = tuple(languages)
        self.low_accuracy = low_accuracy
        self._detector = None

    def _build(self):
        b = LanguageDetectorBuilder.from_languages(*(getattr(Language, n) for n in self.languages))
        if self.low_accuracy:
            b = b.with_low_accuracy_mode()
        return b.with_preloaded_language_models().build()

    def detect(self, texts: Sequence[str]) -> list[str]:
        """ISO 639-1 code per text, ``und`` where the text is too short or the detector unsure."""
        cleaned = [language_sample(t) for t in texts]
        todo = [i for i, c in enumerate(cleaned) if sum(ch.isalpha() for ch in c) >= MIN_LETTERS]
        out = [UNDETERMINED] * len(texts)
        if not todo:
            return out
        if self._detector is None:
            self._detector = self._build()
        found = self._detector.detect_languages_in_parallel_of([cleaned[i] for i in todo])
        for i, lang in zip(todo, found):
            if lang is not None:
                out[i] = lang.iso_code_639_1.name.lower()
        return out

"""Trends: what is bursting now, by acceleration against a baseline and by distinct authors.

    >>> H = 3_600_000
    >>> posts = [TrendPost(i, 30 * H + i, "Earthquake! #quake", f"user{i}") for i in range(5)]
    >>> posts += [TrendPost(100 + i, (i % 30) * H, "coffee time", f"fan{i % 7}") for i in range(300)]
    >>> [(t.label, t.merged) for t in TrendDetector().run(posts)]
    [('#quake', ['earthquake'])]

Features of a post: hashtags, terms (folded words of 2+ characters, not stopwords, not starting
with a digit) and phrases (two kept words adjacent in the text: a stopword, number, URL, mention,
hashtag or punctuation between them breaks the phrase). Per feature, over the current window
``[now - window, now)`` and each of the ``baseline_windows`` windows before it:

    support    = sum over near-duplicate groups g of  c(n_g),  c(n) = 1 + log2(n)   (c(1) = 1)
                 n_g = distinct authors in g using the feature; each author counts in one group only
    expected   = mean support over the baseline windows the stream covers
    score      = (support - expected) / sqrt(expected + alpha)       a Poisson z-score
    ratio      = (support + alpha) / (expected + alpha)
    kept when support >= min_authors and score > 0

Why: raw volume crowns whatever is always big ("love", "today"); a trend is what is *unusually*
big now, so the score is acceleration against the feature's own history, scaled by the noise a
Poisson count of that size has. Authors, not posts, carry the count: one account posting a tag a
hundred times is spam, not a trend, and 1,000 copies of one retweet are one voice amplified, so a
flood counts logarithmically in its authors (~11 for 1,000) against 20 people writing on their own.
Hashtags whose segmented words are the same set are one trend (#MondayMotivation,
#MotivationMonday, #mondaymotivation); trends carried by the same posts (Jaccard >= min_jaccard:
#nepalquake and "nepal earthquake") are merged into the higher-scored one. ``now`` is stream time,
never the wall clock, so an archive replays as it happened.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import chain
from typing import TYPE_CHECKING

from townsquare.text.normalize import ELISIONS, TREND_STOPWORDS, fold_case_accents, segment
from townsquare.text.rules import HASHTAG, URL_LOOSE

if TYPE_CHECKING:
    from townsquare.store.base import Store

_CONTRACTIONS = frozenset(["t", "re", "ve", "ll", "d", "m"])    # don't, we're, i've...: function words

# Over folded text, one pass: a URL, mention or hashtag (dropped: hashtags are read from the
# original, which keeps their CamelCase), a word (group 1), or a run of punctuation, symbols or
# emoji. Everything but a word yields "" and breaks a phrase.
_TOKEN = re.compile(
    rf"(?:{URL_LOOSE.pattern})|[@＠#＃]\w*|([^\W_]+(?:['’][^\W_]+)*)|[^\w\s'’-]+|_+")


@dataclass(frozen=True, slots=True)
class TrendPost:
    id: int
    created_at: int          # ms since epoch (UTC)
    text: str
    author: str | None       # handle or id; None = unknown (each such post is its own author)
    dup_root: int | None = None   # near-duplicate group root (None = its own group)


def trend_posts_from_store(store: Store, since_ms: int, until_ms: int) -> list[TrendPost]:
    """The store's posts with ``since_ms <= created_at < until_ms``, with their duplicate roots.
    Authors are handles, case-folded (handles are case-insensitive), else the numeric id."""
    posts = list(store.posts_between(since_ms, until_ms))
    roots = store.dup_info([p.id for p in posts])
    out = []
    for p in posts:
        root = roots.get(p.id, (p.id, 0))[0]
        author = (p.author_handle.lower() if p.author_handle
                  else str(p.author_id) if p.author_id is not None else None)
        out.append(TrendPost(p.id, p.created_at, p.text, author, root if root != p.id else None))
    return out


@dataclass(frozen=True, slots=True)
class TrendsConfig:
    window_ms: int = 3_600_000        # the current window, and each baseline window
    baseline_windows: int = 24        # windows before the current one that give the expectation
    min_authors: int = 3              # support needed to be a trend at all
    alpha: float = 1.0                # additive smoothing of the baseline (and the z denominator)
    max_trends: int = 20
    min_jaccard: float = 0.6          # post-set overlap at which two trends are one

    def __post_init__(self):
        if self.window_ms < 1:
            raise ValueError(f"window_ms must be >= 1, got {self.window_ms}")
        for name in ("baseline_windows", "min_authors", "max_trends"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha}")
        if not 0.0 < self.min_jaccard <= 1.0:
            raise ValueError(f"min_jaccard must be in (0, 1], got {self.min_jaccard}")


@dataclass(slots=True)
class Trend:
    label: str
    kind: str                 # "hashtag" | "term" | "phrase"
    score: float
    ratio: float
    support: float
    expected: float
    posts: int                # posts in the current window carrying it
    authors: int              # distinct authors of those posts
    merged: list[str] = field(default_factory=list)
    sample_post_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def tokenize(text: str) -> tuple[list[str], list[str], list[str]]:
    """``(features, hashtag spellings, vocabulary words)`` of a text; features are terms and
    phrases (hashtags are keyed later, once the stream's vocabulary is known).

    >>> tokenize("RT @ann: Oil spill off the coast, see https://t.co/x #OilSpill 2019")[:2]
    (['oil', 'spill', 'oil spill', 'coast', 'see'], ['OilSpill'])
    """
    tags = HASHTAG.findall(text) if ("#" in text or "＃" in text) else []
    feats: dict[str, None] = {}
    vocab: list[str] = []
    prev = None
    folded = fold_case_accents(text)
    apostrophes = "'" in folded or "’" in folded
    for tok in _TOKEN.findall(folded):
        if apostrophes and ("'" in tok or "’" in tok):
            parts = re.split("['’]", tok)
            if parts[0] in ELISIONS:
                tok = parts[-1]
            elif parts[-1] == "s":                       # possessive / "it's"
                tok = parts[0]
            elif parts[-1] in _CONTRACTIONS:
                tok = ""
            else:
                tok = "".join(parts)
        if not tok or tok[0].isdigit():
            prev = None
            continue
        if tok.isalpha():
            vocab.append(tok)
        if len(tok) < 2 or tok in TREND_STOPWORDS:
            prev = None
            continue
        feats[tok] = None
        if prev is not None:
            feats[f"{prev} {tok}"] = None
        prev = tok
    return list(feats), tags, vocab


def _camel_pieces(tag: str) -> list[str] | None:
    """CamelCase pieces of a spelling (also cut at digits and "_"), or None without CamelCase.

    >>> _camel_pieces("NYCMarathon2019"), _camel_pieces("Nepalquake")
    (['NYC', 'Marathon', '2019'], None)
    """
    cuts, camel = [0], False
    for i in range(1, len(tag)):
        a, b, nxt = tag[i - 1], tag[i], tag[i + 1:i + 2]
        if (a.islower() and b.isupper()) or (a.isupper() and b.isupper() and nxt.islower()):
            camel = True
            cuts.append(i)
        elif a.isdigit() != b.isdigit() or "_" in (a, b):
            cuts.append(i)
    if not camel:
        return None
    return [p for p in (tag[i:j].strip("_") for i, j in zip(cuts, cuts[1:] + [len(tag)])) if p]


def _flood_weight(n: int) -> float:
    return 1.0 + math.log2(n) if n > 1 else float(n)


def _ids_by_feature(posts: Iterable[TrendPost], feats_of: dict[str, list[str]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for p in posts:
        for f in feats_of[p.text]:
            ids = out.get(f)
            if ids is None:
                out[f] = [p.id]
            else:
                ids.append(p.id)
    return out


class _Stream:
    """Who wrote each post and which near-duplicate group it is in."""

    def __init__(self, posts: list[TrendPost]):
        # An unknown author is keyed by the post's (int) id: never equal to a (str) handle.
        self.author = {p.id: p.author if p.author is not None else p.id for p in posts}
        self.root = {p.id: p.dup_root if p.dup_root is not None else p.id for p in posts}
        self.group_size = Counter(self.root.values())
        self.grouped = {i for i, r in self.root.items() if self.group_size[r] > 1}

    def support(self, ids: list[int]) -> tuple[float, int]:
        """(support, distinct authors) of posts: each author once, each near-duplicate group
        capped at 1 + log2(its authors)."""
        if self.grouped.isdisjoint(ids):                      # the common case, all in C
            n = len(set(map(self.author.__getitem__, ids)))
            return float(n), n
        # An author in several groups counts in the one with the smallest root: order-free.
        best: dict[str | int, int] = {}
        for i in ids:
            a, r = self.author[i], self.root[i]
            if r < best.get(a, r + 1):
                best[a] = r
        # fsum: exact, so the score does not depend on the order the posts came in.
        return math.fsum(map(_flood_weight, Counter(best.values()).values())), len(best)


class TrendDetector:
    """Trends of a stream of posts at stream time ``now``; see the module docstring."""

    def __init__(self, config: TrendsConfig | None = None):
        self.config = config or TrendsConfig()

    def run(self, posts: Iterable[TrendPost], now_ms: int | None = None) -> list[Trend]:
        cfg = self.config
        posts = list(posts)
        if not posts:
            return []
        now = now_ms if now_ms is not None else max(p.created_at for p in posts) + 1
        w = cfg.window_ms
        # Windows the stream covers: an archive that starts 3 h before now has 3 baseline
        # windows, not 24 silent ones that would make everything look like a burst.
        n_base = min(cfg.baseline_windows, max(0, (now - min(p.created_at for p in posts) - 1) // w))
        by_window: list[list[TrendPost]] = [[] for _ in range(n_base + 1)]
        for p in posts:
            if p.created_at < now and (k := (now - p.created_at - 1) // w) <= n_base:
                by_window[k].append(p)
        window = by_window[0]
        if not window:
            return []
        stream = _Stream([p for ps in by_window for p in ps])

        # Pass 1: tokenize each distinct text once (a flood shares one), learn the vocabulary.
        texts: dict[str, tuple[list[str], list[str]]] = {}
        words: list[str] = []
        for ps in by_window:
            for p in ps:
                if p.text not in texts:
                    feats, tags, ws = tokenize(p.text)
                    texts[p.text] = (feats, tags)
                    words += ws
        vocab = Counter(words)
        total = len(words)

        # Hashtag keys: sorted segment words. Baseline spellings are segmented only when their
        # letters could form a key seen in the window (a key is a permutation of its letters).
        keys: dict[str, str] = {}

        def key(tag: str) -> str:
            k = keys.get(tag)
            if k is None:
                pieces = _camel_pieces(tag)
                segs = ([fold_case_accents(x) for x in pieces] if pieces else
                        [x for part in fold_case_accents(tag).split("_") if part
                         for x in segment(part, vocab, total)])
                k = keys[tag] = "#" + " ".join(sorted(segs))
            return k

        def letters(tag: str) -> str:
            return "".join(sorted(fold_case_accents(tag).replace("_", "")))

        win_tags = {t for p in window for t in texts[p.text][1]}
        win_letters = {letters(t) for t in win_tags}
        for t in win_tags:
            key(t)
        feats_of: dict[str, list[str]] = {}
        for text, (feats, tags) in texts.items():
            tkeys = [key(t) for t in tags if t in keys or letters(t) in win_letters]
            feats_of[text] = feats + list(dict.fromkeys(tkeys))

        # Pass 2: the current window. Authors never outnumber posts, so posts are counted in C
        # first and only features with enough of them are followed further.
        n_posts = Counter(chain.from_iterable(feats_of[p.text] for p in window))
        common = {f for f, c in n_posts.items() if c >= cfg.min_authors}
        frequent = {t: [f for f in feats_of[t] if f in common] for t in {p.text for p in window}}
        cur_posts = _ids_by_feature(window, frequent)
        support = {f: sa for f, ids in cur_posts.items()
                   if (sa := stream.support(ids))[0] >= cfg.min_authors}
        spellings = Counter((keys[t], t) for p in window for t in texts[p.text][1])

        # Pass 3: the baseline, one window at a time, candidate features only.
        cand_of = {t: [f for f in feats_of[t] if f in support]
                   for t in {p.text for ps in by_window[1:] for p in ps}}
        base_sum: dict[str, float] = {}
        for ps in by_window[1:]:
            for f, ids in _ids_by_feature(ps, cand_of).items():
                base_sum[f] = base_sum.get(f, 0.0) + stream.support(ids)[0]

        names: dict[str, list[str]] = {}
        for (f, t), c in sorted(spellings.items(), key=lambda kv: (-kv[1], kv[0][1])):
            names.setdefault(f, []).append("#" + t)
        trends = []
        for f, (s, n_authors) in support.items():
            expected = base_sum.get(f, 0.0) / n_base if n_base else 0.0
            score = (s - expected) / math.sqrt(expected + cfg.alpha)
            if score <= 0:
                continue
            kind = "hashtag" if f[0] == "#" else "phrase" if " " in f else "term"
            label, *others = names[f] if kind == "hashtag" else [f]
            trends.append((Trend(label, kind, score, (s + cfg.alpha) / (expected + cfg.alpha), s,
                                 expected, n_posts[f], n_authors, others), f))
        trends.sort(key=lambda tf: (-tf[0].score, tf[0].label))
        kept = self._merge(trends, cur_posts)
        root, size = stream.root, stream.group_size
        for t, ids in kept:
            # Samples: one post per near-duplicate group (its smallest id), most-shared first.
            rep: dict[int, int] = {}
            for i in sorted(ids, reverse=True):
                rep[root[i]] = i
            t.sample_post_ids = sorted(rep.values(), key=lambda i: (-size[root[i]], i))[:5]
        return [t for t, _ in kept]

    def _merge(self, trends: list[tuple[Trend, str]],
               cur_posts: dict[str, list[int]]) -> list[tuple[Trend, set[int]]]:
        """Greedy, best first: a trend whose posts overlap a kept one's by Jaccard >= min_jaccard
        joins it (the best such); others are kept while there is room."""
        m = self.config.min_jaccard
        kept: list[tuple[Trend, set[int]]] = []
        sizes: list[int] = []                        # sorted sizes of the kept post sets
        for t, f in trends:
            n = len(cur_posts[f])
            # Jaccard <= smaller / larger: most pairs are ruled out by size alone.
            i = bisect_left(sizes, m * n)
            if i == len(sizes) or sizes[i] > n / m:
                if len(kept) < self.config.max_trends:
                    kept.append((t, set(cur_posts[f])))
                    insort(sizes, n)
                continue
            ids = set(cur_posts[f])
            best, best_j = None, 0.0
            for i, (_, other) in enumerate(kept):
                if m * max(n, len(other)) <= min(n, len(other)):
                    c = len(ids & other)
                    if (j := c / (n + len(other) - c)) > best_j:
                        best, best_j = i, j
            if best is not None and best_j >= m:
                kept[best][0].merged.extend([t.label] + t.merged)
            elif len(kept) < self.config.max_trends:
                kept.append((t, ids))
                insort(sizes, n)
        return kept

"""User interest profiles for ads: what a user posts and engages with, minus everything sensitive.

    >>> from townsquare.store import open_store
    >>> from townsquare.store.base import Stored
    >>> from townsquare.posts import Post
    >>> store = open_store(":memory:")
    >>> T = 1_700_000_000_000
    >>> _ = store.write_batch([Stored(Post(id=i, text=t, source="demo", author_handle="Ann",
    ...     created_at=T - i * 86_400_000).normalized()) for i, t in enumerate([
    ...     "Booked flights to Lisbon!", "Best tacos in town", "Going to Mass on Sunday"], 1)], [])
    >>> p = ProfileBuilder(store).build("@ann", now_ms=T)
    >>> [INTERESTS[i].path for i in p.interests], p.posts_skipped_sensitive
    (['/Travel & Transportation/Air Travel', '/Travel & Transportation', '/Food & Drink/Food', '/Food & Drink'], 1)
    >>> p.signals[0]
    '1 post about Air Travel in the last 30 days'

What goes in (``ProfileBuilder.build``):

- the user's own posts (``Store.posts_by_author``: by handle or numeric id, newest first, at most
  ``max_posts``, only before ``before_ms`` when given, so an evaluation can hold later posts out);
- engagements where the data has them: the post a reply or quote answers and the post a repost
  shares count with ``engagement_weight`` (0.5): someone who replies to a travel post cares about
  travel less surely than someone who writes one. A repost's own text is the shared post's, so a
  repost counts once, as an engagement. Likes are not in the data: ``liked`` is the hook for a
  source that has them (``liked(user, before_ms) -> [(post_id, liked_at_ms), ...]``, the likes
  before that time; unknown posts are ignored);
- each action's weight decays with its age: ``long_term + (1 - long_term) * 0.5 **
  (age_days / half_life_days)`` (``ClassifierConfig.long_term``): recent posts say most about
  what a user wants now, but a share of every post never fades, so what an account has always
  posted about (a news outlet's news) is not outweighed by one recent post on something else.

What is left out: any post with a special category (``townsquare.ads.sensitive``) is skipped
whole, together with whatever it is paired with (a reply to a political post is skipped with the
political post): it is counted in ``posts_skipped_sensitive`` and nothing else of it is kept, not
its topics, not its vector (the centroid), not its language or its coordinates. Opted-out users
(``Store.opted_out``) and known minors (``ProfileStore.set_minor``) get no profile at all: DSA
Art. 28(2) forbids profiling-based ads to minors. Opt-outs match as they do for training: the
user asked for, or any handle or numeric id on their posts.

Interests are the topics of ``townsquare.ads.taxonomy`` (Google Topics v2, tiers 1-2), keyed by
their integer ids; a sensitive topic (247 /News/Politics) is never scored. Per post (every weight
below is a field of ``ClassifierConfig``, so an evaluation can tune them without editing code):

- a topic scores ``keyword_score`` (1.0) when its keywords match;
- with an embedder, the post's closest topic prototype scores ``embedding_score`` (1.0) when it
  beats every background anchor (small talk) by ``embedding_margin``; when the closest is a
  sensitive topic, nothing does. As strong as a keyword: a local outlet's headlines that name no
  news word are still closest to /News, and counted at half a keyword they lost to a few arts
  posts that name "gallery" or "sitcom";
- news first: when a post matches the keywords of /News, its Local or World News, the keyword
  scores of topics outside /News are multiplied by ``news_damping`` (0.5): a news
  organisation's post about a plane crash is news before it is air travel, one about a siege in
  a café news before food (issue 19). This is a product rule, not a tuned weight:
  ``eval/interests.py`` does not search it (left at 1.0, it scores one tuning account more);
- a tier-2 topic gives ``parent_share`` (1.0) of its score to its tier-1 parent (/News/World
  News -> /News), so a campaign targeting /News reaches every kind of news reader.

A profile's topic weight is ``1 - exp(-total / saturation)`` over the decayed scores (saturation
3): three fresh posts on a topic make 0.63, ten make 0.96; a weight is an absolute strength that
ad ranking can compare across users, not a share.

Location: only from posts with public coordinates, coarsened to a country code by the nearest of
~110 reference cities within 600 km (``_CITIES``): approximate near borders, never finer than a
country. The country of most geotagged posts is kept when it holds at least half of them, so a
holiday abroad does not move anyone.

Cost, measured on the CrisisNLP volunteers data (26k posts) for its 40 busiest authors (~20 posts
each, 2 cores): 3 ms a profile with keywords, 140 ms with e5-small-int8 embedding every text (a
store embedded with that model has the vectors already); ``posts_by_author`` itself 0.1 ms.
"""
from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from townsquare.ads.sensitive import (ANCHORS, PROFILED, KeywordMatcher, SensitiveDetector,
                                      prototypes)
from townsquare.ads.taxonomy import INTERESTS
from townsquare.embed.stage import from_blobs
from townsquare.posts import Post
from townsquare.store.base import Store, author_key
from townsquare.store.sidecar import connect

if TYPE_CHECKING:   # pragma: no cover
    from townsquare.protocols import Embedder

__all__ = ["ClassifierConfig", "Profile", "ProfileBuilder", "ProfileStore", "country_of"]

DAY_MS = 86_400_000
NEWS = 243                  # /News
# Topics whose keywords make a post news first (``ClassifierConfig.news_damping``): news itself,
# local and world news. Not /News/Business News: a post on the stock market is finance as much.
DAMPING_NEWS = frozenset({243, 245, 249})
LikesHook = Callable[[str, "int | None"], Iterable[tuple[int, int]]]


@dataclass(frozen=True, slots=True)
class ClassifierConfig:
    """Every weight of the per-post topic classifier (see the module docstring).

        >>> ClassifierConfig(news_damping=1.0).embedding_score
        1.0
    """

    keyword_score: float = 1.0
    # the closest prototype counts as much as a keyword: 1.0 chosen on the tuning half of
    # eval/interests.py (seed 19; top-1 0.879 -> 0.897 there, against 0.25, 0.5 and 0.75)
    embedding_score: float = 1.0
    embedding_margin: float = 0.0     # cosine the closest topic needs over the best anchor
    news_damping: float = 0.5         # other topics' keyword scores in a post matching news
    parent_share: float = 1.0         # of a tier-2 topic's score that its parent gets
    saturation: float = 3.0           # decayed post-scores at which a topic reaches 1 - 1/e
    # share of a post's weight that never decays with age: 0.5 chosen on the tuning half of
    # eval/interests.py (seed 19; top-1 0.841 -> 0.879 there, against 0.0 and 0.25)
    long_term: float = 0.5

    def __post_init__(self) -> None:
        for name in ("keyword_score", "embedding_score", "news_damping", "parent_share",
                     "long_term"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"ClassifierConfig.{name} must be in [0, 1], got {v}")
        if not self.saturation > 0:
            raise ValueError(f"ClassifierConfig.saturation must be > 0, got {self.saturation}")
        if not -1.0 <= self.embedding_margin <= 1.0:
            raise ValueError(f"ClassifierConfig.embedding_margin must be in [-1, 1], "
                             f"got {self.embedding_margin}")


# --- the profile ----------------------------------------------------------------------------------
@dataclass(slots=True)
class Profile:
    """A user's ad profile. Holds no post text and no special category, by construction: interest
    ids must be topic ids of ``INTERESTS`` that are not sensitive (checked on creation; ids as
    text, as JSON gives them back, become ints)."""

    user: str
    interests: dict[int, float] = field(default_factory=dict)
    centroid: np.ndarray | None = None
    languages: dict[str, float] = field(default_factory=dict)
    location: str | None = None
    posts_used: int = 0
    posts_skipped_sensitive: int = 0
    engagements_used: int = 0
    updated_at: int = 0
    signals: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.user = author_key(self.user)
        interests = {}
        for k, w in self.interests.items():
            tid = int(k) if isinstance(k, str) and k.isdigit() else k
            if isinstance(tid, bool) or not isinstance(tid, int) or tid not in PROFILED:
                raise ValueError(f"not an ad interest: {k!r}")
            if not 0.0 <= w <= 1.0:
                raise ValueError(f"interest weight out of [0, 1]: {k}={w}")
            interests[tid] = w
        self.interests = interests
        if self.centroid is not None:
            c = np.asarray(self.centroid, dtype=np.float32)
            if c.ndim != 1 or not np.isfinite(c).all():
                raise ValueError(f"centroid must be a finite vector, got shape {c.shape}")
            self.centroid = c
        if self.location is not None and not re.fullmatch(r"[A-Z]{2}", self.location):
            raise ValueError(f"location must be a country code, got {self.location!r}")
        if min(self.posts_used, self.posts_skipped_sensitive, self.engagements_used) < 0:
            raise ValueError("counts must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; the centroid as a list of floats (or None), topic ids as text (JSON object
        keys; ``from_dict`` gives them back as ints)."""
        return {"user": self.user, "interests": {str(k): w for k, w in self.interests.items()},
                "centroid": None if self.centroid is None
                else [round(float(x), 6) for x in self.centroid],
                "languages": dict(self.languages), "location": self.location,
                "posts_used": self.posts_used,
                "posts_skipped_sensitive": self.posts_skipped_sensitive,
                "engagements_used": self.engagements_used, "updated_at": self.updated_at,
                "signals": list(self.signals)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Profile":
        c = d.get("centroid")
        return cls(**{**d, "centroid": None if c is None else np.asarray(c, dtype=np.float32)})

    def topics(self, lang: str = "en") -> list[dict[str, Any]]:
        """The interests as topics, highest first: id, path, label in ``lang`` (English when
        the taxonomy has no such label), weight.

            >>> Profile("ann", interests={"249": 0.5}).topics("fr")[0]["label"]
            'Actualité internationale'
        """
        return [{"id": i, "path": INTERESTS[i].path,
                 "label": INTERESTS[i].labels.get(lang, INTERESTS[i].name), "weight": w}
                for i, w in sorted(self.interests.items(),
                                   key=lambda kv: (-kv[1], -INTERESTS[kv[0]].tier, kv[0]))]


# --- coarse location ------------------------------------------------------------------------------
# Reference cities "CC lat lon; ..." per country: enough that the nearest one is usually in the
# right country (several for large countries and along busy borders).
_CITIES_TEXT = """
US 40.7 -74.0; 34.05 -118.2; 41.9 -87.6; 29.8 -95.4; 25.8 -80.2; 47.6 -122.3; 39.7 -105.0;
US 33.7 -84.4; 33.4 -112.1; 37.8 -122.4; 32.8 -96.8; 42.4 -71.1; 45.0 -93.3; 39.1 -94.6;
US 40.8 -111.9; 61.2 -149.9; 21.3 -157.9; 29.95 -90.1; 42.3 -83.0; 35.2 -80.8; 36.2 -86.8;
US 38.9 -77.0; 30.3 -97.7; 45.5 -122.7; 36.2 -115.1; 32.7 -117.2; 27.9 -82.5; 39.95 -75.2
CA 43.7 -79.4; 45.5 -73.6; 49.3 -123.1; 51.0 -114.1; 49.9 -97.1; 45.4 -75.7; 44.6 -63.6;
CA 53.5 -113.5; 46.8 -71.2; 52.1 -106.7; 56.7 -111.4
MX 19.4 -99.1; 20.7 -103.3; 25.7 -100.3; 32.5 -117.0; 21.2 -86.8; 28.6 -106.1; 19.0 -98.2
GB 51.5 -0.1; 53.5 -2.2; 55.9 -4.3; 52.5 -1.9; 54.6 -5.9; 51.5 -3.2; 57.1 -2.1
IE 53.35 -6.26; 51.9 -8.5; 53.3 -9.05
FR 48.86 2.35; 45.76 4.84; 43.3 5.37; 43.6 1.44; 44.84 -0.58; 47.2 -1.55; 50.63 3.06;
FR 48.58 7.75; 48.1 -1.7; 43.7 7.27; 45.78 3.08; 47.3 5.0; 49.1 6.2
ES 40.4 -3.7; 41.4 2.17; 37.4 -6.0; 39.47 -0.38; 43.26 -2.93; 43.36 -8.4; 41.65 -0.88;
ES 36.7 -4.4; 28.1 -15.4; 39.6 2.65
PT 38.7 -9.14; 41.15 -8.6; 37.0 -7.9
DE 52.5 13.4; 48.1 11.6; 53.55 10.0; 50.94 6.96; 50.1 8.7; 48.8 9.2; 51.3 12.4; 49.2 7.0
IT 41.9 12.5; 45.46 9.19; 40.85 14.27; 38.1 13.36; 45.07 7.69; 44.5 11.34; 42.6 13.3; 39.2 9.1
BE 50.85 4.35; 51.2 4.4
NL 52.37 4.9; 51.9 4.5
CH 47.37 8.54; 46.2 6.14
AT 48.2 16.37; 47.1 15.4
GR 37.98 23.7; 40.6 22.9
NP 27.7 85.3; 28.2 84.0
IN 28.6 77.2; 19.1 72.9; 13.1 80.3; 22.6 88.4; 12.97 77.6; 10.0 76.3; 17.4 78.5
PK 24.9 67.0; 31.5 74.3; 33.7 73.0; 34.0 71.5
BD 23.8 90.4
LK 6.9 79.9
PH 14.6 121.0; 10.3 123.9; 11.2 125.0; 7.1 125.6
AU -33.9 151.2; -37.8 145.0; -31.95 115.9; -27.5 153.0; -12.5 130.8
NZ -36.85 174.76; -43.5 172.6; -41.3 174.8; -42.4 173.7
JP 35.7 139.7; 34.7 135.5; 43.1 141.3
CL -33.45 -70.67; -23.65 -70.4; -36.8 -73.05
EC -0.2 -78.5; -2.2 -79.9; -0.95 -80.7
PE -12.05 -77.04
CO 4.7 -74.07; 6.25 -75.6
AR -34.6 -58.4; -31.4 -64.2
BR -23.55 -46.6; -22.9 -43.2; -15.8 -47.9; -3.1 -60.0; -8.05 -34.9
VE 10.5 -66.9
HT 18.5 -72.3
DO 18.5 -69.9
PR 18.47 -66.1
CU 23.1 -82.4
BS 25.05 -77.35
GT 14.6 -90.5
NG 6.5 3.4; 9.1 7.5
KE -1.3 36.8
MZ -19.8 34.9; -25.97 32.6
ZW -17.8 31.05; -20.15 28.6
MW -15.8 35.0
ZA -26.2 28.05; -33.9 18.4
"""


def _parse_cities(text: str) -> tuple[list[str], np.ndarray]:
    codes, coords = [], []
    for line in text.strip().splitlines():
        code, rest = line.split(maxsplit=1)
        for pair in rest.split(";"):
            if pair.strip():
                lat, lon = (float(x) for x in pair.split())
                codes.append(code)
                coords.append((lat, lon))
    return codes, np.radians(np.array(coords))                       # (n, 2) lat, lon


_CITY_CODES, _CITY_RAD = _parse_cities(_CITIES_TEXT)
_MAX_KM = 600.0


def country_of(lat: float, lon: float) -> str | None:
    """The country code of the nearest reference city within 600 km, else None.

    >>> country_of(48.85, 2.35), country_of(40.4, -3.7), country_of(0.0, -30.0)
    ('FR', 'ES', None)
    """
    la, lo = math.radians(lat), math.radians(lon)
    d_lat = _CITY_RAD[:, 0] - la
    d_lon = _CITY_RAD[:, 1] - lo
    a = np.sin(d_lat / 2) ** 2 + math.cos(la) * np.cos(_CITY_RAD[:, 0]) * np.sin(d_lon / 2) ** 2
    km = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))     # haversine, (n,)
    i = int(km.argmin())
    return _CITY_CODES[i] if km[i] <= _MAX_KM else None


# --- building -------------------------------------------------------------------------------------
_LANG_NAMES = {"en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian",
               "pt": "Portuguese", "nl": "Dutch", "ar": "Arabic", "hi": "Hindi", "ja": "Japanese"}
_RT = re.compile(r"^\s*RT\s+@\w+:?\s*", re.IGNORECASE)


@dataclass(slots=True)
class _Action:
    """One thing the user did: a post of their own, or an engagement with someone's post."""

    text: str
    post_id: int
    at: int                 # ms: when the user acted (their post's time, or the like's)
    weight: float           # 1.0 own post, engagement_weight otherwise
    own: Post | None        # the user's own post, when the action is one
    group: int              # actions of one group stand or fall together (a reply + its parent)


class ProfileBuilder:
    """Builds a ``Profile`` from a store's posts (see the module docstring for what counts).

    ``embedder``: adds interest prototypes and the centroid; stored vectors are reused when the
    store was embedded with the same model. ``detector``: the special-category guard (default: a
    ``SensitiveDetector`` over ``embedder``). ``profiles``: a ``ProfileStore`` whose minors get no
    profile. ``liked``: the likes hook. ``top_k``/``min_weight``: interests kept. ``config``: the
    classifier's weights (``ClassifierConfig``).
    """

    def __init__(self, store: Store, *, embedder: "Embedder | None" = None,
                 half_life_days: float = 30.0, max_posts: int = 500,
                 detector: SensitiveDetector | None = None,
                 profiles: "ProfileStore | None" = None, liked: LikesHook | None = None,
                 engagement_weight: float = 0.5, top_k: int = 10, min_weight: float = 0.05,
                 config: ClassifierConfig | None = None):
        if not half_life_days > 0:
            raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
        if max_posts < 1 or top_k < 1:
            raise ValueError("max_posts and top_k must be >= 1")
        if not 0.0 < engagement_weight <= 1.0 or not 0.0 <= min_weight < 1.0:
            raise ValueError("engagement_weight must be in (0, 1], min_weight in [0, 1)")
        self.store = store
        self.embedder = embedder
        self.half_life_days = float(half_life_days)
        self.max_posts = int(max_posts)
        self.detector = detector if detector is not None else SensitiveDetector(embedder)
        self.profiles = profiles
        self.liked = liked
        self.engagement_weight = float(engagement_weight)
        self.top_k = int(top_k)
        self.min_weight = float(min_weight)
        self.config = config if config is not None else ClassifierConfig()
        self.matcher = KeywordMatcher(PROFILED)
        self.interest_ids: list[int] = list(PROFILED)        # the columns of ``scores``

    # --- the steps --------------------------------------------------------------------------------
    def build(self, user: str | int, *, now_ms: int | None = None,
              before_ms: int | None = None) -> Profile | None:
        """The profile of ``user`` (a handle or numeric id) as of ``now_ms`` (default:
        ``before_ms``, else the clock), from posts before ``before_ms`` (and not after
        ``now_ms``); None for an opted-out user or a known minor."""
        key = author_key(user)
        opted = self.store.opted_out()
        if key in opted or (self.profiles is not None and self.profiles.is_minor(key)):
            return None
        now = int(now_ms if now_ms is not None else
                  before_ms if before_ms is not None else time.time() * 1000)
        cutoff = now + 1 if before_ms is None else min(int(before_ms), now + 1)
        posts = self.store.posts_by_author(key, limit=self.max_posts, before_ms=cutoff)
        # The user asked by handle may have opted out by numeric id (or the other way round):
        # a post whose handle or id is opted out is the opted-out person's, as for training.
        if any(k in opted for p in posts for k in _authors_of(p)):
            return None
        actions = self._actions(key, posts, cutoff)
        texts = [a.text for a in actions]
        vectors = self._vectors(actions)                              # (n, dim) or None
        sensitive = self._sensitive(texts, vectors)
        bad_groups = {a.group for a, s in zip(actions, sensitive) if s}
        keep = [i for i, a in enumerate(actions) if a.group not in bad_groups]
        kept = [actions[i] for i in keep]
        lt = self.config.long_term
        decay = np.array([lt + (1.0 - lt) * 0.5 ** (max(0, now - a.at) / DAY_MS
                                                    / self.half_life_days)
                          for a in kept], dtype=np.float64)            # (m,)
        weights = decay * np.array([a.weight for a in kept], dtype=np.float64)
        scores = self.scores([a.text for a in kept],
                             None if vectors is None else vectors[keep])             # (m, k)
        interests = self._weights(scores, weights)
        own = [a.own for a in kept if a.own is not None]
        return Profile(
            user=key, interests=interests,
            centroid=None if vectors is None else _centroid(vectors[keep], weights),
            languages=_languages(own), location=_location(own),
            posts_used=len(own), posts_skipped_sensitive=len(bad_groups),
            engagements_used=sum(1 for a in kept if a.own is None), updated_at=now,
            signals=self._signals(kept, scores, interests, own, now))

    def _actions(self, key: str, posts: list[Post], cutoff: int) -> list[_Action]:
        refs = {p.repost_of_id or p.quote_of_id or p.reply_to_id for p in posts} - {None}
        liked = [] if self.liked is None else [(int(i), int(t)) for i, t in self.liked(key, cutoff)
                                               if t < cutoff]
        wanted = sorted(refs | {i for i, _ in liked})
        found = self.store.posts_by_id(wanted) if wanted else {}
        out: list[_Action] = []
        ew = self.engagement_weight
        for g, p in enumerate(posts):
            at = p.created_at or 0
            if p.repost_of_id is not None:
                # A repost's text is the shared post's: one engagement, not an own post as well.
                src = found.get(p.repost_of_id)
                text = src.text if src is not None else _RT.sub("", p.text)
                out.append(_Action(text, p.repost_of_id if src else p.id, at, ew, None, g))
                continue
            out.append(_Action(p.text, p.id, at, 1.0, p, g))
            ref = p.quote_of_id or p.reply_to_id
            # A reply in the user's own thread is not an engagement: that post counts as theirs.
            if ref is not None and ref in found and key not in _authors_of(found[ref]):
                out.append(_Action(found[ref].text, ref, at, ew, None, g))
        for j, (pid, at) in enumerate(liked):
            if pid in found:
                out.append(_Action(found[pid].text, pid, at, ew, None, len(posts) + j))
        return out

    def _vectors(self, actions: Sequence[_Action]) -> np.ndarray | None:
        """Unit vectors of the actions' texts: the store's own when it was embedded by this model
        (``vectors_of``), the rest embedded now."""
        if self.embedder is None:
            return None
        dim = self.embedder.dim
        out = np.zeros((len(actions), dim), dtype=np.float32)           # (n, dim)
        have: dict[int, bytes] = {}
        if actions and self.store.embed_model() == self.embedder.name:
            have = self.store.vectors_of(sorted({a.post_id for a in actions}))
        missing = [i for i, a in enumerate(actions) if a.post_id not in have]
        stored = [i for i, a in enumerate(actions) if a.post_id in have]
        if stored:
            out[stored] = from_blobs([have[actions[i].post_id] for i in stored], dim)
        if missing:
            out[missing] = self.embedder.passages([actions[i].text for i in missing])
        return out

    def _sensitive(self, texts: list[str], vectors: np.ndarray | None) -> list[set[str]]:
        d = self.detector
        same_model = (vectors is not None and d.embedder is not None
                      and d.embedder.name == getattr(self.embedder, "name", None))
        return d.batch(texts, vectors=vectors if same_model else None)

    def scores(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """(m, k) per-post topic scores, columns ``interest_ids`` (see the module docstring):
        keywords, the embedder's closest topic when it beats every anchor (``vectors``: the
        texts' passage embeddings by ``embedder``; None: keywords only), news damping, then a
        child's score to its parent."""
        cfg = self.config
        k = len(self.interest_ids)
        col = {iid: j for j, iid in enumerate(self.interest_ids)}
        news = [col[i] for i in self.interest_ids if i == NEWS or INTERESTS[i].parent == NEWS]
        damping = DAMPING_NEWS & set(col)
        S = np.zeros((len(texts), k), dtype=np.float64)
        for i, t in enumerate(texts):
            hits = self.matcher.match(t)
            damp = cfg.news_damping if hits & damping else 1.0
            for iid in hits:
                S[i, col[iid]] = cfg.keyword_score
            if damp < 1.0:
                keep = S[i, news].copy()
                S[i] *= damp
                S[i, news] = keep
        if vectors is not None and len(texts) and self.embedder is not None:
            # Every topic competes, the sensitive ones too: a post closest to /News/Politics
            # must not fall to its runner-up; it scores nothing.
            ids = list(INTERESTS)
            sims = vectors @ prototypes(self.embedder, INTERESTS).T             # (m, 168)
            anchor = (vectors @ prototypes(self.embedder, ANCHORS).T).max(axis=1)   # (m,)
            best = sims.argmax(axis=1)                                          # (m,)
            for i, j in enumerate(best):
                if ids[j] in col and sims[i, j] > anchor[i] + cfg.embedding_margin:
                    c = col[ids[j]]
                    S[i, c] = max(S[i, c], cfg.embedding_score)
        for iid in self.interest_ids:
            p = INTERESTS[iid].parent
            if p is not None and p in col:
                S[:, col[p]] = np.maximum(S[:, col[p]], cfg.parent_share * S[:, col[iid]])
        return S

    def _weights(self, scores: np.ndarray, weights: np.ndarray) -> dict[int, float]:
        if not len(weights):
            return {}
        totals = weights @ scores                                       # (k,)
        w = 1.0 - np.exp(-totals / self.config.saturation)
        # Ranked by the evidence itself, not the weight: weights saturate (two busy topics both
        # round to 1.0 and would tie). A parent carries its children's scores, so it ties with a
        # child whose posts are all it has: the child, more specific, goes first then.
        order = sorted(range(len(w)), key=lambda j: (-round(float(totals[j]), 6),
                                                     -INTERESTS[self.interest_ids[j]].tier,
                                                     self.interest_ids[j]))
        return {self.interest_ids[j]: round(float(w[j]), 4) for j in order[:self.top_k]
                if w[j] >= self.min_weight}

    def _signals(self, kept: list[_Action], scores: np.ndarray, interests: dict[int, float],
                 own: list[Post], now: int) -> list[str]:
        """Short reasons in plain words, from counts and names only (never post text)."""
        window = max(1, round(self.half_life_days))
        since = now - window * DAY_MS
        col = {iid: j for j, iid in enumerate(self.interest_ids)}
        out = []
        for iid in list(interests)[:3]:
            name = INTERESTS[iid].name
            on = [a for i, a in enumerate(kept) if scores[i, col[iid]] > 0]
            posts = [a for a in on if a.own is not None]
            recent = sum(1 for a in posts if a.at >= since)
            engaged = len(on) - len(posts)
            if recent:
                out.append(f"{_n(recent, 'post')} about {name} in the last {window} days")
            elif posts:
                out.append(f"{_n(len(posts), 'post')} about {name}")
            if engaged:
                out.append(f"engaged with {_n(engaged, 'post')} about {name}")
        langs = _languages(own)
        if langs:
            top = max(sorted(langs), key=lambda x: langs[x])
            out.append(f"posts mostly in {_LANG_NAMES.get(top, top)}")
        loc = _location(own)
        if loc:
            out.append(f"public post locations in {loc}")
        return out


def _authors_of(p: Post) -> tuple[str, ...]:
    """The keys a post's author is opted out by (``author_key``): handle and numeric id."""
    return tuple(k for k in ((p.author_handle or "").lower(),
                             "" if p.author_id is None else str(p.author_id)) if k)


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _centroid(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """Unit vector of the weighted mean of ``vectors`` (m, dim); None when there is nothing."""
    if not len(weights) or weights.sum() <= 0:
        return None
    v = (weights[:, None] * vectors).sum(axis=0)                        # (dim,)
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 1e-12 else None


def _languages(own: list[Post]) -> dict[str, float]:
    """Shares of the identified languages of the user's posts (>= 5%), largest first."""
    c = Counter(p.lang for p in own if p.lang and p.lang != "und")
    total = sum(c.values())
    return {lang: round(n / total, 3) for lang, n in sorted(c.items(), key=lambda x: (-x[1], x[0]))
            if n / total >= 0.05}


def _location(own: list[Post]) -> str | None:
    c = Counter(country_of(p.lat, p.lon) for p in own if p.lat is not None and p.lon is not None)
    total = sum(c.values())
    if not total:
        return None
    code, n = max(sorted(c.items(), key=lambda x: str(x[0])), key=lambda x: x[1])
    return code if code is not None and 2 * n >= total else None


# --- storage --------------------------------------------------------------------------------------
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS profile_profiles (user TEXT PRIMARY KEY, body TEXT NOT NULL, "
    "centroid BLOB, updated_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS profile_minors (user TEXT PRIMARY KEY, marked_at INTEGER NOT NULL)",
)


class ProfileStore:
    """Profiles and known minors in a small SQLite file (``<home>/ads.db``, tables ``profile_*``,
    shared with the campaign store). A known minor never has a profile: ``set_minor(user, True)``
    deletes theirs and ``save`` refuses one.

        >>> ps = ProfileStore(":memory:")
        >>> ps.save(Profile("Ann", interests={332: 0.5}, updated_at=1))
        True
        >>> ps.get("@ann").interests, ps.set_minor("ann", True), ps.get("ann")
        ({332: 0.5}, None, None)
        >>> ps.save(Profile("ann")), ps.delete("ann")
        (False, False)
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._db = connect(self.path)          # WAL, shared by threads, busy timeout
        self._lock = threading.Lock()
        with self._tx() as db:
            for stmt in _SCHEMA:
                db.execute(stmt)

    class _Tx:
        def __init__(self, store: "ProfileStore"):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            self.store._db.execute("BEGIN IMMEDIATE")
            return self.store._db

        def __exit__(self, exc_type, *_: Any) -> None:
            try:
                self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.store._lock.release()

    def _tx(self) -> "_Tx":
        return ProfileStore._Tx(self)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ProfileStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def save(self, profile: Profile) -> bool:
        """Store (or replace) ``profile``; False, and nothing kept, for a known minor."""
        body = profile.to_dict()
        body.pop("centroid")
        blob = None if profile.centroid is None else profile.centroid.astype(np.float32).tobytes()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM profile_minors WHERE user = ?",
                          (profile.user,)).fetchone():
                db.execute("DELETE FROM profile_profiles WHERE user = ?", (profile.user,))
                return False
            db.execute("INSERT INTO profile_profiles (user, body, centroid, updated_at) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT(user) DO UPDATE SET body = excluded.body,"
                       " centroid = excluded.centroid, updated_at = excluded.updated_at",
                       (profile.user, json.dumps(body, sort_keys=True), blob, profile.updated_at))
        return True

    def get(self, user: str | int) -> Profile | None:
        with self._lock:
            r = self._db.execute("SELECT body, centroid FROM profile_profiles WHERE user = ?",
                                 (author_key(user),)).fetchone()
        if r is None:
            return None
        d = json.loads(r[0])
        d["centroid"] = None if r[1] is None else np.frombuffer(r[1], dtype=np.float32).copy()
        try:
            return Profile.from_dict(d)
        except ValueError:
            # Saved before the Topics taxonomy (slugs like "travel"): stale, so built again.
            return None

    def delete(self, user: str | int) -> bool:
        """Forget a user's profile; whether there was one."""
        with self._tx() as db:
            return db.execute("DELETE FROM profile_profiles WHERE user = ?",
                              (author_key(user),)).rowcount > 0

    def forget(self, users: Iterable[str]) -> int:
        """Delete the profiles of ``users`` (say, ``store.opted_out()``); how many there were."""
        keys = sorted({author_key(u) for u in users})
        with self._tx() as db:
            return sum(db.execute("DELETE FROM profile_profiles WHERE user = ?", (k,)).rowcount
                       for k in keys)

    def users(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT user FROM profile_profiles ORDER BY user")]

    def set_minor(self, user: str | int, minor: bool) -> None:
        """Record whether ``user`` is known to be a minor; marking one deletes their profile."""
        key = author_key(user)
        with self._tx() as db:
            if minor:
                db.execute("INSERT OR IGNORE INTO profile_minors (user, marked_at) VALUES (?, ?)",
                           (key, int(time.time() * 1000)))
                db.execute("DELETE FROM profile_profiles WHERE user = ?", (key,))
            else:
                db.execute("DELETE FROM profile_minors WHERE user = ?", (key,))

    def is_minor(self, user: str | int) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM profile_minors WHERE user = ?",
                                    (author_key(user),)).fetchone() is not None

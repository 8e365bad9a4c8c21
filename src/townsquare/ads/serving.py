"""Choose an ad for a user in a context, write its copy, record the impression and say why.

    server = AdServer(store, campaigns, profiles, builder, writer=CopyWriter(backend))
    d = server.run("ann", context="trail running")       # a Decision, or None when nothing fits
    print(d.copy, d.why)

The decision, in order:

1. **Consent.** A user who opted out (``Store.opt_out``) or is known to be a minor
   (``ProfileStore.set_minor``) gets a non-personalized ad: no profile is read or built, and the
   choice uses only the context (a search query) or the bid.
2. **Eligibility.** Live campaigns (status, schedule) whose languages include the user's (or the
   context's), whose locations include the user's coarse location when they name any, whose
   exclusion keywords are absent from the context, whose brand-safety settings accept the
   context (the query and its top posts, classified by ``ads.safety``; without a trained
   classifier, campaigns that ask for brand safety are not shown next to a query at all: the
   check fails closed), with budget left and under the user's frequency cap.
3. **Ranking by expected value**: ``relevance x bid x variety``, where relevance in [0, 1] is
   the proxy for a click probability that this offline setting allows (no click logs exist to
   fit one):

       personalized:      0.5 * interest match + 0.5 * closeness(profile centroid, campaign)
       non-personalized:  closeness(context, campaign), or 0.5 without a context

   The interest match is the profile's weight on the campaign's best matching topic (ids of
   ``ads.taxonomy``; a campaign targeting a tier-1 topic such as 243 /News matches a profile's
   tier-2 /News/World News through the parent's weight, which the child feeds); closeness is
   ``exp((cos - best cos) / 0.02)`` over the eligible campaigns (``_closeness``).
   **Variety where it is earned**: ``variety = 1 - diversity_weight x share``, the campaign's
   share of the last ``diversity_window`` impressions of the ledger (``ServingConfig``: 0.5 and
   200). A campaign that took every recent impression keeps half its value, so a second campaign
   about as relevant gets the next users; one that is not relevant (relevance near 0) stays out
   whatever the first one's share. The per-user, per-day frequency cap (``frequency_cap``, in the
   ledger) still bounds what one user sees of one campaign. Ties go to the lower campaign id, so
   the same inputs and ledger give the same ad.
4. **Copy** in the user's language: an approved creative when the advertiser has approved some
   (the one closest to the user), else written for the user about their top matching topic,
   named by its label in the user's language (``INTERESTS[id].labels[lang]``; ``ads.creative``):
   the backend's draft when it passes every rule, else the template.
5. **The ledger** records the impression atomically with the budget and cap checks; when a
   concurrent request took the last of either, the next candidate is tried.

Every impression keeps the signals that chose it, and ``why(impression)`` answers in plain words.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from townsquare.ads.campaigns import Campaign, CampaignStore
from townsquare.ads.creative import Copy, CopyWriter, template_copy
from townsquare.ads.profiles import Profile, ProfileBuilder, ProfileStore
from townsquare.ads.safety import BrandSafety
from townsquare.ads.sensitive import SensitiveDetector
from townsquare.ads.taxonomy import INTERESTS
from townsquare.embed.models import get_embedder
from townsquare.llm import Backend
from townsquare.protocols import Embedder
from townsquare.store.base import Store, author_key
from townsquare.timing import Laps

TEMPERATURE = 0.02      # of the closeness of campaigns to a profile or context (``_closeness``)


@dataclass(frozen=True, slots=True)
class ServingConfig:
    """The ranking's weights (see the module docstring): ``interest_share`` of relevance from the
    interest match (the rest from closeness), ``diversity_weight`` of the variety term, and the
    ``diversity_window``: how many of the ledger's latest impressions it reads.

        >>> ServingConfig(diversity_weight=0.0)
        ServingConfig(interest_share=0.5, diversity_weight=0.0, diversity_window=200)
    """

    interest_share: float = 0.5
    diversity_weight: float = 0.5
    diversity_window: int = 200

    def __post_init__(self) -> None:
        if not 0.0 <= self.interest_share <= 1.0 or not 0.0 <= self.diversity_weight <= 1.0:
            raise ValueError("interest_share and diversity_weight must be in [0, 1]")
        if self.diversity_window < 1:
            raise ValueError(f"diversity_window must be >= 1, got {self.diversity_window}")


class _Hit(Protocol):
    @property
    def text(self) -> str: ...


class _Results(Protocol):
    @property
    def results(self) -> Sequence[_Hit]: ...


class ContextSearch(Protocol):
    """What the ad server needs of a search engine (``search.engine.SearchEngine``): the top
    posts of a query, whose texts the brand-safety check reads with it."""

    def run(self, query: str, *, limit: int) -> _Results: ...


@dataclass(frozen=True, slots=True)
class AdContext:
    """Where an ad would be shown: a search query (``text``; None: the user's timeline), its
    vector, the brand-safety flags of the query and its top posts, and whether a classifier
    checked them at all (without one, campaigns that ask for brand safety are not shown next to
    a query)."""

    text: str | None = None
    vec: np.ndarray | None = None
    flags: frozenset[str] = frozenset()
    checked: bool = False


@dataclass(slots=True)
class Decision:
    impression_id: int
    campaign_id: str
    advertiser: str
    copy: str
    copy_origin: str
    lang: str
    landing_url: str
    personalized: bool
    relevance: float
    bid_cpm: float
    signals: list[str]
    why: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    rejected_drafts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"impression_id": self.impression_id, "campaign": self.campaign_id,
                "advertiser": self.advertiser, "copy": self.copy, "copy_origin": self.copy_origin,
                "lang": self.lang, "landing_url": self.landing_url,
                "personalized": self.personalized, "relevance": round(self.relevance, 4),
                "bid_cpm": self.bid_cpm, "expected_value": round(self.relevance * self.bid_cpm, 4),
                "signals": self.signals, "why": self.why, "rejected_drafts": self.rejected_drafts,
                "timings_ms": self.timings_ms}


class AdServer:
    """Ads for users of ``store`` from ``campaigns``; ``profiles`` (``ads.profiles.ProfileStore``)
    keeps built profiles, ``builder`` (``ProfileBuilder``) builds missing ones, ``embedder``
    embeds campaigns and contexts (the builder's, by default), ``safety`` classifies contexts."""

    def __init__(self, store: Store, campaigns: CampaignStore, profiles: ProfileStore,
                 builder: ProfileBuilder, *, writer: CopyWriter | None = None,
                 embedder: Embedder | None = None, safety: BrandSafety | None = None,
                 engine: ContextSearch | None = None, profile_ttl_s: float = 3600.0,
                 config: ServingConfig | None = None):
        self.store = store
        self.campaigns = campaigns
        self.profiles = profiles
        self.builder = builder
        self.writer = writer or CopyWriter()
        self.embedder = embedder if embedder is not None else builder.embedder
        self.safety = safety
        self.engine = engine
        self.profile_ttl_ms = int(profile_ttl_s * 1000)
        self.config = config if config is not None else ServingConfig()
        self._vec_cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    # --- inputs ------------------------------------------------------------------------------------
    def consent(self, user: str) -> str | None:
        """Why ``user`` gets only non-personalized ads, or None."""
        key = author_key(user)
        if self.store.is_opted_out(key):          # a point lookup: this runs per decision
            return "you opted out of personalized ads"
        if self.profiles.is_minor(key):
            return "ads are never personalized for minors"
        return None

    def stream_now(self, now_ms: int | None = None) -> int:
        """The present of the stream: the clock, or the newest post when the store holds an
        older stream (a replayed dataset), so interests decay relative to what is recent in
        it rather than to today."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        newest = self.store.newest_created_at()
        return min(now, newest + 1) if newest is not None else now

    def profile(self, user: str, now_ms: int | None = None) -> Profile | None:
        """The stored profile when fresh, else built now (and stored). ``now_ms``: stream
        time (default ``stream_now()``)."""
        key = author_key(user)
        now = self.stream_now() if now_ms is None else now_ms
        p = self.profiles.get(key)
        if p is None or now - p.updated_at > self.profile_ttl_ms:
            p = self.builder.build(key, now_ms=now)
            if p is not None:
                self.profiles.save(p)
        return p

    def _campaign_vec(self, c: Campaign) -> np.ndarray | None:
        if self.embedder is None:
            return None
        text = f"{c.targeting.text()} {c.brief.product}"
        k = hashlib.sha1(text.encode()).hexdigest()
        with self._lock:
            v = self._vec_cache.get(k)
        if v is None:
            v = np.asarray(self.embedder.query(text), dtype=np.float32)     # (dim,)
            with self._lock:
                self._vec_cache[k] = v
        return v

    def context_for(self, context: str | None) -> AdContext:
        """The query's vector and brand-safety flags (with its top posts)."""
        if not context:
            return AdContext(context)
        vec = None
        if self.embedder is not None:
            vec = np.asarray(self.embedder.query(context), dtype=np.float32)
        texts = [context]
        if self.engine is not None:
            try:
                texts += [h.text for h in self.engine.run(context, limit=10).results]
            except ValueError:                     # not a valid query: judge the words alone
                pass
        if self.safety is None:
            return AdContext(context, vec)
        flags: set[str] = set()
        for v in self.safety.verdicts(texts):              # one batch: ~4x faster than one by one
            flags.update(v.flags)
        return AdContext(context, vec, frozenset(flags), checked=True)

    # --- decision ----------------------------------------------------------------------------------
    def _eligible(self, c: Campaign, lang: str | None, location: str | None, ctx: AdContext,
                  now: int) -> str | None:
        """Why ``c`` cannot be shown here (None: it can)."""
        if not c.live(now):
            return "not live"
        if lang is not None and lang not in c.languages():
            return "language"
        if c.targeting.locations and location not in c.targeting.locations:
            return "location"
        text = (ctx.text or "").lower()
        if any(x.lower() in text for x in c.targeting.exclude_keywords):
            return "excluded keyword"
        bs = c.brand_safety
        wants = {"offensive": bs.avoid_offensive, "hateful": bs.avoid_hateful,
                 "crisis": bs.avoid_crisis}
        if ctx.text and any(wants.values()) and not ctx.checked:
            return "brand safety unchecked"
        if any(wants.get(f) for f in ctx.flags):
            return "brand safety"
        if self.campaigns.spent(c.id) + c.cost_per_impression > c.budget + 1e-9:
            return "budget"
        return None

    def _approved(self, c: Campaign, lang: str, anchor: np.ndarray | None) -> Copy | None:
        """Once the advertiser has approved creatives in ``lang``, one of them is served (the
        closest to the user's profile or the context), never a new per-user draft: the
        advertiser's review then governs every word. Without approved creatives, copy is written
        per user and checked automatically (``ads.creative``)."""
        ok = [k for k in self.campaigns.creatives(c.id, status="approved") if k["lang"] == lang]
        if not ok:
            return None
        if anchor is not None and self.embedder is not None and len(ok) > 1:
            vecs = np.asarray(self.embedder.passages([k["text"] for k in ok]))   # (n, dim)
            best = ok[int(np.argmax(vecs @ anchor))]
        else:
            best = ok[0]
        return Copy(best["text"], lang, f"approved creative {best['id']}")

    def _closeness(self, campaigns: list[Campaign], anchor: np.ndarray | None) -> dict[str, float]:
        """Each campaign's closeness to ``anchor`` (a profile centroid or a context vector) in
        (0, 1]: ``exp((cos - best cos) / TEMPERATURE)``, 1 for the closest. e5 cosines between
        short texts sit in a narrow band (about 0.75-0.85 here), so the raw cosine would barely
        separate campaigns and the bid alone would decide; relative to the best, a campaign
        0.02 less similar keeps 37% of the relevance."""
        if anchor is None or self.embedder is None or not campaigns:
            return {}
        cos = {c.id: float(anchor @ self._campaign_vec(c)) for c in campaigns}
        best = max(cos.values())
        return {k: float(np.exp((v - best) / TEMPERATURE)) for k, v in cos.items()}

    @staticmethod
    def _interest_match(c: Campaign, profile: Profile) -> tuple[float, int | None]:
        """The profile's weight on the campaign's best matching topic, and that topic's id. A
        tier-1 target matches through its own weight, which every tier-2 child feeds."""
        best, topic = 0.0, None
        for tid in c.targeting.interests:
            w = profile.interests.get(tid, 0.0)
            if w > best:
                best, topic = w, tid
        return best, topic

    def run(self, user: str, *, context: str | None = None, now_ms: int | None = None,
            generate: bool = True) -> Decision | None:
        """The ad for ``user`` (an author handle or id) in ``context`` (a search query; None:
        their timeline), or None when no campaign is eligible."""
        clock = Laps()
        lap, timings = clock.lap, clock.ms
        now = int(time.time() * 1000) if now_ms is None else now_ms
        key = author_key(user)
        refused = self.consent(key)
        profile = None if refused else self.profile(key, self.stream_now(now))
        personalized = profile is not None
        lap("profile")
        ctx = self.context_for(context)
        lang = None
        if profile is not None and profile.languages:
            lang = max(sorted(profile.languages), key=lambda x: profile.languages[x])
        location = profile.location if profile is not None else None
        lap("context")
        eligible = [c for c in self.campaigns.list()
                    if self._eligible(c, lang, location, ctx, now) is None]
        anchor = profile.centroid if profile is not None else ctx.vec
        close = self._closeness(eligible, anchor)
        cfg = self.config
        shares = self.campaigns.recent_shares(cfg.diversity_window) \
            if cfg.diversity_weight > 0 and len(eligible) > 1 else {}
        ranked = []
        for c in eligible:
            if personalized:
                match, topic = self._interest_match(c, profile)
                relevance = cfg.interest_share * match + \
                    (1 - cfg.interest_share) * close.get(c.id, 0.0)
            else:
                topic = None
                relevance = close.get(c.id, 0.5)
            variety = 1.0 - cfg.diversity_weight * shares.get(c.id, 0.0)
            ranked.append((-(relevance * c.bid_cpm * variety), c.id, c, relevance, topic))
        ranked.sort(key=lambda r: (r[0], r[1]))
        lap("rank")
        for _neg, _cid, c, relevance, topic in ranked:
            show_lang = lang if lang in c.languages() else c.languages()[0]
            interest = None if topic is None else \
                INTERESTS[topic].labels.get(show_lang, INTERESTS[topic].name)
            copy = self._approved(c, show_lang, anchor)
            if copy is None:
                copy = self.writer.write(c, show_lang, interest) if generate else \
                    Copy(template_copy(c, show_lang, interest), show_lang, "template")
            lap("copy")
            signals = self._signals(c, profile, interest, ctx, refused, relevance)
            why = self._why(c, profile, interest, ctx, refused)
            iid = self.campaigns.charge(c.id, key, c.cost_per_impression, now_ms=now, record={
                "personalized": personalized, "copy": copy.text, "copy_origin": copy.origin,
                "signals": signals, "why": why, "context": context})
            lap("ledger")
            if iid is None:                  # budget or cap reached meanwhile: next candidate
                continue
            return Decision(iid, c.id, c.advertiser, copy.text, copy.origin, show_lang,
                            c.brief.landing_url, personalized, relevance, c.bid_cpm, signals,
                            why, timings, copy.rejected)
        return None

    # --- explanations ------------------------------------------------------------------------------
    def _signals(self, c: Campaign, profile: Profile | None, interest: str | None,
                 ctx: AdContext, refused: str | None, relevance: float) -> list[str]:
        out = [f"campaign {c.id} by {c.advertiser}, bid {c.bid_cpm:g} per 1,000 impressions",
               f"relevance {relevance:.2f}"]
        if refused:
            out.append(f"not personalized: {refused}")
        if profile is not None:
            if interest:
                out.append(f"interest: {interest}")
            out += profile.signals[:3]
            if profile.languages:
                out.append("language: " + max(sorted(profile.languages),
                                              key=lambda x: profile.languages[x]))
        if ctx.text:
            out.append(f"search: {ctx.text}")
        return out

    def _why(self, c: Campaign, profile: Profile | None, interest: str | None, ctx: AdContext,
             refused: str | None) -> str:
        who = f"This ad is from {c.advertiser}."
        if refused:
            base = f" It is not based on your activity ({refused})"
            base += f"; it matches your search \"{ctx.text}\"." if ctx.text else \
                "; it was chosen by the advertiser's bid for this place."
            return who + base
        parts = [who]
        if interest:
            parts.append(f" The advertiser wants to reach people interested in {interest}, and "
                         f"your recent posts are often about {interest}.")
        else:
            parts.append(" Your recent posts are close to what the advertiser describes.")
        if ctx.text:
            parts.append(f" It also fits your search \"{ctx.text}\".")
        parts.append(" Ads here never use health, religion, politics, sexual orientation, "
                     "ethnicity or union membership. You can see or delete your profile at any "
                     "time (townsquare profile USER --delete).")
        return "".join(parts)

    def why(self, impression_id: int) -> str | None:
        imp = self.campaigns.impression(impression_id)
        return imp["why"] if imp else None


ADS_DB = "ads.db"
SAFETY_MODEL = "models/brand_safety.joblib"


def build_ad_server(store: Store, home: str | Path, *, backend: Backend | None = None,
                    engine: ContextSearch | None = None,
                    embedder: Embedder | None = None) -> AdServer:
    """An ``AdServer`` over a home folder: campaigns and profiles in ``ads.db``, the brand-safety
    model from ``models/brand_safety.joblib`` when trained (``townsquare ads safety train``),
    embeddings from the store's model (else multilingual e5-small-int8)."""
    home = Path(home)
    if embedder is None:
        embedder = get_embedder(store.embed_model() or "e5-small-int8")
    safety = None
    if (home / SAFETY_MODEL).exists():
        safety = BrandSafety.load(home / SAFETY_MODEL)
        if embedder.name == safety.embedder_name:
            safety = BrandSafety.load(home / SAFETY_MODEL, embedder_instance=embedder)  # shared
    detector = SensitiveDetector(embedder=embedder)
    writer = CopyWriter(backend, detector=detector, safety=safety)
    profiles = ProfileStore(home / ADS_DB)
    return AdServer(store, CampaignStore(home / ADS_DB), profiles,
                    ProfileBuilder(store, embedder=embedder, detector=detector, profiles=profiles),
                    writer=writer, embedder=embedder, safety=safety, engine=engine)

"""Campaigns: what an advertiser asks for, validated before it is stored, and the ledger that
keeps budgets and frequency caps under concurrent serving.

    >>> import tempfile, pathlib
    >>> store = CampaignStore(pathlib.Path(tempfile.mkdtemp()) / "ads.db")
    >>> c = parse_campaign({"id": "trail-shoes", "advertiser": "acme", "name": "Trail shoes",
    ...     "brief": {"product": "Acme trail running shoes", "claims": ["waterproof", "30-day returns"],
    ...               "landing_url": "https://acme.example/trail", "languages": ["en"]},
    ...     "targeting": {"interests": [201, 97]},          # /Hobbies & Leisure/Outdoors, Fitness
    ...     "budget": 100.0, "bid_cpm": 4.0, "frequency_cap": 2})
    >>> store.put(c); [x.id for x in store.list(advertiser="acme")]
    ['trail-shoes']
    >>> store.charge("trail-shoes", "ann", 0.004, now_ms=0) is not None
    True

Targeted interests are topic ids of the ads taxonomy (``townsquare.ads.taxonomy``: Google Topics
v2, tiers 1-2, e.g. 243 /News, 332 /Travel & Transportation): an unknown id, a sensitive topic
(247 /News/Politics) or one of the slugs used before the Topics taxonomy ("travel") is refused
with the field, the value and the topic to use. A campaign targeting a tier-1 topic reaches the
users of its tier-2 topics too (a profile's child topic also scores its parent).

A campaign is rejected, with the field that is wrong, when its targeting names a special
category of personal data (health, religion, political opinion, sexual orientation, ethnicity,
trade-union membership): GDPR Art. 9 data that the EU DSA Art. 26(3) forbids using to target
ads. The check runs on everything that targets (interests, keywords, locations, exclusions are
free to name anything) and on the product itself.

The ledger (``charge``): one SQLite transaction (``BEGIN IMMEDIATE``, the database's write lock)
reads the campaign's spend and the user's impressions of the last day, and records the
impression only when the budget and the frequency cap allow it. Two servers (threads or
processes) charging at once are serialized by that lock, so neither limit can be overrun.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from townsquare.store.sidecar import connect

if TYPE_CHECKING:                      # types only: sensitive.py loads keyword tables on import
    from townsquare.ads.sensitive import SensitiveDetector

DAY_MS = 86_400_000
STATUSES = ("active", "paused")
CREATIVE_STATUSES = ("pending", "approved", "rejected")


class CampaignError(ValueError):
    """A campaign that cannot be stored: ``field`` names what to fix."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


@dataclass(slots=True)
class Brief:
    product: str
    claims: list[str]                   # the only claims copy may make (numbers, prices, ...)
    landing_url: str
    tone: str = "friendly"
    languages: list[str] = field(default_factory=lambda: ["en"])
    call_to_action: str = "Learn more"


@dataclass(slots=True)
class Targeting:
    interests: list[int] = field(default_factory=list)    # topic ids (ads.taxonomy.INTERESTS)
    keywords: list[str] = field(default_factory=list)     # matched in posts and search context
    languages: list[str] = field(default_factory=list)    # empty: the brief's languages
    locations: list[str] = field(default_factory=list)    # country codes; empty: anywhere
    exclude_keywords: list[str] = field(default_factory=list)

    def text(self) -> str:
        """What the campaign is about, as text to embed and match: its topics' English labels
        and its keywords."""
        from townsquare.ads.taxonomy import INTERESTS
        return " ".join([INTERESTS[i].name for i in self.interests if i in INTERESTS]
                        + self.keywords)


@dataclass(slots=True)
class BrandSafety:
    avoid_offensive: bool = True
    avoid_hateful: bool = True
    avoid_crisis: bool = True           # no ad next to a disaster, an attack...


@dataclass(slots=True)
class Campaign:
    id: str
    advertiser: str
    name: str
    brief: Brief
    targeting: Targeting
    budget: float                       # currency units, total
    bid_cpm: float                      # price per 1,000 impressions
    frequency_cap: int = 3              # impressions per user per day
    start_ms: int | None = None
    end_ms: int | None = None
    brand_safety: BrandSafety = field(default_factory=BrandSafety)
    status: str = "active"
    description: str = ""

    @property
    def cost_per_impression(self) -> float:
        return self.bid_cpm / 1000.0

    def live(self, now_ms: int) -> bool:
        return self.status == "active" and (self.start_ms is None or now_ms >= self.start_ms) \
            and (self.end_ms is None or now_ms < self.end_ms)

    def languages(self) -> list[str]:
        return self.targeting.languages or self.brief.languages

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- validation --------------------------------------------------------------------------------
def _str(d: dict, key: str, where: str, *, required: bool = True, max_len: int = 500) -> str:
    v = d.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str) or not v.strip():
        raise CampaignError("required text" if v is None else f"expected text, got {v!r}",
                            f"{where}{key}")
    if len(v) > max_len:
        raise CampaignError(f"at most {max_len} characters", f"{where}{key}")
    return v.strip()


def _strs(d: dict, key: str, where: str, *, max_items: int = 50) -> list[str]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise CampaignError("expected a list of non-empty texts", f"{where}{key}")
    if len(v) > max_items:
        raise CampaignError(f"at most {max_items} items", f"{where}{key}")
    return [x.strip() for x in v]


def _num(d: dict, key: str, lo: float, hi: float, default: Any = None) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise CampaignError(f"expected a number in [{lo:g}, {hi:g}], got {v!r}", key)
    return float(v)


def _topics(v: Any) -> list[int]:
    """Targeted topic ids, each checked: a known, non-sensitive topic of ``ads.taxonomy``."""
    from townsquare.ads.taxonomy import INTERESTS, LEGACY_SLUGS
    if not isinstance(v, list):
        raise CampaignError("expected a list of topic ids (ads taxonomy, e.g. 243 for /News)",
                            "targeting.interests")
    if len(v) > 50:
        raise CampaignError("at most 50 items", "targeting.interests")
    out: list[int] = []
    for k, x in enumerate(v):
        where = f"targeting.interests[{k}]"
        if isinstance(x, str) and x.strip().lower().replace(" ", "_") in LEGACY_SLUGS:
            new = LEGACY_SLUGS[x.strip().lower().replace(" ", "_")]
            raise CampaignError(f"{x!r} is a category of the old taxonomy; target topic {new} "
                                f"({INTERESTS[new].path}) of the Topics taxonomy instead", where)
        if isinstance(x, str) and x.strip().isdigit():
            x = int(x.strip())
        if isinstance(x, bool) or not isinstance(x, int):
            raise CampaignError(f"expected a topic id (an integer, e.g. 243 for /News), got "
                                f"{x!r}; put phrases in targeting.keywords", where)
        topic = INTERESTS.get(x)
        if topic is None:
            raise CampaignError(f"unknown topic id {x} (the ids of ads/topics_v2.tsv, Google "
                                f"Topics v2 tiers 1-2)", where)
        if topic.sensitive:
            raise CampaignError(f"topic {x} ({topic.path}) is a special category of personal "
                                f"data ({topic.sensitive}): ads may not target it (GDPR Art. 9, "
                                f"DSA Art. 26)", where)
        if x not in out:
            out.append(x)
    return out


def parse_campaign(d: Any, *, detector: SensitiveDetector | None = None) -> Campaign:
    """A validated ``Campaign`` from a JSON object; ``detector`` (``ads.sensitive``; built when
    None) refuses special-category targeting. Raises ``CampaignError`` naming the field."""
    if not isinstance(d, dict):
        raise CampaignError(f"expected a JSON object, got {type(d).__name__}")
    known = {"id", "advertiser", "name", "brief", "targeting", "budget", "bid_cpm",
             "frequency_cap", "start", "end", "brand_safety", "status", "description"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise CampaignError(f"unknown field (known: {', '.join(sorted(known))})", unknown[0])
    cid = _str(d, "id", "", max_len=64)
    if not all(ch.isalnum() or ch in "-_." for ch in cid):
        raise CampaignError("letters, digits, '-', '_' and '.' only", "id")
    b = d.get("brief")
    if not isinstance(b, dict):
        raise CampaignError("required object", "brief")
    url = _str(b, "landing_url", "brief.")
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise CampaignError(f"expected an http(s) URL, got {url!r}", "brief.landing_url")
    langs = _strs(b, "languages", "brief.") or ["en"]
    brief = Brief(product=_str(b, "product", "brief."), claims=_strs(b, "claims", "brief."),
                  landing_url=url, tone=_str(b, "tone", "brief.", required=False) or "friendly",
                  languages=langs,
                  call_to_action=_str(b, "call_to_action", "brief.", required=False,
                                      max_len=40) or "Learn more")
    t = d.get("targeting", {})
    if not isinstance(t, dict):
        raise CampaignError("expected an object", "targeting")
    targeting = Targeting(interests=_topics(t.get("interests", [])),
                          keywords=_strs(t, "keywords", "targeting."),
                          languages=_strs(t, "languages", "targeting."),
                          locations=[x.upper() for x in _strs(t, "locations", "targeting.")],
                          exclude_keywords=_strs(t, "exclude_keywords", "targeting."))
    if not targeting.interests and not targeting.keywords:
        raise CampaignError("give interests or keywords to target", "targeting")
    bs = d.get("brand_safety", {})
    if not isinstance(bs, dict) or not all(isinstance(v, bool) for v in bs.values()):
        raise CampaignError("expected an object of true/false settings", "brand_safety")
    try:
        safety = BrandSafety(**bs)
    except TypeError:
        raise CampaignError("known settings: avoid_offensive, avoid_hateful, avoid_crisis",
                            "brand_safety") from None
    status = d.get("status", "active")
    if status not in STATUSES:
        raise CampaignError(f"one of {', '.join(STATUSES)}", "status")
    from townsquare.posts import PostError, parse_time_ms
    times = {}
    for k in ("start", "end"):
        try:
            times[k] = parse_time_ms(d[k], k) if d.get(k) is not None else None
        except PostError as e:
            raise CampaignError(str(e), k) from None
    if times["start"] is not None and times["end"] is not None and times["end"] <= times["start"]:
        raise CampaignError("must be after start", "end")
    c = Campaign(id=cid, advertiser=_str(d, "advertiser", "", max_len=64),
                 name=_str(d, "name", "", max_len=120), brief=brief, targeting=targeting,
                 budget=_num(d, "budget", 0.01, 1e9), bid_cpm=_num(d, "bid_cpm", 0.01, 1e4),
                 frequency_cap=int(_num(d, "frequency_cap", 1, 1000, default=3)),
                 start_ms=times["start"], end_ms=times["end"], brand_safety=safety,
                 status=status, description=_str(d, "description", "", required=False,
                                                 max_len=1000))
    check_targeting(c, detector)
    return c


def check_targeting(c: Campaign, detector: SensitiveDetector | None = None) -> None:
    """Refuse targeting (and a product) phrased on a special category of personal data.

    The default detector uses the keyword lists only: precise and predictable for advertisers
    (a refusal names the phrase and its category). The embedding check is recall-first and
    flags words like "budget" (politics) or "langue" (ethnicity) in targeting, which would
    refuse honest campaigns. Nothing is lost by that choice: profiles are built with keywords
    and embeddings (``ads.profiles``), so a phrase the lists miss still finds no special
    category in any profile to match."""
    if detector is None:
        from townsquare.ads.sensitive import SensitiveDetector
        detector = SensitiveDetector()
    fields = [("targeting.keywords", x) for x in c.targeting.keywords] + \
        [("brief.product", c.brief.product), ("name", c.name)]
    for where, text in fields:
        cats = detector.is_sensitive_target(text)
        if cats:
            raise CampaignError(
                f"{text!r} targets a special category of personal data ({', '.join(sorted(cats))}"
                f"): ads may not be targeted on health, religion, political opinion, sexual "
                f"orientation, ethnicity or trade-union membership (GDPR Art. 9, DSA Art. 26)",
                where)


def campaign_from_dict(d: dict) -> Campaign:
    """Rebuild a stored campaign (already validated when it was stored). One stored before the
    Topics taxonomy targets its old slugs' topics (``LEGACY_SLUGS``) from then on."""
    from townsquare.ads.taxonomy import LEGACY_SLUGS
    t = dict(d["targeting"])
    t["interests"] = list(dict.fromkeys(
        LEGACY_SLUGS[x] if isinstance(x, str) and x in LEGACY_SLUGS else int(x)
        for x in t.get("interests", []) if not isinstance(x, str) or x in LEGACY_SLUGS
        or x.isdigit()))
    return Campaign(**{**d, "brief": Brief(**d["brief"]), "targeting": Targeting(**t),
                       "brand_safety": BrandSafety(**d["brand_safety"])})


# --- storage and the ledger ---------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign_campaigns (
    id TEXT PRIMARY KEY, advertiser TEXT NOT NULL, body TEXT NOT NULL,
    spent REAL NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS campaign_by_advertiser ON campaign_campaigns(advertiser);
CREATE TABLE IF NOT EXISTS campaign_creatives (
    id INTEGER PRIMARY KEY, campaign TEXT NOT NULL, lang TEXT NOT NULL, text TEXT NOT NULL,
    origin TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS campaign_impressions (
    id INTEGER PRIMARY KEY, campaign TEXT NOT NULL, user TEXT NOT NULL, at INTEGER NOT NULL,
    cost REAL NOT NULL, personalized INTEGER NOT NULL, copy TEXT, copy_origin TEXT,
    signals TEXT, why TEXT, context TEXT);
CREATE INDEX IF NOT EXISTS campaign_impr_cap ON campaign_impressions(campaign, user, at);
CREATE INDEX IF NOT EXISTS campaign_impr_user ON campaign_impressions(user, id);
"""


class CampaignStore:
    """Campaigns, creatives and impressions in ``<home>/ads.db`` (beside the profiles)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db = connect(self.path)          # WAL, shared by threads, busy timeout
        self._lock = threading.Lock()
        with self._lock:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    self._db.execute(stmt)

    def close(self) -> None:
        self._db.close()

    def _q(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- campaigns --------------------------------------------------------------------------------
    def put(self, c: Campaign) -> None:
        """Insert or replace (spend is kept across edits)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO campaign_campaigns(id, advertiser, body, created_at) VALUES (?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET body = excluded.body "
                "WHERE campaign_campaigns.advertiser = excluded.advertiser",
                (c.id, c.advertiser, json.dumps(c.to_dict()), int(time.time() * 1000)))
            owner = self._db.execute("SELECT advertiser FROM campaign_campaigns WHERE id = ?",
                                     (c.id,)).fetchone()[0]
        if owner != c.advertiser:
            raise CampaignError(f"campaign id {c.id!r} belongs to another advertiser", "id")

    def get(self, cid: str, *, advertiser: str | None = None) -> Campaign | None:
        """A campaign; with ``advertiser``, only that advertiser's (others look absent)."""
        rows = self._q("SELECT body, advertiser FROM campaign_campaigns WHERE id = ?", (cid,))
        if not rows or (advertiser is not None and rows[0][1] != advertiser):
            return None
        return campaign_from_dict(json.loads(rows[0][0]))

    def list(self, *, advertiser: str | None = None) -> list[Campaign]:
        rows = self._q("SELECT body FROM campaign_campaigns" +
                       (" WHERE advertiser = ?" if advertiser else "") + " ORDER BY id",
                       (advertiser,) if advertiser else ())
        return [campaign_from_dict(json.loads(r[0])) for r in rows]

    def delete(self, cid: str, *, advertiser: str | None = None) -> bool:
        if self.get(cid, advertiser=advertiser) is None:
            return False
        with self._lock:
            self._db.execute("DELETE FROM campaign_campaigns WHERE id = ?", (cid,))
        return True

    def spent(self, cid: str) -> float:
        rows = self._q("SELECT spent FROM campaign_campaigns WHERE id = ?", (cid,))
        return rows[0][0] if rows else 0.0

    # --- creatives ------------------------------------------------------------------------------
    def add_creative(self, cid: str, lang: str, text: str, origin: str) -> int:
        with self._lock:
            return self._db.execute(
                "INSERT INTO campaign_creatives(campaign, lang, text, origin, created_at) "
                "VALUES (?,?,?,?,?)", (cid, lang, text, origin, int(time.time() * 1000))).lastrowid

    def creatives(self, cid: str, *, status: str | None = None) -> list[dict]:
        rows = self._q("SELECT id, lang, text, origin, status FROM campaign_creatives WHERE "
                       "campaign = ?" + (" AND status = ?" if status else "") + " ORDER BY id",
                       (cid, status) if status else (cid,))
        return [{"id": r[0], "lang": r[1], "text": r[2], "origin": r[3], "status": r[4]}
                for r in rows]

    def review(self, creative_id: int, status: str, *, advertiser: str | None = None) -> bool:
        """Approve or reject a creative (an advertiser reviews only its own)."""
        if status not in ("approved", "rejected"):
            raise CampaignError("approved or rejected", "status")
        rows = self._q("SELECT c.advertiser FROM campaign_creatives k JOIN campaign_campaigns c "
                       "ON c.id = k.campaign WHERE k.id = ?", (creative_id,))
        if not rows or (advertiser is not None and rows[0][0] != advertiser):
            return False
        with self._lock:
            self._db.execute("UPDATE campaign_creatives SET status = ? WHERE id = ?",
                             (status, creative_id))
        return True

    # --- the ledger -------------------------------------------------------------------------------
    def charge(self, cid: str, user: str, cost: float, *, now_ms: int | None = None,
               cap: int | None = None, budget: float | None = None,
               record: dict | None = None) -> int | None:
        """Record an impression if the budget and the user's daily cap allow; returns its id,
        or None when either is exhausted. Atomic across threads and processes."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        c = self.get(cid)
        if c is None:
            return None
        cap = c.frequency_cap if cap is None else cap
        budget = c.budget if budget is None else budget
        r = record or {}
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                spent = db.execute("SELECT spent FROM campaign_campaigns WHERE id = ?",
                                   (cid,)).fetchone()[0]
                seen = db.execute("SELECT count(*) FROM campaign_impressions WHERE campaign = ? "
                                  "AND user = ? AND at > ?", (cid, user, now - DAY_MS)).fetchone()[0]
                if spent + cost > budget + 1e-9 or seen >= cap:
                    db.execute("ROLLBACK")
                    return None
                db.execute("UPDATE campaign_campaigns SET spent = spent + ? WHERE id = ?",
                           (cost, cid))
                iid = db.execute(
                    "INSERT INTO campaign_impressions(campaign, user, at, cost, personalized, copy, "
                    "copy_origin, signals, why, context) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (cid, user, now, cost, int(bool(r.get("personalized"))), r.get("copy"),
                     r.get("copy_origin"), json.dumps(r.get("signals", [])), r.get("why"),
                     r.get("context"))).lastrowid
                db.execute("COMMIT")
                return iid
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def recent_shares(self, last: int) -> dict[str, float]:
        """Each campaign's share of the ``last`` impressions recorded (all users): what the
        server's diversity term reads (``ads.serving.ServingConfig``).

            >>> CampaignStore(":memory:").recent_shares(100)
            {}
        """
        rows = self._q("SELECT campaign, count(*) FROM (SELECT campaign FROM campaign_impressions "
                       "ORDER BY id DESC LIMIT ?) GROUP BY campaign", (int(last),))
        total = sum(n for _, n in rows)
        return {c: n / total for c, n in rows} if total else {}

    def impression_ids(self, user: str, *, after: int = 0, limit: int = 500) -> list[int]:
        """The ids of the impressions shown to ``user`` (as recorded), after ``after``, oldest
        first: a user's export pages through them."""
        return [r[0] for r in self._q(
            "SELECT id FROM campaign_impressions WHERE user = ? AND id > ? ORDER BY id LIMIT ?",
            (user, after, limit))]

    def impression(self, iid: int) -> dict | None:
        rows = self._q("SELECT id, campaign, user, at, cost, personalized, copy, copy_origin, "
                       "signals, why, context FROM campaign_impressions WHERE id = ?", (iid,))
        if not rows:
            return None
        r = rows[0]
        return {"id": r[0], "campaign": r[1], "user": r[2], "at": r[3], "cost": r[4],
                "personalized": bool(r[5]), "copy": r[6], "copy_origin": r[7],
                "signals": json.loads(r[8] or "[]"), "why": r[9], "context": r[10]}

    def impressions_of(self, cid: str, user: str | None = None) -> int:
        if user is None:
            return self._q("SELECT count(*) FROM campaign_impressions WHERE campaign = ?",
                           (cid,))[0][0]
        return self._q("SELECT count(*) FROM campaign_impressions WHERE campaign = ? AND user = ?",
                       (cid, user))[0][0]

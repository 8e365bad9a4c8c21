"""A user's rights over what townsquare holds about them: to object to profiling (an opt-out,
GDPR Art. 21 and DSA Art. 38) and to see everything held (an export, GDPR Art. 15). The CLI
(``townsquare optout``, ``townsquare export --user``, ``townsquare profile``) and the API
(``api.privacy``, the profile routes) call these functions, so both answer alike.

    >>> from townsquare.ads.profiles import Profile, ProfileStore
    >>> from townsquare.store import open_store
    >>> store, profiles = open_store(":memory:"), ProfileStore(":memory:")
    >>> _ = profiles.save(Profile("ann", updated_at=1))
    >>> r = opt_out(store, profiles, "@Ann")
    >>> (r["user"], r["opted_out"], r["changed"], r["profiles_deleted"], profiles.get("ann"))
    ('ann', True, True, 1, None)
    >>> r["opted_out_at"] == store.opted_out_at("ann")
    True
    >>> consent(store, profiles, "ann")["reason"]
    'opted_out'
    >>> opt_out(store, profiles, "ann", undo=True)["opted_out"]
    False

**An opt-out** is recorded in the store (``Store.opt_out``, with the time of the first request)
and, from then on:

- the user's stored ad profile is deleted at once, under every name it may be kept by (the name
  given, and the handle and numeric id on their posts: a profile is stored under the name an ad
  was asked for);
- ads are chosen without a profile (``ads.serving`` checks consent at every decision) and no
  profile is built again (``ads.profiles``);
- the next training corpus leaves their posts out (``train.corpus``); its manifest counts them
  and lists the user by ``author_digest``, which ``export`` checks;
- ``profile`` says why there is no profile: ``{"profile": null, "reason": "opted_out",
  "opted_out_at": ...}``.

Lifting it (``undo``) removes the opt-out recorded under the name given (never one recorded under
another name of theirs: names can be ambiguous, and lifting someone else's consent is the unsafe
side). Profiling then resumes when an ad is next chosen for them (a profile is built on demand),
and the next corpus build includes their posts again; a model already trained stays as it was.

**An export** is one JSON document: the user's posts (matched by handle or numeric id as
profiles match users: ``Store.posts_by_author``) with where each was read, their stored profile
or why there is none, opt-out and minor status, the ads shown to them with the ``why`` of each,
whether the last training corpus holds their posts, and the categories of data kept. It holds
nothing of another user: only the posts authored under that name and the impressions recorded
for it. ``write_export`` streams it page by page (memory stays bounded however many posts), the
API pages it (``export_posts``, ``export_impressions`` with cursors).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from townsquare.ads.campaigns import CampaignStore
from townsquare.ads.profiles import ProfileStore
from townsquare.ads.serving import ADS_DB, AdServer
from townsquare.posts import Post
from townsquare.services.errors import InputError
from townsquare.store.base import Store, author_key
from townsquare.train.corpus import MANIFEST_FILE, CorpusManifest, author_digest

__all__ = ["ad_stores", "consent", "export_impressions", "export_posts", "export_summary",
           "identities", "opt_out", "profile_view", "write_export"]

PAGE = 500                   # posts or impressions per page, the API's default
MAX_PAGE = 5000
IDENTITY_POSTS = 200         # the newest posts whose handle and id name the same user


def _key(user: str | int) -> str:
    try:
        return author_key(user)
    except ValueError as e:
        raise InputError(str(e), "user") from None


def ad_stores(home: str | Path) -> tuple[ProfileStore, CampaignStore]:
    """The profile and campaign stores of a home folder (``ads.db``)."""
    return ProfileStore(Path(home) / ADS_DB), CampaignStore(Path(home) / ADS_DB)


def identities(store: Store, user: str | int) -> list[str]:
    """The names ``user`` goes by (``author_key`` form): the one given, then the handles and
    numeric ids on their newest posts. Used to find every opt-out and profile of theirs."""
    key = _key(user)
    names = [key]
    for p in store.posts_by_author(key, limit=IDENTITY_POSTS):
        for n in ((p.author_handle or "").lstrip("@").lower(),
                  "" if p.author_id is None else str(p.author_id)):
            if n and n not in names:
                names.append(n)
    return names


def _iso(ms: int | None) -> str | None:
    return None if ms is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def consent(store: Store, profiles: ProfileStore, user: str | int,
            names: list[str] | None = None) -> dict[str, Any]:
    """Whether ``user`` may be profiled: ``reason`` is ``"opted_out"``, ``"minor"`` or None;
    ``opted_out_at`` the earliest opt-out under any of their ``names`` (``identities``)."""
    names = names or identities(store, user)
    when = {n: t for n in names if (t := store.opted_out_at(n)) is not None}
    minor = any(profiles.is_minor(n) for n in names)
    at = min(when.values()) if when else None
    reason = "opted_out" if when else "minor" if minor else None
    message = {"opted_out": f"you opted out of personalized ads on {_iso(at)}: no profile is "
                            "kept or built, ads are not personalized, and your posts are left "
                            "out of the next training corpus",
               "minor": "ads are never personalized for minors", None: None}[reason]
    return {"user": _key(user), "opted_out": bool(when), "opted_out_at": at,
            "opted_out_as": sorted(when),
            "minor": minor, "reason": reason, "message": message}


def opt_out(store: Store, profiles: ProfileStore, user: str | int, *,
            undo: bool = False) -> dict[str, Any]:
    """Record that ``user`` objects to profiling (or, ``undo``, lift it) and delete their
    profiles at once. Runs where the store may be written (the API's writer thread). Returns
    the consent after it, ``changed`` (whether anything was recorded or lifted),
    ``profiles_deleted`` and ``effects`` in plain words."""
    key = _key(user)
    names = identities(store, key)
    if undo:
        changed = store.opt_in([key]) > 0
        deleted = 0
    else:
        changed = store.opt_out([key]) > 0
        deleted = profiles.forget(names)     # every name a profile may be kept under
    c = consent(store, profiles, key, names)
    if c["opted_out"]:
        effects = [f"profile deleted ({deleted})" if deleted else "no profile was kept",
                   "ads: not personalized from the next decision on",
                   "training: left out of the next corpus build (its manifest lists you)"]
        if undo:
            effects.insert(0, "still opted out as " + ", ".join(c["opted_out_as"]))
    else:
        effects = ["profiling resumes: a profile is built from your public posts when an ad is "
                   "next chosen for you", "training: your posts are in the next corpus build"]
    return {"user": key, **{k: c[k] for k in ("opted_out", "opted_out_at", "opted_out_as",
                                              "minor")},
            "changed": changed, "profiles_deleted": deleted, "effects": effects}


def profile_view(server: AdServer, user: str | int) -> dict[str, Any]:
    """What ``townsquare profile`` and the profile routes answer: the profile (built now when
    missing or stale) or why there is none (``reason``: ``opted_out``, ``minor``,
    ``no_profile``), with ``opted_out_at``."""
    key = _key(user)
    c = consent(server.store, server.profiles, key)
    p = None if c["reason"] else server.profile(key)
    reason = c["reason"] or (None if p is not None else "no_profile")
    # Topics with ids, paths and labels in the user's main language (JSON object keys are text,
    # so ``profile.interests`` has the ids as strings; ``topics`` has them as numbers).
    lang = max(sorted(p.languages), key=lambda x: p.languages[x]) if p and p.languages else "en"
    return {"user": key, "personalized": p is not None, "reason": reason,
            "message": c["message"] or (None if p is not None else
                                        "no posts of theirs to build a profile from"),
            "opted_out_at": c["opted_out_at"], "profile": p.to_dict() if p is not None else None,
            "topics": p.topics(lang) if p is not None else []}


# --- the export ---------------------------------------------------------------------------------
def _cursor(cursor: str | None) -> tuple[int, int] | None:
    if cursor is None:
        return None
    try:
        ms, pid = cursor.split(":")
        return int(ms), int(pid)
    except ValueError:
        raise InputError(f"expected a cursor from a previous page (MS:ID), got {cursor[:40]!r}",
                         "cursor") from None


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"must be in [1, {MAX_PAGE}], got {limit}", "limit")
    return limit


def _posts_page(store: Store, key: str, after: tuple[int, int] | None,
                limit: int) -> tuple[list[Post], str | None]:
    """One page of the posts authored as ``key``, newest first, after the cursor ``after``
    (``(created_at, id)``), and the next page's cursor."""
    fetch = limit + 1
    while True:
        got = store.posts_by_author(key, limit=fetch,
                                    before_ms=None if after is None else after[0] + 1)
        page = [p for p in got if after is None or ((p.created_at or 0), p.id) < after]
        if len(page) > limit or len(got) < fetch:
            break
        fetch *= 2              # more posts than a page share the cursor's millisecond
    nxt = f"{page[limit - 1].created_at or 0}:{page[limit - 1].id}" if len(page) > limit else None
    return page[:limit], nxt


def export_posts(store: Store, user: str | int, *, cursor: str | None = None,
                 limit: int = PAGE) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the user's posts, newest first, each as ``Post.to_dict`` with ``sources``
    (the dataset, file, line and labels of every source that holds it); and the cursor of the
    next page (None after the last)."""
    page, nxt = _posts_page(store, _key(user), _cursor(cursor), _limit(limit))
    return [{**p.to_dict(), "sources": store.sources_of(p.id)} for p in page], nxt


def export_impressions(campaigns: CampaignStore, user: str | int, *, cursor: str | None = None,
                       limit: int = PAGE) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the ads shown to the user, oldest first: campaign, advertiser, the copy, why
    it was shown and the signals that chose it; and the next page's cursor (None after the
    last). The price paid is the advertiser's, not the user's, and stays out."""
    key, limit = _key(user), _limit(limit)
    try:
        after = int(cursor) if cursor is not None else 0
    except ValueError:
        raise InputError(f"expected a cursor from a previous page, got {cursor[:40]!r}",
                         "cursor") from None
    ids = campaigns.impression_ids(key, after=after, limit=limit + 1)
    advertisers: dict[str, str | None] = {}
    rows = []
    for iid in ids[:limit]:
        imp = campaigns.impression(iid)
        if imp is None or imp["user"] != key:
            continue
        cid = imp["campaign"]
        if cid not in advertisers:
            c = campaigns.get(cid)
            advertisers[cid] = c.advertiser if c is not None else None
        rows.append({"id": iid, "at": imp["at"], "campaign": cid, "advertiser": advertisers[cid],
                     "personalized": imp["personalized"], "copy": imp["copy"],
                     "copy_origin": imp["copy_origin"], "context": imp["context"],
                     "why": imp["why"], "signals": imp["signals"]})
    return rows, (str(ids[limit - 1]) if len(ids) > limit else None)


def _all_posts(store: Store, key: str) -> Iterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        page, cursor = export_posts(store, key, cursor=cursor, limit=MAX_PAGE)
        yield from page
        if cursor is None:
            return


def _training(store: Store, key: str, names: list[str], corpus_dir: Path | None) -> dict | None:
    """Whether the last corpus built in ``corpus_dir`` holds the user's posts."""
    if corpus_dir is None or not (Path(corpus_dir) / MANIFEST_FILE).exists():
        return None
    m = CorpusManifest.load(corpus_dir)
    in_corpus = set(m.ids())
    held, after = 0, None
    while True:                      # ids only: the posts' sources are the export's to read
        page, nxt = _posts_page(store, key, after, MAX_PAGE)
        held += sum(1 for p in page if p.id in in_corpus)
        if nxt is None:
            break
        after = _cursor(nxt)
    listed = {author_digest(n) for n in names} & set(m.opted_out_authors)
    return {"corpus_built_at": m.created_at, "posts_in_corpus": held,
            "left_out_as_opted_out": bool(listed)}


def export_summary(store: Store, profiles: ProfileStore, user: str | int, *,
                   corpus_dir: Path | None = None) -> dict[str, Any]:
    """Everything but the posts and impressions: who, consent, profile or why none, training,
    and the categories of data held (``write_export`` adds the rest)."""
    key = _key(user)
    names = identities(store, key)
    c = consent(store, profiles, key, names)
    p = profiles.get(key)
    reason = c["reason"] or (None if p is not None else "not_built")
    return {
        "user": key, "generated_at": int(time.time() * 1000), "names": names,
        "consent": {k: c[k] for k in ("opted_out", "opted_out_at", "opted_out_as", "minor")},
        "profile": p.to_dict() if p is not None else None,
        "profile_reason": reason,
        "training": _training(store, key, names, corpus_dir),
        "categories": CATEGORIES,
    }


# What the system keeps about a user, and why (the export's ``categories``).
CATEGORIES = [
    {"category": "posts", "what": "public posts under your handle or id, as collected from the "
     "sources named, with the dataset, file, line and labels of each", "why": "search, trends, "
     "stories and summaries of what is happening"},
    {"category": "derived from posts", "what": "detected language, near-duplicate links, search "
     "index entries, embedding vectors, story membership", "why": "the same, computed from the "
     "posts and deleted with them"},
    {"category": "ad profile", "what": "interests (never a special category), languages, a "
     "country from public post locations, a vector of your posts' topics, counts",
     "why": "choosing ads; deleted at once when you opt out"},
    {"category": "ad impressions", "what": "the ads shown to you: campaign, copy, the search "
     "it was shown beside, why and the signals that chose it", "why": "budgets, frequency "
     "caps, and telling you why"},
    {"category": "consent", "what": "your opt-out and its time; whether you are known to be a "
     "minor", "why": "honouring them in ads and training"},
    {"category": "training corpus", "what": "the text of kept posts with handles, links, "
     "emails and phone numbers removed; the manifest lists post ids and hashes",
     "why": "training townsquare's language model; left out after an opt-out"},
]


def write_export(out: BinaryIO, store: Store, profiles: ProfileStore, campaigns: CampaignStore,
                 user: str | int, *, corpus_dir: Path | None = None) -> dict[str, int]:
    """The whole export of ``user`` as one JSON document on ``out``, posts and impressions
    written a page at a time; returns their counts."""
    summary = export_summary(store, profiles, user, corpus_dir=corpus_dir)
    key = summary["user"]
    head = orjson.dumps(summary, option=orjson.OPT_INDENT_2)
    out.write(head[:-2] + b',\n  "posts": [')           # the summary object, left open
    counts = {"posts": 0, "impressions": 0}
    for p in _all_posts(store, key):
        out.write((b"\n    " if not counts["posts"] else b",\n    ") + orjson.dumps(p))
        counts["posts"] += 1
    out.write(b'\n  ],\n  "impressions": [')
    cursor: str | None = None
    while True:
        page, cursor = export_impressions(campaigns, key, cursor=cursor, limit=MAX_PAGE)
        for imp in page:
            out.write((b"\n    " if not counts["impressions"] else b",\n    ") + orjson.dumps(imp))
            counts["impressions"] += 1
        if cursor is None:
            break
    out.write(b'\n  ],\n  "counts": ' + orjson.dumps(counts) + b"\n}\n")
    return counts

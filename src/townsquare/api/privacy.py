"""A user's rights over their data, over HTTP (``services.privacy``): object to profiling, and
see everything held about them.

    POST   /v1/optout                 user: opt one's own self out (profile deleted at once)
    DELETE /v1/optout                 user: lift it
    GET    /v1/optout                 user: whether one is opted out, since when
    POST | DELETE | GET /v1/optouts/{user}     admin, acting for a user
    GET    /v1/export                 user: everything held about one's self (GDPR Art. 15)
    GET    /v1/users/{user}/export    admin

The caller is decided as for ``/v1/profile``: a user key (``townsquare keys create --scope user
--subject HANDLE``) acts for its subject only, and only an admin key names someone else (a user
key gets 403 there). An export answers the summary with the first page of posts and of ad
impressions, and ``next`` cursors; ``?section=posts&cursor=...`` (or ``impressions``) pages on.
"""
from __future__ import annotations

import asyncio
from functools import partial
from typing import Literal

from fastapi import APIRouter, Query

from townsquare.api.auth import ApiKey
from townsquare.api.deps import RuntimeDep, require
from townsquare.api.errors import ERRORS, ApiError, from_input
from townsquare.api.limits import BoundedRoute
from townsquare.api.runtime import Runtime
from townsquare.services import InputError, privacy
from townsquare.timing import Laps

router = APIRouter(tags=["privacy"], route_class=BoundedRoute)

Section = Literal["all", "posts", "impressions"]


def _me(key: ApiKey | None, admin_route: str) -> str:
    """The user a user key belongs to; 400 for a key that belongs to no one."""
    if key is None or key.subject is None:
        raise ApiError(400, "no_subject", f"use a user key (keys create --scope user --subject "
                                          f"HANDLE), or {admin_route} with an admin key")
    return key.subject


async def _opt_out(rt: Runtime, user: str, undo: bool) -> dict:
    ads = await asyncio.to_thread(rt.services.ads)
    try:      # on the writer thread: the one connection that writes the store
        return await asyncio.wrap_future(rt.writer.call(
            partial(privacy.opt_out, profiles=ads.profiles, user=user, undo=undo)))
    except InputError as e:
        raise from_input(e) from None


def _status(rt: Runtime, user: str) -> dict:
    ads = rt.services.ads()
    try:
        c = privacy.consent(ads.store, ads.profiles, user)
    except InputError as e:
        raise from_input(e) from None
    return {k: c[k] for k in ("user", "opted_out", "opted_out_at", "opted_out_as", "minor")}


@router.post("/v1/optout", responses=ERRORS)
async def opt_out_me(rt: RuntimeDep, key=require("user")) -> dict:
    """Opt out of profiling: the profile is deleted at once, ads are no longer personalized,
    and the next training corpus leaves one's posts out. Answers when, and what it did."""
    return await _opt_out(rt, _me(key, "POST /v1/optouts/{user}"), undo=False)


@router.delete("/v1/optout", responses=ERRORS)
async def opt_in_me(rt: RuntimeDep, key=require("user")) -> dict:
    """Lift one's opt-out: profiling resumes when an ad is next chosen."""
    return await _opt_out(rt, _me(key, "DELETE /v1/optouts/{user}"), undo=True)


@router.get("/v1/optout", responses=ERRORS)
def opt_out_status_me(rt: RuntimeDep, key=require("user")) -> dict:
    return _status(rt, _me(key, "GET /v1/optouts/{user}"))


@router.post("/v1/optouts/{user}", responses=ERRORS)
async def opt_out_user(user: str, rt: RuntimeDep, _k=require("admin")) -> dict:
    """An operator records a user's opt-out for them."""
    return await _opt_out(rt, user, undo=False)


@router.delete("/v1/optouts/{user}", responses=ERRORS)
async def opt_in_user(user: str, rt: RuntimeDep, _k=require("admin")) -> dict:
    return await _opt_out(rt, user, undo=True)


@router.get("/v1/optouts/{user}", responses=ERRORS)
def opt_out_status_user(user: str, rt: RuntimeDep, _k=require("admin")) -> dict:
    return _status(rt, user)


def _export(rt: Runtime, user: str, section: Section, cursor: str | None, limit: int) -> dict:
    ads = rt.services.ads()
    clock = Laps()
    try:
        if section != "all":
            page = privacy.export_posts if section == "posts" else privacy.export_impressions
            items, nxt = page(ads.store if section == "posts" else ads.campaigns, user,
                              cursor=cursor, limit=limit)
            clock.lap(section)
            return {"user": user, section: items, "next_cursor": nxt,
                    "timings_ms": clock.total()}
        if cursor is not None:
            raise InputError("a cursor pages one section: add section=posts or impressions",
                             "cursor")
        d = privacy.export_summary(ads.store, ads.profiles, user,
                                   corpus_dir=rt.settings.corpus_dir)
        clock.lap("summary")
        d["posts"], posts_next = privacy.export_posts(ads.store, user, limit=limit)
        clock.lap("posts")
        d["impressions"], imp_next = privacy.export_impressions(ads.campaigns, user, limit=limit)
        clock.lap("impressions")
        d["next"] = {"posts": posts_next, "impressions": imp_next}
        d["timings_ms"] = clock.total()
        return d
    except InputError as e:
        raise from_input(e) from None


Limit = Query(privacy.PAGE, ge=1, le=privacy.MAX_PAGE, description="Items per page.")


@router.get("/v1/export", responses=ERRORS)
def export_me(rt: RuntimeDep, section: Section = "all", cursor: str | None = None,
              limit: int = Limit, key=require("user")) -> dict:
    """Everything held about one's self: posts, ad profile or why none, opt-out and minor
    status, the ads shown and why, whether the last training corpus holds one's posts."""
    return _export(rt, _me(key, "GET /v1/users/{user}/export"), section, cursor, limit)


@router.get("/v1/users/{user}/export", responses=ERRORS)
def export_user(user: str, rt: RuntimeDep, section: Section = "all", cursor: str | None = None,
                limit: int = Limit, _k=require("admin")) -> dict:
    return _export(rt, user, section, cursor, limit)

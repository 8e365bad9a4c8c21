"""The ads endpoints: advertisers manage their own campaigns, users see and delete their own
profile, the platform asks for an ad and for why it was shown.

    POST   /v1/ads/campaigns                 advertiser: create or replace one of its campaigns
    GET    /v1/ads/campaigns                 advertiser: its campaigns (admin: all)
    GET    /v1/ads/campaigns/{id}            advertiser: one of its own (another's is a 404)
    DELETE /v1/ads/campaigns/{id}
    GET    /v1/ads/campaigns/{id}/creatives  advertiser: the creatives of one of its campaigns
    POST   /v1/ads/creatives/{id}/approve | /reject
    POST   /v1/ads/serve                     read: {"user", "context"} -> the decision
    GET    /v1/ads/impressions/{id}/why      read, or the user the impression was shown to
    GET    /v1/profile  /  DELETE /v1/profile        user: one's own profile
    GET    /v1/profiles/{user}  /  DELETE            admin

An advertiser key (``townsquare keys create --scope advertiser --subject ACME``) acts for its
subject only: the campaigns it writes are that advertiser's whatever the body says, another
advertiser's campaign looks absent (404, not 403, so ids cannot be probed), and no advertiser
route reads a profile. A user key (``--scope user --subject HANDLE``) reads and deletes one
profile: its own.
"""
from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from townsquare.ads.campaigns import Campaign, CampaignError, parse_campaign
from townsquare.api.auth import ApiKey
from townsquare.api.deps import RuntimeDep, check_key, require
from townsquare.api.errors import ERRORS, ApiError, from_input
from townsquare.api.limits import SMALL_BODY_BYTES, BoundedRoute, body_limit
from townsquare.api.runtime import Runtime
from townsquare.services.errors import InputError
from townsquare.services.privacy import profile_view
from townsquare.store.base import author_key

RowId = Annotated[int, Path(ge=1, lt=2**63, description="A row id (SQLite INTEGER).")]

router = APIRouter(tags=["ads"], route_class=BoundedRoute)


class ServeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(..., min_length=1, max_length=100, description="Author handle or id.")
    context: str | None = Field(None, max_length=500, description="A search query, or none "
                                                                   "(the user's timeline).")
    generate: bool = Field(True, description="Write copy with the model (else the template).")


def _acting_for(key: ApiKey | None) -> str | None:
    """The advertiser a key is limited to (None: any, for admin keys or a no-auth demo)."""
    if key is None or "admin" in key.scopes:
        return None
    return key.subject


@router.post("/v1/ads/campaigns", responses=ERRORS,
             openapi_extra=body_limit(SMALL_BODY_BYTES))
async def put_campaign(request: Request, rt: RuntimeDep, key=require("advertiser")) -> dict:
    """Create or replace a campaign (validated; special-category targeting is refused). An id
    that is another advertiser's answers 404, as reading it does. The body: at most 1 MiB (413
    beyond), JSON nested at most 64 deep (400 beyond)."""
    body = await request.json()           # api.limits: depth-checked first, 400 if not JSON
    who = _acting_for(key)
    if who is not None and isinstance(body, dict):
        body = {**body, "advertiser": who}        # an advertiser writes only its own
    ads = await asyncio.to_thread(rt.services.ads)
    try:
        c = parse_campaign(body)          # keyword lists: see ads.campaigns.check_targeting
    except CampaignError as e:
        raise ApiError(400, "invalid_campaign", str(e), param=e.field) from None
    try:
        ads.campaigns.put(c)
    except CampaignError as e:            # put refuses one thing: an id another advertiser has
        if who is None:                   # an admin sees every campaign anyway
            raise ApiError(400, "invalid_campaign", str(e), param=e.field) from None
        raise _not_yours(c.id) from None
    return {"campaign": c.to_dict(), "spent": ads.campaigns.spent(c.id)}


@router.get("/v1/ads/campaigns", responses=ERRORS)
def list_campaigns(rt: RuntimeDep, key=require("advertiser")) -> dict:
    ads = rt.services.ads()
    cs = ads.campaigns.list(advertiser=_acting_for(key))
    return {"campaigns": [{**c.to_dict(), "spent": round(ads.campaigns.spent(c.id), 6),
                           "impressions": ads.campaigns.impressions_of(c.id)} for c in cs]}


def _own(rt: Runtime, cid: str, key: ApiKey | None) -> Campaign:
    c = rt.services.ads().campaigns.get(cid, advertiser=_acting_for(key))
    if c is None:
        raise _not_yours(cid)
    return c


def _not_yours(cid: str) -> ApiError:
    """The same 404 whether the campaign is absent or another advertiser's: ids cannot be probed."""
    return ApiError(404, "not_found", f"no campaign {cid[:64]!r} of yours")


@router.get("/v1/ads/campaigns/{campaign_id}", responses=ERRORS)
def get_campaign(campaign_id: str, rt: RuntimeDep, key=require("advertiser")) -> dict:
    c = _own(rt, campaign_id, key)
    return {"campaign": c.to_dict(), "spent": rt.services.ads().campaigns.spent(c.id)}


@router.delete("/v1/ads/campaigns/{campaign_id}", responses=ERRORS)
def delete_campaign(campaign_id: str, rt: RuntimeDep, key=require("advertiser")) -> dict:
    _own(rt, campaign_id, key)
    rt.services.ads().campaigns.delete(campaign_id, advertiser=_acting_for(key))
    return {"id": campaign_id, "deleted": True}


@router.get("/v1/ads/campaigns/{campaign_id}/creatives", responses=ERRORS)
def creatives(campaign_id: str, rt: RuntimeDep, key=require("advertiser")) -> dict:
    c = _own(rt, campaign_id, key)
    return {"creatives": rt.services.ads().campaigns.creatives(c.id)}


def _review(rt: Runtime, creative_id: int, status: str, key: ApiKey | None) -> dict:
    if not rt.services.ads().campaigns.review(creative_id, status, advertiser=_acting_for(key)):
        raise ApiError(404, "not_found", f"no creative {creative_id} of yours")
    return {"id": creative_id, "status": status}


@router.post("/v1/ads/creatives/{creative_id}/approve", responses=ERRORS)
def approve(creative_id: RowId, rt: RuntimeDep, key=require("advertiser")) -> dict:
    return _review(rt, creative_id, "approved", key)


@router.post("/v1/ads/creatives/{creative_id}/reject", responses=ERRORS)
def reject(creative_id: RowId, rt: RuntimeDep, key=require("advertiser")) -> dict:
    return _review(rt, creative_id, "rejected", key)


@router.post("/v1/ads/serve", responses=ERRORS)
def serve(req: ServeRequest, rt: RuntimeDep, _k=require("read")) -> dict:
    """The ad for a user in a context: campaign, copy, and why."""
    try:
        author_key(req.user)
    except ValueError as e:
        raise ApiError(400, "invalid_parameter", str(e), param="user") from None
    d = rt.services.ads().run(req.user, context=req.context, generate=req.generate)
    return {"decision": d.to_dict() if d is not None else None}


@router.get("/v1/ads/impressions/{impression_id}/why", responses=ERRORS)
def why(impression_id: RowId, request: Request, rt: RuntimeDep) -> dict:
    """Why an impression was shown: to the platform (read) or to its user (user key)."""
    imp = rt.services.ads().campaigns.impression(impression_id)
    key = _any_key(request, ("read", "user"))
    if imp is None or (key is not None and "user" in key.scopes and
                       not key.allows("read") and imp["user"] != author_key(str(key.subject))):
        raise ApiError(404, "not_found", f"no impression {impression_id} of yours")
    return {"id": impression_id, "why": imp["why"], "signals": imp["signals"],
            "campaign": imp["campaign"], "personalized": imp["personalized"]}


def _any_key(request: Request, scopes: tuple[str, ...]) -> ApiKey | None:
    """Authorize with any of ``scopes`` (the dependency takes one scope)."""
    errors = []
    for s in scopes:
        try:
            return check_key(request, s)
        except ApiError as e:
            errors.append(e)
    raise errors[-1] if errors[-1].status != 403 else errors[0]


def _profile(rt: Runtime, user: str) -> dict:
    """The profile, or why there is none (``services.privacy.profile_view``)."""
    try:
        return profile_view(rt.services.ads(), user)
    except InputError as e:
        raise from_input(e, "invalid_user") from None


@router.get("/v1/profile", responses=ERRORS)
def my_profile(rt: RuntimeDep, key=require("user")) -> dict:
    """One's own ads profile (a user key)."""
    if key is None or key.subject is None:
        raise ApiError(400, "no_subject", "use a user key (keys create --scope user "
                                          "--subject HANDLE), or GET /v1/profiles/{user}")
    return _profile(rt, key.subject)


@router.delete("/v1/profile", responses=ERRORS)
def delete_my_profile(rt: RuntimeDep, key=require("user")) -> dict:
    if key is None or key.subject is None:
        raise ApiError(400, "no_subject", "use a user key, or DELETE /v1/profiles/{user}")
    return {"user": key.subject, "deleted": rt.services.ads().profiles.delete(key.subject)}


@router.get("/v1/profiles/{user}", responses=ERRORS)
def a_profile(user: str, rt: RuntimeDep, _k=require("admin")) -> dict:
    return _profile(rt, user)


@router.delete("/v1/profiles/{user}", responses=ERRORS)
def delete_a_profile(user: str, rt: RuntimeDep, _k=require("admin")) -> dict:
    return {"user": user, "deleted": rt.services.ads().profiles.delete(user)}

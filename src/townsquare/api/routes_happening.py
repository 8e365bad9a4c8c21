"""What is happening: trends, stories and cited summaries.

    GET  /v1/trends?window=1h&baseline=24    read: what is bursting at the latest post's time
    GET  /v1/trends?at=2013-04-15T18:00Z     read: ... or at any moment
    GET  /v1/stories?at=...&recent=24h       read: the stories then (default: now), busiest first
    GET  /v1/stories?since=...&until=...     read: the stories with posts in a range
    GET  /v1/stories/{id}                    read: one story with every member post
    POST /v1/summarize                       read: {"query"} or {"story_id"} -> cited sentences

Trends are computed from the store per request (``services.happening``); stories are the
background work's (``api.background``), as far as it has got (``lag_posts``); every summary
sentence cites posts and was checked against them before it is shown (``summarize``). Without
``at``, when nothing happens at the latest post, trends and stories show the stream's most recent
active period and say so in ``fallback`` (``services.happening``).
"""
from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from townsquare.api.deps import RuntimeDep, require
from townsquare.api.errors import ERRORS, ApiError, from_input
from townsquare.api.limits import SMALL_BODY_BYTES, BoundedRoute, body_limit
from townsquare.api.runtime import Runtime
from townsquare.llm import BackendError
from townsquare.query import QueryError
from townsquare.services import InputError
from townsquare.services.happening import current_trends, stories_at
from townsquare.services.times import parse_at, parse_time
from townsquare.stories.state import StoryView

router = APIRouter(tags=["what's happening"], route_class=BoundedRoute)
# A moment: "2013-04-15", "2013-04-15T18:00:00Z", unix seconds; at most 40 characters (beyond:
# the validation error, a 400 naming query.at).
At = Annotated[str | None, Query(max_length=40, description=(
    "Look at this moment (UTC; ISO 8601 date or date-time, or unix seconds) instead of the "
    "latest post's time."))]


class SummarizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str | None = Field(None, min_length=1, max_length=1000,
                              description="A search query (the full query language).")
    story_id: str | None = Field(None, pattern=r"^\d{1,19}$", description="A story id.")
    backend: Literal["local", "openai", "extractive", "trained"] | None = Field(
        None, description="Generation backend (default: the server's).")


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


@router.get("/v1/trends", responses=ERRORS)
def trends(rt: RuntimeDep, _k=require("read"),
           window: Annotated[str, Query(pattern=r"^[1-9]\d{0,4}[smhd]$",
                                        description="30m, 1h, 1d...")] = "1h",
           baseline: Annotated[int, Query(ge=1, le=168)] = 24,
           limit: Annotated[int, Query(ge=1, le=100)] = 20, at: At = None) -> dict:
    """What is bursting at the time of the latest post (or `at`): acceleration against a
    baseline, counted in distinct authors. Without `at`, when nothing bursts at the latest
    post, the trends of the most recent window that has some, with `fallback` saying so."""
    try:
        at_ms = parse_at(at, "at")
    except InputError as e:
        raise from_input(e, "invalid_time") from None
    try:
        return current_trends(rt.services.reader(), window=window, baseline=baseline,
                              limit=limit, at_ms=at_ms)
    except InputError as e:
        raise from_input(e) from None


@router.get("/v1/stories", responses=ERRORS)
def stories(rt: RuntimeDep, _k=require("read"),
            since: Annotated[str | None, Query(max_length=40)] = None,
            until: Annotated[str | None, Query(max_length=40)] = None,
            all: bool = False,                                        # noqa: A002
            limit: Annotated[int, Query(ge=1, le=100)] = 20,
            at: At = None,
            recent: Annotated[str, Query(pattern=r"^[1-9]\d{0,4}[smhd]$",
                                         description="With a moment: stories with posts in "
                                                     "this span before it (at most 30d).")] = "24h"
            ) -> dict:
    """Stories active at the time of the latest post (when none is: those at the end of the
    latest story, with `fallback` saying so); with `at`: the stories with posts in the `recent`
    span before it; with `since`/`until`: every story with posts in that range. The busiest
    first, each with its headline, key posts, timeline and `recent_posts`."""
    t0 = time.perf_counter()
    try:
        lo, hi = parse_time(since, "since"), parse_time(until, "until")
        at_ms = parse_at(at, "at")
    except InputError as e:
        raise from_input(e, "invalid_time") from None
    if lo is not None and hi is not None and hi <= lo:
        raise ApiError(400, "invalid_time", "until must be after since", param="until")
    bg = rt.background
    try:
        with bg.stories_lock:            # the clusterer is not safe to read while it changes
            moment = stories_at(bg.stories, at_ms=at_ms, recent=recent, limit=limit, all_=all,
                                since_ms=lo, until_ms=hi, key_posts=3)
            share = bg.stories.unassigned_share()
    except InputError as e:
        raise from_input(e) from None
    return {**moment.to_dict(), "no_story_share": round(share, 4),
            "lag_posts": rt.stories_lag(), "timings_ms": {"total": _ms(t0)}}


def _story(rt: Runtime, story_id: str) -> StoryView:
    try:
        sid = int(story_id)
    except ValueError:
        raise ApiError(400, "invalid_id", f"story id {story_id[:40]!r} is not a number",
                       param="story_id") from None
    v = rt.background.story(sid) if 0 <= sid < 2**63 else None
    if v is None:
        raise ApiError(404, "not_found", f"no story {sid} (see GET /v1/stories)")
    return v


@router.get("/v1/stories/{story_id}", responses=ERRORS)
def story(story_id: str, rt: RuntimeDep, _k=require("read")) -> dict:
    """One story: headline, key posts, terms, languages, timeline and every member post."""
    return _story(rt, story_id).to_dict(with_posts=True)


@router.post("/v1/summarize", responses=ERRORS,
             openapi_extra=body_limit(SMALL_BODY_BYTES))
def summarize(req: SummarizeRequest, rt: RuntimeDep, _k=require("read")) -> dict:
    """A headline and sentences about a story or a query; every sentence cites posts and was
    checked against them before it is shown. The body: at most 1 MiB (413 beyond), JSON
    nested at most 64 deep (400 beyond)."""
    if (req.query is None) == (req.story_id is None):
        raise ApiError(400, "invalid_parameter", "give 'query' or 'story_id' (one of them)")
    try:                     # a backend this server cannot build is the request's problem
        rt.services.backend(req.backend)
    except BackendError as e:
        raise ApiError(400, "backend_not_configured", f"backend {req.backend!r} is not "
                       f"available on this server: {e}", param="backend") from None
    try:
        if req.story_id is not None:
            v = _story(rt, req.story_id)
            return rt.services.summarize(post_ids=v.post_ids, backend=req.backend,
                                         cache_key=(v.id, v.size, req.backend))
        return rt.services.summarize(query=req.query, backend=req.backend)
    except QueryError as e:
        raise ApiError(400, "invalid_query", str(e), param="query") from None
    except BackendError as e:
        raise ApiError(503, "backend_unavailable", f"generation failed: {e}") from None

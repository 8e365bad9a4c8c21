"""Posts in and out: ingest in the Twitter API v2 shape, read one, delete one.

    POST   /v1/posts            ingest: a tweet, a v2 response page or an array of tweets
    GET    /v1/posts/{id}       read: one stored post (what a citation points at)
    DELETE /v1/posts/{id}       ingest: delete a post everywhere, and never store it again

Ingest answers one status per item (``inserted``, ``updated``, ``unchanged``, ``deleted``,
``error``); a bad item never stops the good ones (it is kept in the quarantine with its reason).
Writes go through the runtime's single writer (``api.writequeue``), which commits concurrent
requests together.
"""
from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from townsquare.api.deps import RuntimeDep, require
from townsquare.api.errors import ERRORS, ApiError
from townsquare.api.ingestbody import BodyError, BodyItem, parse_body
from townsquare.api.limits import MiB, body_limit, check_depth
from townsquare.platforms import original_url
from townsquare.posts import PostError, parse_id
from townsquare.store.base import Quarantined, Stored

MAX_BATCH = 10_000                 # tweets per ingest request
MAX_BODY_BYTES = 32 * MiB          # refused before it is read (api.limits)

router = APIRouter(tags=["posts"])


class ItemStatus(BaseModel):
    index: int
    id: str | None
    status: Literal["inserted", "updated", "unchanged", "deleted", "error"]
    error: str | None = None
    included: bool = False


class IngestResponse(BaseModel):
    items: list[ItemStatus]
    counts: dict[str, int]
    timings_ms: dict[str, float]


_EXAMPLE = {"data": [{"id": "1212092628029698048", "text": "Flood on Main St",
                      "created_at": "2020-01-01T00:00:00.000Z", "author_id": "42"}],
            "includes": {"users": [{"id": "42", "username": "ann"}]}}


@router.post("/v1/posts", response_model=IngestResponse, responses=ERRORS,
             openapi_extra=body_limit(MAX_BODY_BYTES, requestBody={
                 "required": True, "content": {"application/json": {
                     "schema": {"oneOf": [{"type": "object"}, {"type": "array",
                                                                 "items": {"type": "object"}}]},
                     "example": _EXAMPLE}}}))
async def ingest(request: Request, rt: RuntimeDep, _k=require("ingest"),
                 source: Annotated[str, Query(min_length=1, max_length=100,
                                              pattern=r"^[\w.\-]+$")] = "api"):
    """Store posts in the Twitter API v2 shape: one tweet, a response page (`data` +
    `includes`) or an array of tweets; at most 10,000 per request. Each item gets a status;
    a bad item never stops the good ones (it is kept in the quarantine with its reason).
    The body: at most 32 MiB (413 beyond), JSON nested at most 64 deep (400 beyond)."""
    t0 = time.perf_counter()
    body = await request.body()
    try:            # in a worker thread: a large batch must not block the event loop
        items = await run_in_threadpool(_parse, body, source)
    except BodyError as e:
        raise ApiError(413 if e.code == "batch_too_large" else 400, e.code, str(e)) from None
    t1 = time.perf_counter()
    good = [Stored(it.post, "POST /v1/posts", it.index + 1) for it in items if it.post]
    bad = [Quarantined(source, "POST /v1/posts", it.index + 1, it.error,
                       _raw(it.raw)) for it in items if it.error]
    result = await asyncio.wrap_future(rt.writer.write(good, bad))
    t2 = time.perf_counter()
    out = []
    for it in items:
        if it.post is None:
            out.append({"index": it.index, "id": None, "status": "error", "error": it.error,
                        "included": it.included})
        else:
            out.append({"index": it.index, "id": str(it.post.id),
                        "status": result.statuses.get(it.post.id, "unchanged"),
                        "error": None, "included": it.included})
    counts = {"inserted": result.inserted, "updated": result.updated,
              "unchanged": result.unchanged, "deleted": result.skipped_deleted,
              "error": len(bad)}
    return {"items": out, "counts": counts,
            "timings_ms": {"parse": round((t1 - t0) * 1000, 2),
                           "write": round((t2 - t1) * 1000, 2)}}


def _parse(body: bytes, source: str) -> list[BodyItem]:
    check_depth(body)           # before the parser: deep nesting breaks what walks the items
    return parse_body(body, source, max_items=MAX_BATCH)


def _post_id(value: str) -> int:
    try:
        return parse_id(value, "post_id")
    except PostError as e:
        raise ApiError(400, "invalid_id", f"{e} (a post id is a decimal number)",
                       param="post_id") from None


@router.get("/v1/posts/{post_id}", responses=ERRORS)
def get_post(post_id: str, rt: RuntimeDep, _k=require("read")) -> dict:
    """One stored post (what a citation points at)."""
    pid = _post_id(post_id)
    p = rt.services.reader().get(pid)
    if p is None:
        raise ApiError(404, "not_found", f"no post {pid} (never stored, or deleted)")
    d = p.to_dict()
    d["author"] = p.author_handle
    d["url"] = original_url(p.id, p.author_handle, p.labels)
    return d


@router.delete("/v1/posts/{post_id}", responses=ERRORS)
async def delete_post(post_id: str, rt: RuntimeDep, _k=require("ingest")) -> dict:
    """Delete a post from every index; its id is never stored again (a deletion that
    arrives before the post still counts)."""
    pid = _post_id(post_id)
    n = await asyncio.wrap_future(rt.writer.delete([pid]))
    return {"id": str(pid), "deleted": True, "was_stored": bool(n)}


def _raw(obj: Any) -> str:
    """A quarantined item as it came (its JSON, cut to 2,000 characters)."""
    try:
        return orjson.dumps(obj).decode()[:2000]
    except TypeError:
        return repr(obj)[:2000]

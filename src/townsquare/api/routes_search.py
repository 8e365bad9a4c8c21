"""Search: the Twitter query language over the posts, lexical and semantic, fused and ranked.

    GET /v1/search?q=flood+lang:en&mode=top&limit=20      read
    GET /v1/search?q=...&cursor=NEXT                        the next page
    GET /v1/search?q=...&limit=1000                         up to 1,000 results a page

``top`` ranks by relevance through the tantivy and vector indexes (as fresh as the indexer's last
pass, ``api.indexer``); ``latest`` orders by time from the store's own full-text index, current
at commit. ``search.engine`` explains the ranking.
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from townsquare.api.deps import RuntimeDep, require
from townsquare.api.errors import ERRORS, ApiError
from townsquare.query import QueryError
from townsquare.search.engine import MAX_LIMIT, SearchError

router = APIRouter(tags=["search"])


@router.get("/v1/search", responses=ERRORS)
def search(q: Annotated[str, Query(min_length=1, max_length=1000,
                                   description="Twitter search syntax")],
           rt: RuntimeDep,
           _k=require("read"),
           mode: Literal["top", "latest"] = "top",
           limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
           cursor: Annotated[str | None, Query(max_length=2000)] = None,
           semantic: bool = True) -> dict:
    """Search the posts: lexical and semantic, fused and ranked; `next_cursor` pages."""
    try:
        return rt.services.engine().run(q, mode=mode, limit=limit, cursor=cursor,
                                        semantic=semantic).to_dict()
    except QueryError as e:
        raise ApiError(400, "invalid_query", str(e), param="q") from None
    except SearchError as e:
        raise ApiError(400, "invalid_parameter", str(e), param="cursor") from None

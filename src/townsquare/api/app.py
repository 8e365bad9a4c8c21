"""The HTTP API (FastAPI): ingest, delete, search, trends, stories, summaries, stats, health,
the OpenAI-compatible chat (``api.chat``) and the web page (``townsquare.web``).

    townsquare serve --port 8000                      # keys required (townsquare keys create ...)
    townsquare serve --no-auth                        # a local demo: no keys, and the log says so
    curl -H "Authorization: Bearer $KEY" 'localhost:8000/v1/search?q=flood+lang:en'

    >>> import tempfile
    >>> from fastapi.testclient import TestClient
    >>> from townsquare.api.runtime import Runtime
    >>> rt = Runtime(tempfile.mkdtemp(), backend="extractive")
    >>> with TestClient(create_app(rt, keys=None, auth=False)) as c:
    ...     c.get("/health").json()["status"]
    'ok'
    >>> rt.close()

Every error is JSON, ``{"error": {"code", "message", "type", "param"}}`` (the OpenAI SDK reads
the same shape), with a 4xx status that says whose fault it is; a 5xx means a bug here. Ids are
strings (they exceed JavaScript's 2^53). Every endpoint that does work reports ``timings_ms``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from townsquare import __version__
from townsquare.api.auth import ApiKey, KeyStore
from townsquare.api.ingestbody import BodyError, parse_body
from townsquare.api.runtime import Runtime
from townsquare.posts import PostError, format_time, parse_id, parse_time_ms
from townsquare.store.base import Quarantined, Stored

log = logging.getLogger("townsquare.api")

MAX_BATCH = 10_000                 # tweets per ingest request
MAX_BODY_BYTES = 32 * 2**20


class ApiError(Exception):
    """An error for the client: HTTP ``status``, a stable ``code``, a message saying what to fix."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param
        self.headers = headers or {}


_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 413: "invalid_request_error", 422: "invalid_request_error",
          429: "rate_limit_error"}


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict:
    return {"error": {"code": code, "message": message,
                      "type": _TYPES.get(status, "server_error" if status >= 500 else
                                         "invalid_request_error"), "param": param}}


# --- request and response bodies (for validation and the OpenAPI document) ---------------------
class SummarizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str | None = Field(None, min_length=1, max_length=1000,
                              description="A search query (the full query language).")
    story_id: str | None = Field(None, pattern=r"^\d{1,19}$", description="A story id.")
    backend: Literal["local", "openai", "extractive", "trained"] | None = Field(
        None, description="Generation backend (default: the server's).")


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


class ErrorDetail(BaseModel):
    code: str
    message: str
    type: str
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERRORS = {s: {"model": ErrorResponse} for s in (400, 401, 403, 404, 413, 422, 429)}


# --- the application -----------------------------------------------------------------------------
def create_app(runtime: Runtime, *, keys: KeyStore | None, auth: bool = True,
               max_batch: int = MAX_BATCH) -> FastAPI:
    """The app over ``runtime``. ``auth=False`` (a local demo) needs no key; otherwise ``keys``
    holds them."""
    if auth and keys is None:
        raise ValueError("auth is on: give a KeyStore (or auth=False for a local demo)")
    app = FastAPI(title="townsquare", version=__version__,
                  description="What is happening in a social network's public posts: search, "
                              "trends, stories, cited summaries, and a grounded chat.")
    app.state.runtime = runtime
    app.state.keys = keys
    app.state.auth = auth
    limiter = runtime.rate_limiter()

    @app.middleware("http")
    async def _touch(request: Request, call_next):
        runtime.touch()                 # background work yields to requests (api.runtime)
        return await call_next(request)

    # --- errors: always JSON, never an HTML page or a bare 500 ---------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, e: ApiError):
        return JSONResponse(error_body(e.status, e.code, e.message, e.param), e.status,
                            headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or None
        msg = f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid")
        return JSONResponse(error_body(400, "invalid_parameter", msg, where), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return JSONResponse(error_body(e.status_code, code, str(e.detail)), e.status_code,
                            headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(_req: Request, e: Exception):        # a bug: log it, answer in JSON
        log.exception("unhandled error")
        return JSONResponse(error_body(500, "internal_error",
                                       f"internal error ({type(e).__name__}); see the server log"),
                            500)

    # --- auth --------------------------------------------------------------------------------------
    def check_key(request: Request, scope: str) -> ApiKey | None:
        """The request's key if it may act with ``scope`` (None when auth is off); raises
        401, 403 or 429 otherwise."""
        if not app.state.auth:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "missing_api_key", "send an API key: 'Authorization: Bearer "
                           "KEY' (create one with `townsquare keys create --scope ...`)",
                           headers={"WWW-Authenticate": "Bearer"})
        key = keys.verify(secret.strip())
        if key is None:
            raise ApiError(401, "invalid_api_key", "this API key is unknown or revoked",
                           headers={"WWW-Authenticate": "Bearer"})
        if not key.allows(scope):
            raise ApiError(403, "insufficient_scope", f"this key lacks the '{scope}' scope "
                           f"(it has: {', '.join(key.scopes)})")
        wait = limiter.take(key)
        if wait:
            raise ApiError(429, "rate_limited", f"rate limit of {key.rate_per_minute} "
                           f"requests per minute reached; retry in {wait} s",
                           headers={"Retry-After": str(wait)})
        return key

    def require(scope: str):
        def dep(request: Request) -> ApiKey | None:
            return check_key(request, scope)
        return Depends(dep)

    app.state.require = require
    app.state.require_key = check_key
    rt = runtime

    # --- public ------------------------------------------------------------------------------------
    @app.get("/health", tags=["service"])
    def health() -> dict:
        """Liveness and the store's size; no key needed."""
        return {"status": "ok", "version": __version__, "posts": rt.reader().count(),
                "uptime_s": round(time.time() - rt.started_at, 1)}

    @app.get("/v1/info", tags=["service"])
    def info() -> dict:
        """What the web page needs before it has a key: whether keys are required."""
        from townsquare.api.chat import MODELS
        return {"auth": app.state.auth, "version": __version__, "models": list(MODELS)}

    # --- posts -----------------------------------------------------------------------------------
    @app.post("/v1/posts", tags=["posts"], response_model=IngestResponse, responses=ERRORS,
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"oneOf": [{"type": "object"}, {"type": "array",
                                                              "items": {"type": "object"}}]},
                  "example": {"data": [{"id": "1212092628029698048", "text": "Flood on Main St",
                                        "created_at": "2020-01-01T00:00:00.000Z",
                                        "author_id": "42"}],
                              "includes": {"users": [{"id": "42", "username": "ann"}]}}}}}})
    async def ingest(request: Request, _k=require("ingest"),
                     source: Annotated[str, Query(min_length=1, max_length=100,
                                                  pattern=r"^[\w.\-]+$")] = "api"):
        """Store posts in the Twitter API v2 shape: one tweet, a response page (`data` +
        `includes`) or an array of tweets; at most 10,000 per request. Each item gets a status;
        a bad item never stops the good ones (it is kept in the quarantine with its reason)."""
        t0 = time.perf_counter()
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "body_too_large", f"the body is {len(body):,} bytes; at most "
                           f"{MAX_BODY_BYTES:,}")
        try:            # in a worker thread: a large batch must not block the event loop
            items = await run_in_threadpool(parse_body, body, source, max_items=max_batch)
        except BodyError as e:
            raise ApiError(413 if e.code == "batch_too_large" else 400, e.code, str(e)) from None
        t1 = time.perf_counter()
        good = [Stored(it.post, "POST /v1/posts", it.index + 1) for it in items if it.post]
        bad = [Quarantined(source, "POST /v1/posts", it.index + 1, it.error,
                           _raw(it.raw)) for it in items if it.error]
        fut = rt.writer.write(good, bad)
        result = await asyncio.wrap_future(fut)
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

    def _post_id(value: str) -> int:
        try:
            return parse_id(value, "post_id")
        except PostError as e:
            raise ApiError(400, "invalid_id", f"{e} (a post id is a decimal number)",
                           param="post_id") from None

    @app.get("/v1/posts/{post_id}", tags=["posts"], responses=ERRORS)
    def get_post(post_id: str, _k=require("read")) -> dict:
        """One stored post (what a citation points at)."""
        pid = _post_id(post_id)
        p = rt.reader().get(pid)
        if p is None:
            raise ApiError(404, "not_found", f"no post {pid} (never stored, or deleted)")
        d = p.to_dict()
        d["author"] = p.author_handle
        d["url"] = f"https://x.com/i/status/{p.id}"
        return d

    @app.delete("/v1/posts/{post_id}", tags=["posts"], responses=ERRORS)
    async def delete_post(post_id: str, _k=require("ingest")) -> dict:
        """Delete a post from every index; its id is never stored again (a deletion that
        arrives before the post still counts)."""
        pid = _post_id(post_id)
        n = await asyncio.wrap_future(rt.writer.delete([pid]))
        return {"id": str(pid), "deleted": True, "was_stored": bool(n)}

    # --- search, trends, stories, summaries ---------------------------------------------------
    @app.get("/v1/search", tags=["search"], responses=ERRORS)
    def search(q: Annotated[str, Query(min_length=1, max_length=1000,
                                       description="Twitter search syntax")],
               _k=require("read"),
               mode: Literal["top", "latest"] = "top",
               limit: Annotated[int, Query(ge=1, le=100)] = 20,
               cursor: Annotated[str | None, Query(max_length=2000)] = None,
               semantic: bool = True) -> dict:
        """Search the posts: lexical and semantic, fused and ranked; `next_cursor` pages."""
        from townsquare.search.engine import SearchError
        from townsquare.search.query import QueryError
        try:
            return rt.engine().run(q, mode=mode, limit=limit, cursor=cursor,
                                   semantic=semantic).to_dict()
        except QueryError as e:
            raise ApiError(400, "invalid_query", str(e), param="q") from None
        except SearchError as e:
            raise ApiError(400, "invalid_parameter", str(e), param="cursor") from None

    @app.get("/v1/trends", tags=["what's happening"], responses=ERRORS)
    def trends(_k=require("read"),
               window: Annotated[str, Query(pattern=r"^[1-9]\d{0,4}[smhd]$",
                                            description="30m, 1h, 1d...")] = "1h",
               baseline: Annotated[int, Query(ge=1, le=168)] = 24,
               limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict:
        """What is bursting at the time of the latest post: acceleration against a baseline,
        counted in distinct authors."""
        from townsquare.stories.trends import TrendDetector, TrendsConfig, trend_posts_from_store
        t0 = time.perf_counter()
        w = int(window[:-1]) * {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[window[-1]]
        store = rt.reader()
        newest = store.newest_created_at()
        if newest is None:
            return {"now": None, "window": window, "trends": [], "timings_ms": {}}
        now = newest + 1
        try:
            found = TrendDetector(TrendsConfig(window_ms=w, baseline_windows=baseline,
                                               max_trends=limit)).run(
                trend_posts_from_store(store, now - w * (baseline + 1), now), now_ms=now)
        except ValueError as e:
            raise ApiError(400, "invalid_parameter", str(e)) from None
        return {"now": format_time(now), "window": window, "trends": [t.to_dict() for t in found],
                "timings_ms": {"total": round((time.perf_counter() - t0) * 1000, 2)}}

    def _time_param(value: str | None, name: str) -> int | None:
        if value is None:
            return None
        try:
            return parse_time_ms(value, name)
        except PostError:
            raise ApiError(400, "invalid_time", f"{name}: expected a time like 2020-01-02 or "
                           f"2020-01-02T10:00:00Z, got {value!r}", param=name) from None

    @app.get("/v1/stories", tags=["what's happening"], responses=ERRORS)
    def stories(_k=require("read"),
                since: Annotated[str | None, Query(max_length=40)] = None,
                until: Annotated[str | None, Query(max_length=40)] = None,
                all: bool = False,                                        # noqa: A002
                limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict:
        """Stories active at the time of the latest post (with `since`/`until`: every story
        with posts in that range), the busiest first, each with its headline, key posts and
        timeline."""
        t0 = time.perf_counter()
        lo, hi = _time_param(since, "since"), _time_param(until, "until")
        if lo is not None and hi is not None and hi <= lo:
            raise ApiError(400, "invalid_time", "until must be after since", param="until")
        with rt.stories_lock:
            views = rt.stories.stories(active_only=not all, limit=limit, since_ms=lo,
                                       until_ms=hi, key_posts=3)
            share = rt.stories.unassigned_share()
        return {"stories": [v.to_dict() for v in views], "no_story_share": round(share, 4),
                "lag_posts": rt.lags()["stories"],
                "timings_ms": {"total": round((time.perf_counter() - t0) * 1000, 2)}}

    def _story(story_id: str):
        try:
            sid = int(story_id)
        except ValueError:
            raise ApiError(400, "invalid_id", f"story id {story_id[:40]!r} is not a number",
                           param="story_id") from None
        with rt.stories_lock:
            v = rt.stories.story(sid) if 0 <= sid < 2**63 else None
        if v is None:
            raise ApiError(404, "not_found", f"no story {sid} (see GET /v1/stories)")
        return v

    @app.get("/v1/stories/{story_id}", tags=["what's happening"], responses=ERRORS)
    def story(story_id: str, _k=require("read")) -> dict:
        """One story: headline, key posts, terms, languages, timeline and every member post."""
        return _story(story_id).to_dict(with_posts=True)

    @app.post("/v1/summarize", tags=["what's happening"], responses=ERRORS)
    def summarize(req: SummarizeRequest, _k=require("read")) -> dict:
        """A headline and sentences about a story or a query; every sentence cites posts and was
        checked against them before it is shown."""
        from townsquare.llm import BackendError
        from townsquare.search.query import QueryError
        if (req.query is None) == (req.story_id is None):
            raise ApiError(400, "invalid_parameter", "give 'query' or 'story_id' (one of them)")
        try:                     # a backend this server cannot build is the request's problem
            rt.backend(req.backend)
        except BackendError as e:
            raise ApiError(400, "backend_not_configured", f"backend {req.backend!r} is not "
                           f"available on this server: {e}", param="backend") from None
        try:
            if req.story_id is not None:
                v = _story(req.story_id)
                return rt.summarize(post_ids=v.post_ids, backend=req.backend,
                                    cache_key=(v.id, v.size, req.backend))
            return rt.summarize(query=req.query, backend=req.backend)
        except QueryError as e:
            raise ApiError(400, "invalid_query", str(e), param="query") from None
        except BackendError as e:
            raise ApiError(503, "backend_unavailable", f"generation failed: {e}") from None

    @app.get("/v1/stats", tags=["service"], responses=ERRORS)
    def stats(_k=require("read")) -> dict:
        """The store's counts (sources, languages, days, quarantine), index lags, writer."""
        s = rt.reader().stats()
        s["indexes"] = {"lag_posts": rt.lags(), "lexical_refresh": rt.refresh_stats(),
                        "errors": rt.index_errors,
                        "last_error": rt.last_index_error}
        s["writer"] = {"transactions": rt.writer.transactions}
        s["server_mode"] = {"store": "postgresql" if rt.url else "embedded",
                            "background_leader": rt.leader}
        with rt.stories_lock:
            s["stories"] = {"count": len(rt.stories.clusterer.stories()),
                            "no_story_share": round(rt.stories.unassigned_share(), 4)}
        return s

    from townsquare.api.ads import router as ads_router
    from townsquare.api.chat import router as chat_router
    app.include_router(chat_router(require))
    app.include_router(ads_router(require))

    # --- the web page ------------------------------------------------------------------------------
    try:
        from townsquare.web import STATIC_DIR
    except ImportError:                     # pragma: no cover - the package ships it
        STATIC_DIR = None
    if STATIC_DIR is not None and STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        def index():
            return FileResponse(STATIC_DIR / "index.html")
    return app


def _raw(obj: Any) -> str:
    import orjson
    try:
        return orjson.dumps(obj).decode()[:2000]
    except TypeError:
        return repr(obj)[:2000]

"""The service's own routes: liveness, what the web page needs before it has a key, the store's
statistics, and the web page itself (``townsquare.web``).

    GET /health      no key: status, version, posts, uptime
    GET /v1/info     no key: whether keys are required, the chat models
    GET /v1/stats    read: counts, index lags, writer, server mode, stories, followed streams
    GET /            the web page (``/static/...`` its files)
"""
from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from townsquare import __version__
from townsquare.api.chat import MODELS
from townsquare.api.deps import RuntimeDep, require
from townsquare.api.errors import ERRORS
from townsquare.follow.stats import read_stats, state_folder
from townsquare.services.freshness import arm_lags
from townsquare.web import STATIC_DIR

router = APIRouter(tags=["service"])


@router.get("/health")
def health(rt: RuntimeDep) -> dict:
    """Liveness and the store's size; no key needed."""
    return {"status": "ok", "version": __version__, "posts": rt.services.reader().count(),
            "uptime_s": round(time.time() - rt.started_at, 1)}


@router.get("/v1/info")
def info(request: Request) -> dict:
    """What the web page needs before it has a key: whether keys are required."""
    return {"auth": request.app.state.access.auth, "version": __version__,
            "models": list(MODELS)}


@router.get("/v1/stats", responses=ERRORS)
def stats(rt: RuntimeDep, _k=require("read")) -> dict:
    """The store's counts (sources, languages, days, quarantine), index lags, writer."""
    reader = rt.services.reader()
    # As ``Store.stats``, the counts from a copy of bounded age (``api.statscache``: they scan
    # every post), said in ``counts``; the post count and the lags read now.
    counts, about = rt.counts.get(reader)
    e5 = reader.embedding_lag()            # one count of the posts behind e5, used thrice
    s = {"posts": reader.count(), **counts, "counts": about,
         "late_stage": reader.late_stage_lag(), "embeddings": e5}
    # Each search arm's lag: lexical, the fast tier (when one runs), e5; posts and seconds.
    s["freshness"] = arm_lags(reader, lexical=rt.indexer.lexical, tiers=rt.indexer.tiers,
                              e5_lag=e5)
    s["indexes"] = {"lag_posts": rt.lags(embedding_pending=e5["pending_posts"]),
                    "lexical_refresh": rt.indexer.refresh_stats(),
                    "errors": rt.errors.count, "last_error": rt.errors.last}
    s["writer"] = {"transactions": rt.writer.transactions}
    s["server_mode"] = {"store": "postgresql" if rt.server_mode else "embedded",
                        "background_leader": rt.background.leader}
    s["stories"] = rt.background.story_counts()
    # Every followed stream's health: this server's (`serve --follow`) and any `townsquare
    # follow` process's on the same home, as each last published it.
    s["follow"] = read_stats(state_folder(rt.settings.home), time.time())
    return s


def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")


def add_web_page(app: FastAPI) -> None:
    """Serve the web page at ``/`` and its files at ``/static`` (outside the API document)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route("/", index, include_in_schema=False)

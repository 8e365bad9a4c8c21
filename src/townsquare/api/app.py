"""The HTTP API (FastAPI): ingest, delete, search, trends, stories, summaries, stats, health,
the OpenAI-compatible chat (``api.chat``), ads (``api.ads``) and the web page (``townsquare.web``).

    townsquare serve --port 8000                      # keys required (townsquare keys create ...)
    townsquare serve --no-auth                        # a local demo: no keys, and the log says so
    curl -H "Authorization: Bearer $KEY" 'localhost:8000/v1/search?q=flood+lang:en'

    >>> import tempfile
    >>> from fastapi.testclient import TestClient
    >>> from townsquare.api.runtime import Runtime
    >>> from townsquare.settings import LLMSettings, Settings
    >>> rt = Runtime(Settings(home=tempfile.mkdtemp(), llm=LLMSettings(backend="extractive")))
    >>> with TestClient(create_app(rt, keys=None, auth=False)) as c:
    ...     c.get("/health").json()["status"]
    'ok'
    >>> rt.close()

The routes live in routers, one module per area (``routes_service``, ``routes_posts``,
``routes_search``, ``routes_happening``, ``chat``, ``ads``, ``privacy``); what they depend on
(the runtime, a key with a scope) in ``api.deps``; errors in ``api.errors``: always JSON, with a
4xx status that says whose fault it is; bounds on request bodies (size per route, JSON depth) in
``api.limits``. Ids are strings (they exceed JavaScript's 2^53). Every endpoint that does work
reports ``timings_ms``.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from townsquare import __version__
from townsquare.api import (ads, chat, privacy, routes_happening, routes_posts, routes_search,
                            routes_service)
from townsquare.api.auth import KeyStore
from townsquare.api.deps import Access
from townsquare.api.errors import install_error_handlers
from townsquare.api.limits import BodyLimit
from townsquare.api.runtime import Runtime


def create_app(runtime: Runtime, *, keys: KeyStore | None, auth: bool = True) -> FastAPI:
    """The app over ``runtime``. ``auth=False`` (a local demo) needs no key; otherwise ``keys``
    holds them."""
    access = Access(keys, auth, runtime.services.rate_limiter())
    app = FastAPI(title="townsquare", version=__version__,
                  description="What is happening in a social network's public posts: search, "
                              "trends, stories, cited summaries, and a grounded chat.")
    app.state.runtime = runtime
    app.state.access = access

    @app.middleware("http")
    async def _touch(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                     ) -> Response:
        runtime.touch()                 # background work yields to requests (api.background)
        return await call_next(request)

    # Outermost: a body over its route's limit is refused before anything reads it.
    app.add_middleware(BodyLimit, api=app)
    install_error_handlers(app)
    for module in (routes_service, routes_posts, routes_search, routes_happening, chat, ads,
                   privacy):
        app.include_router(module.router)
    routes_service.add_web_page(app)
    return app

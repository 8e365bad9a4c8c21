"""The app of one worker process, for ``townsquare serve --workers N`` (uvicorn's factory mode).

    townsquare --store postgresql://db/townsquare serve --workers 4

uvicorn starts N processes on one port; each calls ``build()``, which reads the settings that
``townsquare serve`` left for its workers (``Settings.for_worker``: the settings, and this
command's own options ``embed``, ``background_share`` and ``auth``) and makes its own ``Runtime``
over the shared PostgreSQL store (``api.runtime`` explains what the workers share and how).

    >>> build(environ={})
    Traceback (most recent call last):
    ...
    RuntimeError: $TOWNSQUARE_SERVE is not set: start workers with `townsquare serve --workers N`
"""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from fastapi import FastAPI

from townsquare.api.app import create_app
from townsquare.api.auth import KEYS_FILE, KeyStore
from townsquare.api.runtime import Runtime
from townsquare.settings import Settings


def build(environ: Mapping[str, str] | None = None) -> FastAPI:
    """A FastAPI app with its own runtime; the runtime closes when the worker shuts down.
    ``environ``: where to find the workers' settings (default: this process's environment)."""
    settings, extra = Settings.for_worker(environ)
    rt = Runtime(settings, embed=extra.get("embed"),
                 background_share=extra.get("background_share", 0.15))
    auth = bool(extra.get("auth", True))
    app = create_app(rt, keys=KeyStore(settings.home / KEYS_FILE) if auth else None, auth=auth)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[object]:
        # the app's own lifespan, then the runtime's shutdown
        try:
            async with inner(a) as state:
                yield state
        finally:
            rt.close()

    app.router.lifespan_context = lifespan
    return app

"""The app of one worker process, for ``townsquare serve --workers N`` (uvicorn's factory mode).

    TOWNSQUARE_STORE=postgresql://db/townsquare townsquare serve --workers 4

uvicorn starts N processes on one port; each calls ``build()``, which reads the settings that
``townsquare serve`` left in ``$TOWNSQUARE_SERVE`` (JSON) and makes its own ``Runtime`` over the
shared PostgreSQL store (``api.runtime`` explains what the workers share and how).

    >>> import os
    >>> os.environ.pop("TOWNSQUARE_SERVE", None) and None
    >>> build()
    Traceback (most recent call last):
    ...
    RuntimeError: $TOWNSQUARE_SERVE is not set: start workers with `townsquare serve --workers N`
"""
from __future__ import annotations

import contextlib
import os

import orjson

from townsquare.store import resolve_home


def build():
    """A FastAPI app with its own runtime; the runtime closes when the worker shuts down."""
    raw = os.environ.get("TOWNSQUARE_SERVE")
    if not raw:
        raise RuntimeError("$TOWNSQUARE_SERVE is not set: start workers with "
                           "`townsquare serve --workers N`")
    cfg = orjson.loads(raw)
    from townsquare.api.app import create_app
    from townsquare.api.auth import KeyStore
    from townsquare.api.runtime import Runtime
    from townsquare.cli_serve import KEYS_FILE
    home = resolve_home(cfg["home"])
    rt = Runtime(home, backend=cfg.get("backend"), backend_options=cfg.get("backend_options"),
                 embed=cfg.get("embed"), background_share=cfg.get("background_share", 0.15))
    auth = bool(cfg.get("auth", True))
    app = create_app(rt, keys=KeyStore(home / KEYS_FILE) if auth else None, auth=auth)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a):            # the app's own lifespan, then the runtime's shutdown
        try:
            async with inner(a) as state:
                yield state
        finally:
            rt.close()

    app.router.lifespan_context = lifespan
    return app

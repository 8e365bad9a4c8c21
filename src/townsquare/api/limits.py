"""Bounds on what a request may send: its body's size, checked before the body is read, and its
JSON's nesting depth, checked before the JSON is parsed.

Size: ``BodyLimit`` (ASGI middleware, outermost) answers 413 with the JSON error body as soon as a
body is known to pass its route's limit: at once when ``Content-Length`` says so (nothing is
read), else at the chunk that passes it. A route declares its limit with
``openapi_extra=body_limit(n)``: ``x-max-body-bytes`` in the OpenAPI document, which the
middleware reads. Others get ``DEFAULT_BODY_BYTES``.

    @router.post("/v1/summarize", openapi_extra=body_limit(SMALL_BODY_BYTES))

Depth: a body nested past ``MAX_JSON_DEPTH`` is a 400 before any parser sees it. The stdlib's
parser raises ``RecursionError`` near depth 1,000 and orjson refuses past 1,024, but a structure
a few hundred deep still breaks what walks it afterwards (``repr``, validation). ``BoundedRoute``
(a router's ``route_class``) makes ``request.json()`` check the depth and parse with orjson, for
the bodies FastAPI parses into models and for the routes that call it themselves.

    >>> json_depth(b'{"a": [1, {"b": "[[[not counted]]]"}], "c": []}')
    3
    >>> loads(b"[" * 65 + b"]" * 65)
    Traceback (most recent call last):
    ...
    townsquare.api.limits.BodyRejected: 400: the JSON body nests 65 levels deep; at most 64
"""
from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from townsquare.api.errors import error_body

MiB = 2**20
DEFAULT_BODY_BYTES = 64 * 2**10     # a route that declares nothing: its JSON is a few fields
SMALL_BODY_BYTES = 1 * MiB          # chat, summarize, campaigns: text a person wrote
MAX_JSON_DEPTH = 64                 # a tweet page nests ~7 deep
LIMIT_KEY = "x-max-body-bytes"


class BodyRejected(StarletteHTTPException):
    """A body refused before it is read or parsed; ``code`` names why for the JSON error.
    An ``HTTPException``: FastAPI lets those out of its own body parsing (any other exception
    there becomes a bare 400)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, message)
        self.code = code


def body_limit(n: int, **extra: Any) -> dict[str, Any]:
    """A route's ``openapi_extra`` declaring its body limit of ``n`` bytes (with ``extra``)."""
    return {LIMIT_KEY: n, **extra}


# --- size -----------------------------------------------------------------------------------------
class BodyLimit:
    """Refuse a request body over its route's limit before reading it (``Content-Length``), or as
    soon as its chunks pass the limit (a chunked body). The limits are read from ``api``'s OpenAPI
    document (``x-max-body-bytes``), once, when a body first passes the default: what the
    document states is what is enforced."""

    def __init__(self, app: ASGIApp, *, api: FastAPI, default: int = DEFAULT_BODY_BYTES):
        self.app, self.api, self.default = app, api, default
        self._limits: list[tuple[str, re.Pattern[str], int]] | None = None

    def limit_for(self, scope: Scope) -> int:
        """The declared limit of the operation ``scope`` goes to (the default if none)."""
        if self._limits is None:
            self._limits = [(method.upper(), _template(path), op[LIMIT_KEY])
                            for path, ops in self.api.openapi().get("paths", {}).items()
                            for method, op in ops.items()
                            if isinstance(op, dict) and LIMIT_KEY in op]
        for method, path, limit in self._limits:
            if method == scope["method"] and path.fullmatch(scope["path"]):
                return int(limit)
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        # The route is looked up only for a body past the default: most requests have none.
        limit = self.limit_for(scope) if length is not None and length > self.default else None
        if length is not None and limit is not None and length > limit:
            # Nothing of the body is read: the server discards it as it arrives and keeps the
            # connection (closing now would reset a client still sending, before it reads this).
            await _too_large(scope, receive, send, f"the body is {length:,} bytes", limit)
            return
        seen, answered, started = 0, False, False

        async def counted() -> Message:
            nonlocal seen, limit, answered
            message = await receive()
            if message["type"] == "http.request" and not answered:
                seen += len(message.get("body", b""))
                if seen > self.default:
                    limit = limit if limit is not None else self.limit_for(scope)
                    if seen > limit:
                        # Answer here, then tell the app the client left: it stops reading,
                        # and whatever it answers is dropped. (An exception raised here would
                        # reach the route wrapped in middleware task groups, as a 400 or 500.)
                        answered = True
                        if not started:
                            await _too_large(scope, receive, send,
                                             f"the body passed {limit:,} bytes", limit)
            return {"type": "http.disconnect"} if answered else message

        async def tracked(message: Message) -> None:
            nonlocal started
            if answered and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            # After the 413, a route that reads the body itself fails on the disconnect it was
            # told of (Starlette's ClientDisconnect): expected, and the client has its answer.
            # Let out, it would be logged as a bug and uvicorn would close the connection.
            if not answered:
                raise


def _message(scope: Scope, what: str, limit: int) -> str:
    return (f"{what}; at most {limit:,} for {scope['method']} {scope['path']} "
            f"(split the request, or send less)")


async def _too_large(scope: Scope, receive: Receive, send: Send, what: str, limit: int) -> None:
    body = error_body(413, "body_too_large", _message(scope, what, limit))
    await JSONResponse(body, 413)(scope, receive, send)


def _template(path: str) -> re.Pattern[str]:
    """A pattern for an OpenAPI path: ``/v1/ads/campaigns/{campaign_id}``."""
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:        # the server refuses it before us; count the bytes then
                return None
    return None


# --- depth ----------------------------------------------------------------------------------------
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)        # a JSON string, escapes and all
_NOT_BRACKET = bytes(range(256)).translate(None, b"[]{}")
_STEP = bytes(1 if c in b"[{" else 255 if c in b"]}" else 0 for c in range(256))   # 255: -1


def json_depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings do not
    count). Linear and in C, 32 MB in ~0.2 s, and without parsing: any depth is safe to measure."""
    steps = _STRING.sub(b"", body).translate(_STEP, _NOT_BRACKET)
    return int(np.frombuffer(steps, dtype=np.int8).cumsum(dtype=np.int64).max(initial=0))


def check_depth(body: bytes) -> None:
    """Raise ``BodyRejected`` (400) for a body nested deeper than ``MAX_JSON_DEPTH``."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:     # too few to nest that deep
        return
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise BodyRejected(400, "json_too_deep", f"the JSON body nests {depth:,} levels deep; "
                                                 f"at most {MAX_JSON_DEPTH}")


def loads(body: bytes) -> Any:
    """A JSON body, its depth checked first; ``BodyRejected`` (400) if too deep or not JSON."""
    check_depth(body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BodyRejected(400, "invalid_json", f"the body is not valid JSON: {e}") from None


class BoundedRequest(Request):
    """A request whose ``json()`` is ``loads``: depth-checked, parsed by orjson."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class BoundedRoute(APIRoute):
    """A route whose handler sees a ``BoundedRequest`` (FastAPI's documented way to change how
    bodies are read: a router's ``route_class``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            return await handler(BoundedRequest(request.scope, request.receive))

        return bounded

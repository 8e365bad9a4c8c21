"""What routes depend on: the runtime, and an API key allowed to act with a scope.

    @router.get("/v1/search")
    def search(q: str, rt: RuntimeDep, _k=require("read")) -> dict: ...

``create_app`` leaves the ``Runtime`` and the ``Access`` (keys, whether they are required, rate
limits) in ``app.state``; the dependencies read them from there, so routers are plain module-level
``APIRouter``s that never import the app.

A request without a valid key gets 401, a key without the scope 403, one over its rate limit 429
with ``Retry-After`` (``api.auth`` explains keys, scopes and limits).
"""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, params

from townsquare.api.auth import ApiKey, KeyStore, RateLimit
from townsquare.api.errors import ApiError
from townsquare.api.runtime import Runtime


class Access:
    """Who may do what: ``auth=False`` (a local demo) lets every request through; otherwise
    ``keys`` holds the keys and ``limiter`` their rate limits."""

    def __init__(self, keys: KeyStore | None, auth: bool, limiter: RateLimit):
        if auth and keys is None:
            raise ValueError("auth is on: give a KeyStore (or auth=False for a local demo)")
        self.keys, self.auth, self.limiter = keys, auth, limiter

    def check(self, request: Request, scope: str) -> ApiKey | None:
        """The request's key if it may act with ``scope`` (None when auth is off); raises
        401, 403 or 429 otherwise."""
        if not self.auth or self.keys is None:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "missing_api_key", "send an API key: 'Authorization: Bearer "
                           "KEY' (create one with `townsquare keys create --scope ...`)",
                           headers={"WWW-Authenticate": "Bearer"})
        key = self.keys.verify(secret.strip())
        if key is None:
            raise ApiError(401, "invalid_api_key", "this API key is unknown or revoked",
                           headers={"WWW-Authenticate": "Bearer"})
        if not key.allows(scope):
            raise ApiError(403, "insufficient_scope", f"this key lacks the '{scope}' scope "
                           f"(it has: {', '.join(key.scopes)})")
        wait = self.limiter.take(key)
        if wait:
            raise ApiError(429, "rate_limited", f"rate limit of {key.rate_per_minute} "
                           f"requests per minute reached; retry in {wait} s",
                           headers={"Retry-After": str(wait)})
        return key


def check_key(request: Request, scope: str) -> ApiKey | None:
    """``Access.check`` with the app's access rules (for a route that accepts several scopes)."""
    access: Access = request.app.state.access
    return access.check(request, scope)


def require(scope: str) -> params.Depends:
    """A dependency giving the request's key, checked for ``scope`` (None when auth is off)."""
    def dep(request: Request) -> ApiKey | None:
        return check_key(request, scope)
    return Depends(dep)


async def _runtime(request: Request) -> Runtime:
    # async: a plain read of app.state needs no trip to the thread pool
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]

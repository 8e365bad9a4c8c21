"""Every error the API answers is JSON, ``{"error": {"code", "message", "type", "param"}}`` (the
OpenAI SDK reads the same shape), with a 4xx status that says whose fault it is; a 5xx means a
bug here.

    >>> error_body(429, "rate_limited", "retry in 3 s")["error"]
    {'code': 'rate_limited', 'message': 'retry in 3 s', 'type': 'rate_limit_error', 'param': None}
    >>> e = from_input(InputError("expected a duration like 30m, 1h or 2d, got 'x'", "window"))
    >>> (e.status, e.code, e.param, e.message)
    (400, 'invalid_parameter', 'window', "window: expected a duration like 30m, 1h or 2d, got 'x'")

Routes raise ``ApiError``; ``install_error_handlers`` turns it, FastAPI's validation errors,
Starlette's 404/405 and any unexpected exception into that body.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from townsquare.services import InputError

log = logging.getLogger("townsquare.api")


class ApiError(Exception):
    """An error for the client: HTTP ``status``, a stable ``code``, a message saying what to fix."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param
        self.headers = headers or {}


def from_input(e: InputError, code: str = "invalid_parameter") -> ApiError:
    """A service's ``InputError`` as a 400 about the parameter it names."""
    return ApiError(400, code, f"{e.field}: {e}", param=e.field)


_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 413: "invalid_request_error", 422: "invalid_request_error",
          429: "rate_limit_error"}


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict:
    return {"error": {"code": code, "message": message,
                      "type": _TYPES.get(status, "server_error" if status >= 500 else
                                         "invalid_request_error"), "param": param}}


# --- for the OpenAPI document: what each route may answer besides its result --------------------
class ErrorDetail(BaseModel):
    code: str
    message: str
    type: str
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERRORS = {s: {"model": ErrorResponse} for s in (400, 401, 403, 404, 413, 422, 429)}


# --- handlers: always JSON, never an HTML page or a bare 500 -------------------------------------
async def _api_error(_req: Request, e: ApiError) -> JSONResponse:
    return JSONResponse(error_body(e.status, e.code, e.message, e.param), e.status,
                        headers=e.headers)


async def _invalid(_req: Request, e: RequestValidationError) -> JSONResponse:
    first = e.errors()[0] if e.errors() else {}
    where = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or None
    msg = f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid")
    return JSONResponse(error_body(400, "invalid_parameter", msg, where), 400)


async def _http(_req: Request, e: StarletteHTTPException) -> JSONResponse:
    # ``api.limits.BodyRejected`` carries its own code (an HTTPException, so that FastAPI lets
    # it out of its body parsing)
    code = getattr(e, "code", None) or {404: "not_found", 405: "method_not_allowed"}.get(
        e.status_code, "http_error")
    return JSONResponse(error_body(e.status_code, code, str(e.detail)), e.status_code,
                        headers=getattr(e, "headers", None))


async def _bug(_req: Request, e: Exception) -> JSONResponse:      # a bug: log it, answer in JSON
    log.exception("unhandled error")
    return JSONResponse(error_body(500, "internal_error",
                                   f"internal error ({type(e).__name__}); see the server log"), 500)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in the JSON shape above."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _bug)

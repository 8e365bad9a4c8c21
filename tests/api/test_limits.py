"""Bounds on request bodies (``api.limits``) and 4xx for every bad body or parameter: a body over
its route's size limit is a 413 before it is read, JSON nested too deep a 400 before it is parsed,
a forged cursor a 400 about ``cursor``, trends windows bounded, and another advertiser's campaign
id a 404. In process through the ASGI app first; then (``slow``) against the real server over a
raw socket, for what only a socket shows: a ``Content-Length`` that lies, a chunked body refused
while it streams, and the keep-alive connection surviving each refusal."""
from __future__ import annotations

import asyncio
import base64
import json
import select
import time

import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from tests.api.conftest import runtime_settings, start_server, stop_server, tweets
from tests.api.rawhttp import Conn
from tests.api.test_ads_api import campaign
from townsquare.api.app import create_app
from townsquare.api.auth import KEYS_FILE, KeyStore
from townsquare.api.limits import (
    DEFAULT_BODY_BYTES,
    LIMIT_KEY,
    MAX_JSON_DEPTH,
    SMALL_BODY_BYTES,
    BodyLimit,
    body_limit,
    json_depth,
)
from townsquare.api.runtime import Runtime

MiB = 2**20
INGEST_BYTES = 32 * MiB
JSON = {"Content-Type": "application/json"}
# The routes that take a JSON body, and their limits as the issue asks for them.
BODY_ROUTES = {"/v1/posts": INGEST_BYTES, "/v1/chat/completions": MiB, "/v1/summarize": MiB,
               "/v1/ads/campaigns": MiB}


def err(r) -> dict:
    assert r.headers["content-type"].startswith("application/json"), r.text
    return r.json()["error"]


def nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


def deep_object(depth: int) -> bytes:
    """``{"a": {"a": ... {} ...}}``: ``depth`` objects, one inside the other."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


# --- in process ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The app ``townsquare serve`` builds, over a home with the invented posts, with keys."""
    home = tmp_path_factory.mktemp("limits") / "home"
    rt = Runtime(runtime_settings(home), start=False)
    keys = KeyStore(home / KEYS_FILE)
    secrets = {"admin": keys.create(["admin"], rate_per_minute=100_000),
               "acme": keys.create(["advertiser"], subject="acme"),
               "rival": keys.create(["advertiser"], subject="rival")}
    app = create_app(rt, keys=keys)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {secrets['admin']}"
        r = c.post("/v1/posts", json=tweets())
        assert r.status_code == 200 and r.json()["counts"]["inserted"] == len(tweets()), r.text
        rt.indexer.refresh()           # the tantivy index (a server's indexer thread does this)
        yield app, c, secrets
    rt.close()
    keys.close()


@pytest.fixture(scope="module")
def client(api) -> TestClient:
    return api[1]


def test_every_route_declares_its_limit_in_the_openapi_document(client):
    doc = client.get("/openapi.json").json()
    declared = {path: op[LIMIT_KEY] for path, ops in doc["paths"].items()
                for method, op in ops.items() if LIMIT_KEY in op}
    assert declared == BODY_ROUTES
    assert (DEFAULT_BODY_BYTES, SMALL_BODY_BYTES) == (64 * 2**10, MiB)
    for path in BODY_ROUTES:       # and says so to a person reading the docs
        assert "(413 beyond)" in " ".join(doc["paths"][path]["post"]["description"].split())


@pytest.mark.parametrize("path, limit", [*BODY_ROUTES.items(),
                                         ("/v1/ads/serve", DEFAULT_BODY_BYTES),
                                         ("/v1/ads/creatives/1/approve", DEFAULT_BODY_BYTES)])
def test_a_body_over_its_routes_limit_is_413_with_the_json_error(client, path, limit):
    r = client.post(path, content=b" " * (limit + 1), headers=JSON)
    assert r.status_code == 413, r.text
    e = err(r)
    assert e["code"] == "body_too_large" and e["type"] == "invalid_request_error"
    assert f"{limit:,}" in e["message"] and path in e["message"]
    r = client.post(path, content=b" " * limit, headers=JSON)       # the limit itself is allowed
    assert r.status_code != 413 and r.status_code < 500, r.text


def test_the_middleware_enforces_what_the_document_declares():
    app = FastAPI()

    @app.post("/items/{item}", openapi_extra=body_limit(30))
    async def big(item: str, request: Request) -> dict:
        return {"n": len(await request.body())}

    @app.post("/other")
    async def other(request: Request) -> dict:
        return {"n": len(await request.body())}

    app.add_middleware(BodyLimit, api=app, default=10)
    assert app.openapi()["paths"]["/items/{item}"]["post"][LIMIT_KEY] == 30
    with TestClient(app) as c:
        assert c.post("/items/a", content=b"x" * 30).json() == {"n": 30}
        assert c.post("/items/a", content=b"x" * 31).status_code == 413
        assert c.post("/other", content=b"x" * 10).json() == {"n": 10}
        assert c.post("/other", content=b"x" * 11).status_code == 413
        assert c.post("/items/a/b", content=b"x" * 11).status_code == 413


class Recorder:
    """An ASGI client side: offers ``chunks`` of a body one ``receive`` at a time, counting them,
    and keeps what the app sends."""

    def __init__(self, chunks: list[bytes]):
        self.chunks, self.taken, self.sent = chunks, 0, []

    async def receive(self) -> dict:
        if self.taken == len(self.chunks):
            await asyncio.sleep(3600)          # a client still sending: never more than offered
        self.taken += 1
        return {"type": "http.request", "body": self.chunks[self.taken - 1],
                "more_body": self.taken < len(self.chunks)}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        starts = [m["status"] for m in self.sent if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.sent
        return starts[0]

    @property
    def error(self) -> dict:
        return orjson.loads(b"".join(m.get("body", b"") for m in self.sent
                                     if m["type"] == "http.response.body"))["error"]


def _call(app, path: str, rec: Recorder, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": [(b"host", b"test"), *headers],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    asyncio.run(asyncio.wait_for(app(scope, rec.receive, rec.send), 60))


def test_a_content_length_over_the_limit_is_refused_without_reading_the_body(api):
    app, _, secrets = api
    for path, limit in BODY_ROUTES.items():
        rec = Recorder([b" " * MiB] * 40)
        _call(app, path, rec, [(b"content-length", str(limit + 1).encode()),
                               (b"authorization", f"Bearer {secrets['admin']}".encode())])
        assert rec.status == 413 and rec.error["code"] == "body_too_large", path
        assert rec.taken == 0, path                     # not one byte of the body was read


@pytest.mark.parametrize("path, chunk", [("/v1/posts", MiB), ("/v1/chat/completions", 2**16)])
def test_a_chunked_body_is_refused_at_the_chunk_that_passes_the_limit(api, path, chunk):
    app, _, secrets = api
    limit = BODY_ROUTES[path]
    rec = Recorder([b" " * chunk] * (limit // chunk + 8))
    _call(app, path, rec, [(b"transfer-encoding", b"chunked"),
                           (b"authorization", f"Bearer {secrets['admin']}".encode())])
    assert rec.status == 413 and rec.error["code"] == "body_too_large"
    assert rec.taken == limit // chunk + 1       # the first chunk past the limit, none after it


@pytest.mark.parametrize("path", list(BODY_ROUTES))
@pytest.mark.parametrize("body", [nested(MAX_JSON_DEPTH + 1), deep_object(MAX_JSON_DEPTH + 1),
                                  nested(100_000), nested(100_000, b"{", b"}")],
                         ids=["65-arrays", "65-objects", "100000-arrays", "100000-braces"])
def test_json_nested_too_deep_is_400_before_parsing(client, path, body):
    r = client.post(path, content=body, headers=JSON)
    assert r.status_code == 400, r.text
    e = err(r)
    assert e["code"] == "json_too_deep" and f"at most {MAX_JSON_DEPTH}" in e["message"]


@pytest.mark.parametrize("path", list(BODY_ROUTES))
def test_json_nested_to_the_limit_is_judged_on_its_content(client, path):
    r = client.post(path, content=deep_object(MAX_JSON_DEPTH), headers=JSON)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:                     # a bad body for other reasons, never a 500
        assert err(r)["code"] != "json_too_deep"


def test_brackets_inside_strings_do_not_count_as_nesting(client):
    text = '"[[[{{{\\"]]]' * 100
    assert json_depth(orjson.dumps({"q": text})) == 1
    assert json_depth(b'["\\\\", ["\\"["]]') == 2            # escaped quote and backslash
    r = client.post("/v1/summarize", json={"query": "quarry", "backend": "extractive",
                                           "extra": text})
    assert r.status_code == 400 and err(r)["param"] == "extra"     # refused by the model, not depth


@pytest.mark.parametrize("path", list(BODY_ROUTES))
@pytest.mark.parametrize("body", [b"not json", b'{"a": ', b"\xff\xfe", b"[1, 2"])
def test_a_body_that_is_not_json_is_invalid_json_on_every_route(client, path, body):
    r = client.post(path, content=body, headers=JSON)
    assert r.status_code == 400, r.text
    assert err(r)["code"] == "invalid_json"
    r = client.post(path, content=b"", headers=JSON)           # no body at all: a 400 too
    assert r.status_code == 400 and err(r)["message"], r.text


def _real_cursor(client, mode: str) -> tuple[str, dict]:
    r = client.get("/v1/search", params={"q": "quarry", "limit": 1, "mode": mode})
    assert r.status_code == 200 and r.json()["next_cursor"], r.text
    c = r.json()["next_cursor"]
    return c, orjson.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))


def _encode(d) -> str:
    # the stdlib's dumps: orjson refuses integers past 64 bits, which a forger may well send
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


@pytest.mark.parametrize("mode", ["top", "latest"])
def test_a_forged_cursor_is_400_about_the_cursor(client, mode):
    good, state = _real_cursor(client, mode)
    assert client.get("/v1/search", params={"q": "quarry", "mode": mode,
                                            "cursor": good}).status_code == 200
    forged = [{k: v for k, v in state.items() if k != "s"}, {**state, "s": "9"},
              {**state, "n": None}, {**state, "s": 2**70}, {**state, "s": -1},
              {**state, "o": "x"}, {**state, "b": "12"}, {**state, "b": [1]},
              {**state, "b": ["a", 1]}, {**state, "b": [2**64, 1]}, {**state, "extra": 1},
              {**state, "v": True}, {**state, "n": 1.5}, [state], "cursor", None]
    for d in forged:
        r = client.get("/v1/search", params={"q": "quarry", "mode": mode, "cursor": _encode(d)})
        assert r.status_code == 400, (d, r.text)
        e = err(r)
        assert e["param"] == "cursor" and e["code"] == "invalid_parameter", d


@pytest.mark.parametrize("params, field", [
    ({"window": "31d"}, "window"),
    ({"window": "99999d"}, "window"),
    ({"window": "1d", "baseline": 62}, "baseline"),         # 63 days read for one request
    ({"window": "30d", "baseline": 2}, "baseline"),
])
def test_trends_windows_are_bounded(client, params, field):
    r = client.get("/v1/trends", params=params)
    assert r.status_code == 400, r.text
    e = err(r)
    assert e["param"] == field and e["code"] == "invalid_parameter"
    ok = {"window": "1d", "baseline": 61} if field == "baseline" else {"window": "30d",
                                                                       "baseline": 1}
    assert client.get("/v1/trends", params=ok).status_code == 200


def test_another_advertisers_campaign_id_is_the_same_404_as_reading_it(api):
    _, c, secrets = api
    acme = {"Authorization": f"Bearer {secrets['acme']}"}
    rival = {"Authorization": f"Bearer {secrets['rival']}"}
    r = c.post("/v1/ads/campaigns", json=campaign("acme-limits"), headers=acme)
    assert r.status_code == 200, r.text
    taken = c.post("/v1/ads/campaigns", json=campaign("acme-limits"), headers=rival)
    read = c.get("/v1/ads/campaigns/acme-limits", headers=rival)
    absent = c.get("/v1/ads/campaigns/nobody-has-this", headers=rival)
    assert taken.status_code == read.status_code == absent.status_code == 404, taken.text
    assert taken.json() == read.json()                   # nothing tells the two apart
    assert err(absent)["code"] == err(taken)["code"] == "not_found"
    assert c.get("/v1/ads/campaigns/acme-limits", headers=acme).json()["campaign"][
        "advertiser"] == "acme"                           # and acme's campaign is untouched
    # an admin sees every campaign: for it, a clash of advertisers stays a 400 naming the field
    r = c.post("/v1/ads/campaigns", json=campaign("acme-limits", advertiser="rival"))
    assert r.status_code == 400 and err(r)["code"] == "invalid_campaign", r.text


# --- the real server, over a raw socket -----------------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """``townsquare serve`` (no keys) over a home with the invented posts; its log."""
    home = tmp_path_factory.mktemp("limits-live") / "home"
    home.mkdir()
    proc, url, log = start_server(home, "--no-auth", "--backend", "extractive")
    try:
        with Conn.to(url) as c:
            status, _, body = c.request("POST", "/v1/posts", orjson.dumps(tweets()), headers=JSON)
            assert status == 200, body
        yield url, log
    finally:
        stop_server(proc)


def _answered_within(c: Conn, seconds: float) -> bool:
    return bool(c.buf) or bool(select.select([c.sock], [], [], seconds)[0])


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/v1/posts", "/v1/chat/completions"])
def test_a_lying_content_length_is_answered_at_once(live, path):
    url, _ = live
    with Conn.to(url, timeout=10) as c:
        t0 = time.monotonic()
        c.send("POST", path, headers={**JSON, "Content-Length": str(BODY_ROUTES[path] * 3)})
        status, _, body = c.response()       # no byte of the announced body was ever sent
        assert status == 413 and orjson.loads(body)["error"]["code"] == "body_too_large"
        assert time.monotonic() - t0 < 5


@pytest.mark.slow
@pytest.mark.parametrize("path, chunk", [("/v1/chat/completions", 2**16), ("/v1/posts", MiB)])
def test_a_chunked_body_is_refused_as_it_streams_and_the_connection_lives(live, path, chunk):
    url, _ = live
    limit = BODY_ROUTES[path]
    with Conn.to(url) as c:
        c.send("POST", path, headers={**JSON, "Transfer-Encoding": "chunked"})
        for _ in range(limit // chunk):                  # exactly the limit: no answer yet
            c.sock.sendall(b"%x\r\n%b\r\n" % (chunk, b" " * chunk))
        assert not _answered_within(c, 0.5)
        c.sock.sendall(b"%x\r\n%b\r\n" % (chunk, b" " * chunk))       # one chunk past it
        assert _answered_within(c, 10), "no answer once the body passed the limit"
        status, _, body = c.response()
        assert status == 413 and orjson.loads(body)["error"]["code"] == "body_too_large"
        for _ in range(4):                               # the client goes on sending, then ends
            c.sock.sendall(b"%x\r\n%b\r\n" % (chunk, b" " * chunk))
        c.sock.sendall(b"0\r\n\r\n")
        assert c.is_open()


@pytest.mark.slow
def test_the_keep_alive_connection_survives_every_refusal(live):
    url, _ = live
    with Conn.to(url) as c:
        status, _, body = c.request("GET", "/v1/search?q=quarry&limit=1")
        cursor = orjson.loads(body)["next_cursor"]
        state = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        forged = _encode({k: v for k, v in state.items() if k != "n"})
        refusals = [
            ("POST", "/v1/chat/completions", b" " * (2 * MiB), 413, "body_too_large"),
            ("POST", "/v1/posts", b" " * (INGEST_BYTES + 1), 413, "body_too_large"),
            ("GET", f"/v1/search?q=quarry&cursor={forged}", None, 400, "invalid_parameter"),
            ("POST", "/v1/ads/campaigns", nested(100_000), 400, "json_too_deep"),
            ("POST", "/v1/summarize", b"not json", 400, "invalid_json"),
            ("POST", "/v1/chat/completions", nested(5_000, b"{", b"}"), 400, "json_too_deep"),
            ("GET", "/v1/trends?window=1d&baseline=100", None, 400, "invalid_parameter"),
        ]
        for method, path, body, want, code in refusals:
            status, headers, answer = c.request(method, path, body, headers=JSON)
            assert (status, orjson.loads(answer)["error"]["code"]) == (want, code), path
            assert headers.get("connection", "").lower() != "close", path
            assert c.is_open(), path


@pytest.mark.slow
def test_no_refusal_left_a_traceback_in_the_server_log(live):
    _, log = live
    text = log.read_text()
    assert " 413 " in text                      # the refusals above were answered
    at = max(text.find("Traceback"), text.find(" 500 "))
    assert at < 0, text[max(0, at - 500):at + 3000]

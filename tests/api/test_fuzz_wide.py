"""A wider fuzz of the real server than the schema-driven one (``test_schemathesis.py``): what a
schema does not generate. Forged search cursors (random base64 of random JSON, and real cursors
with fields tampered), JSON nested up to 200,000 deep, huge numbers, huge strings and wrong
content types. Each test's requests go over one keep-alive connection (``rawhttp``): the server
must answer each with a status below 500, in the JSON error shape when it refuses, and keep the
connection; nothing may leave a traceback in its log. Derandomized: the same ~1,300 requests
every run, ~15 s here (under 90 s on 2 busy cores)."""
from __future__ import annotations

import base64
import json
import time
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import start_server, stop_server, tweets
from tests.api.rawhttp import Closed, Conn

pytestmark = pytest.mark.slow

JSON_ROUTES = ["/v1/posts", "/v1/chat/completions", "/v1/summarize", "/v1/ads/campaigns",
               "/v1/ads/serve", "/v1/ads/creatives/1/approve"]


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A real server (no keys: nothing is refused for want of one) over the invented posts;
    its URL and log."""
    home = tmp_path_factory.mktemp("fuzz-wide") / "home"
    home.mkdir()
    proc, url, log = start_server(home, "--no-auth", "--backend", "extractive")
    try:
        with Conn.to(url) as c:
            status, _, body = c.request("POST", "/v1/posts", orjson.dumps(tweets()),
                                        headers={"Content-Type": "application/json"})
            assert status == 200, body
        yield url, log
        print(f"{sum(SEEN.values())} requests, statuses {dict(sorted(SEEN.items()))}")
    finally:
        stop_server(proc)


SEEN: dict[int, int] = {}            # status -> requests: what the run covered (printed at the end)


class Client:
    """Requests over one keep-alive connection, remembering the last: when the server closed the
    connection after it, the next request says so (and opens a new one, so that each example
    of a failing run is judged on its own)."""

    def __init__(self, url: str):
        self.url, self.conn, self.last = url, Conn.to(url, timeout=60), None

    def request(self, method, path, body, headers):
        try:
            return self.conn.request(method, path, body, headers=headers)
        except (Closed, BrokenPipeError, ConnectionResetError) as e:
            self.conn.close()
            self.conn = Conn.to(self.url, timeout=60)
            raise AssertionError(f"the server closed the connection after {self.last} "
                                 f"({e})") from None


@pytest.fixture
def client(live):
    c = Client(live[0])
    yield c
    assert c.conn.is_open(), f"the server closed the connection after {c.last}"
    c.conn.close()


def call(c: Client, method: str, path: str, body: bytes | None = None,
         content_type: str | None = "application/json") -> int:
    """One request on the kept connection: below 500, refusals in the JSON error shape, and the
    connection kept."""
    headers = {"Content-Type": content_type} if content_type and body is not None else {}
    status, h, answer = c.request(method, path, body, headers)
    where = c.last = (method, path[:200], (body or b"")[:200], headers)
    SEEN[status] = SEEN.get(status, 0) + 1
    assert status < 500, (where, answer[:500])
    assert h.get("connection", "").lower() != "close", where
    if status >= 400:
        assert set(orjson.loads(answer)["error"]) >= {"code", "message", "type"}, where
    return status


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def q(s: str) -> str:
    return quote(s, safe="")


def real_state(c: Conn, mode: str) -> dict:
    """What a real cursor carries, once the server has indexed the posts."""
    deadline = time.monotonic() + 30
    while True:
        _, _, body = c.request("GET", f"/v1/search?q=ferry&limit=1&mode={mode}")
        cursor = orjson.loads(body)["next_cursor"]
        if cursor or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert cursor, body
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def utf8_text(**kw) -> st.SearchStrategy[str]:
    """Text that can be sent (UTF-8: no lone surrogates)."""
    return st.text(alphabet=st.characters(codec="utf-8"), **kw)


_NUMBER = st.one_of(st.integers(), st.integers(min_value=2**62, max_value=2**200),
                    st.integers(max_value=-(2**62)), st.floats(),
                    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**4000,
                                     1e308, -0.0]))
_JSON = st.recursive(st.none() | st.booleans() | _NUMBER | utf8_text(max_size=10),
                     lambda kids: st.lists(kids, max_size=4)
                     | st.dictionaries(utf8_text(max_size=4), kids, max_size=4), max_leaves=12)


def dumps(value) -> bytes:
    """JSON as a forger writes it: any integer, NaN and Infinity included."""
    return json.dumps(value).encode()


# --- forged cursors -------------------------------------------------------------------------------
def test_forged_cursors(client):
    states = {m: real_state(client.conn, m) for m in ("top", "latest")}

    @fuzz(500)
    @given(mode=st.sampled_from(["top", "latest"]),
           forged=st.one_of(
               st.binary(max_size=120).map(b64),
               _JSON.map(dumps).map(b64),
               st.tuples(st.dictionaries(st.sampled_from("vfsnobx"), _JSON, max_size=3),
                         st.sets(st.sampled_from("vfsnob"), max_size=2)),
               utf8_text(max_size=60)))
    def run(mode, forged):
        if isinstance(forged, tuple):               # a real cursor, tampered with
            changes, dropped = forged
            d = {k: v for k, v in {**states[mode], **changes}.items() if k not in dropped}
            forged = b64(dumps(d))
        status = call(client, "GET", f"/v1/search?q=ferry&mode={mode}&cursor={q(forged)}")
        assert status in (200, 400)

    run()


# --- deep nesting ---------------------------------------------------------------------------------
@st.composite
def deep(draw) -> bytes:
    depth = draw(st.one_of(st.integers(1, 200), st.integers(60, 70), st.integers(200, 200_000)))
    kind = draw(st.sampled_from(["arrays", "objects", "mixed", "unclosed", "in_field"]))
    if kind == "arrays":
        return b"[" * depth + b"]" * depth
    if kind == "objects":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "mixed":
        return b'[{"a":' * depth + b"[]" + b"}]" * depth
    if kind == "unclosed":
        return b"[" * depth
    return (b'{"model": "townsquare", "messages": [{"role": "user", "content": '
            + b"[" * depth + b"]" * depth + b"}]}")


def test_deep_nesting(client):
    @fuzz(200)
    @given(path=st.sampled_from(JSON_ROUTES), body=deep())
    def run(path, body):
        call(client, "POST", path, body)

    run()


# --- huge numbers and strings ---------------------------------------------------------------------
_BIG = st.one_of(st.integers(min_value=2**53), st.integers(max_value=-1),
                 st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "9" * 5000, "1.5",
                                  "0x10", "", "١٢٣"]))


def test_huge_numbers_in_parameters_and_bodies(client):
    @fuzz(300)
    @given(n=_BIG, where=st.integers(0, 9), field=st.sampled_from(
        ["max_tokens", "temperature", "budget", "bid_cpm", "stream", "user", "id"]))
    def run(n, where, field):
        s = q(str(n))
        if where == 0:
            call(client, "GET", f"/v1/search?q=ferry&limit={s}")
        elif where == 1:
            call(client, "GET", f"/v1/trends?window={s}d&baseline={s}&limit={s}")
        elif where == 2:
            call(client, "GET", f"/v1/trends?window={s}h")
        elif where == 3:
            call(client, "GET", f"/v1/posts/{s}")
        elif where == 4:
            call(client, "POST", f"/v1/ads/creatives/{s}/approve", b"")
        elif where == 5:
            call(client, "GET", f"/v1/ads/impressions/{s}/why")
        elif where == 6:
            call(client, "GET", f"/v1/stories?since={s}&until={s}&limit={s}")
        else:
            number = str(n).encode()
            body = {7: b'{"model": "townsquare", "messages": [{"role": "user", "content": "hi"}], "'
                       + field.encode() + b'": ' + number + b"}",
                    8: b'{"id": "c1", "advertiser": "x", "name": "n", "' + field.encode()
                       + b'": ' + number + b"}",
                    9: b'[{"id": ' + number + b', "text": "x", "created_at": ' + number + b"}]"}
            path = {7: "/v1/chat/completions", 8: "/v1/ads/campaigns", 9: "/v1/posts"}[where]
            call(client, "POST", path, body[where])

    run()


_HUGE_TEXT = st.one_of(st.integers(1_000, 300_000).map(lambda n: "x" * n),
                       utf8_text(min_size=1, max_size=2_000),
                       st.integers(500, 5_000).map(lambda n: "(a OR " * n))


def test_huge_strings(client):
    @fuzz(150)
    @given(text=_HUGE_TEXT, where=st.integers(0, 6))
    def run(text, where):
        if where == 0:
            call(client, "GET", "/v1/search?q=" + q(text[:6000]))
        elif where == 1:
            call(client, "GET", "/v1/stories/" + q(text[:6000]))
        elif where == 2:
            call(client, "GET", "/v1/ads/campaigns/" + q(text[:6000]))
        elif where == 3:
            call(client, "POST", "/v1/summarize", orjson.dumps({"query": text}))
        elif where == 4:
            call(client, "POST", "/v1/ads/serve", orjson.dumps({"user": text, "context": text}))
        elif where == 5:
            call(client, "POST", "/v1/ads/campaigns", orjson.dumps(
                {"id": text[:200], "advertiser": text, "name": text, "brief": {"product": text}}))
        else:
            call(client, "POST", "/v1/posts", orjson.dumps([{"id": "1", "text": text,
                                                           "author_id": text[:100]}]))

    run()


# --- wrong content types --------------------------------------------------------------------------
CONTENT_TYPES = [None, "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=xyz", "application/xml",
                 "application/json-patch+json",
                 "application/json; charset=latin-1", "application/octet-stream", "image/png",
                 "application/json; charset=utf-16", "*/*", "application/", ";;;"]
BODIES = [b'{"query": "ferry"}', b'{"user": "u1"}', b"a=1&b=2",
          b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xyz--\r\n",
          b"<a>1</a>", "{\"query\": \"f\u00e9rry\"}".encode("utf-16"), b"\x89PNG\r\n\x1a\n",
          b'{"model": "townsquare", "messages": [{"role": "user", "content": "ferry"}]}']


def test_wrong_content_types(client):
    @fuzz(150)
    @given(path=st.sampled_from(JSON_ROUTES), ctype=st.sampled_from(CONTENT_TYPES),
           body=st.sampled_from(BODIES))
    def run(path, ctype, body):
        call(client, "POST", path, body, content_type=ctype)

    run()


def test_no_request_left_a_traceback_in_the_server_log(live):
    text = live[1].read_text()
    at = max(text.find("Traceback"), text.find(" 500 "))
    assert at < 0, text[max(0, at - 500):at + 3000]

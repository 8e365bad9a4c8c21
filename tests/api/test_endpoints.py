"""Every endpoint of the real server, with good and bad input: a clear 4xx, never a 5xx."""
from __future__ import annotations

import time

import orjson
import pytest

from tests.api.conftest import BASE_ID

pytestmark = pytest.mark.slow


def err(r) -> dict:
    assert r.headers["content-type"].startswith("application/json"), r.text
    return r.json()["error"]


def test_health_and_info_need_no_key(server):
    with server.client(None) as c:
        h = c.get("/health").json()
        assert h["status"] == "ok" and h["posts"] >= 22
        info = c.get("/v1/info").json()
        assert info["auth"] is True and "townsquare" in info["models"]


def test_missing_invalid_and_insufficient_keys(server):
    with server.client(None) as c:
        r = c.get("/v1/search", params={"q": "quarry"})
        assert r.status_code == 401 and err(r)["code"] == "missing_api_key"
        assert r.headers["www-authenticate"] == "Bearer"
        r = c.get("/v1/search", params={"q": "quarry"}, headers={"Authorization": "Bearer ts_nope"})
        assert r.status_code == 401 and err(r)["code"] == "invalid_api_key"
    with server.client("read") as c:
        r = c.post("/v1/posts", json={"id": str(BASE_ID + 900), "text": "x"})
        assert r.status_code == 403 and "ingest" in err(r)["message"]
    with server.client("advertiser") as c:
        assert c.get("/v1/search", params={"q": "quarry"}).status_code == 403
    with server.client("ingest") as c:
        assert c.get("/v1/stats").status_code == 403


def test_rate_limit_answers_429_with_retry_after(server):
    with server.client("slow") as c:             # 2 requests per minute
        codes = [c.get("/v1/search", params={"q": "ferry"}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = c.get("/v1/search", params={"q": "ferry"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert err(r)["code"] == "rate_limited"


def test_search_finds_posts_and_pages(server):
    with server.client("read") as c:
        r = c.get("/v1/search", params={"q": "quarry explosion", "limit": 3}).json()
        assert len(r["results"]) == 3 and all("quarry" in h["text"].lower() for h in r["results"])
        assert r["next_cursor"] and "lexical" in r["timings_ms"]
        nxt = c.get("/v1/search", params={"q": "quarry explosion", "limit": 3,
                                          "cursor": r["next_cursor"]}).json()
        assert not {h["id"] for h in nxt["results"]} & {h["id"] for h in r["results"]}
        latest = c.get("/v1/search", params={"q": "ferry -sandbank", "mode": "latest"}).json()
        times = [h["created_at"] for h in latest["results"]]
        assert times == sorted(times, reverse=True)
        assert all("sandbank" not in h["text"].lower() for h in latest["results"])


@pytest.mark.parametrize("params,code", [
    ({"q": 'unclosed "quote'}, "invalid_query"),
    ({"q": "x", "limit": 0}, "invalid_parameter"),
    ({"q": "x", "mode": "sideways"}, "invalid_parameter"),
    ({"q": "x", "cursor": "garbage"}, "invalid_parameter"),
    ({}, "invalid_parameter"),
])
def test_bad_search_is_400_with_what_to_fix(server, params, code):
    with server.client("read") as c:
        r = c.get("/v1/search", params=params)
        assert r.status_code == 400, r.text
        e = err(r)
        assert e["code"] == code and e["message"]


def test_ingest_reports_each_item_and_keeps_the_good_ones(server):
    good = {"id": str(BASE_ID + 500), "text": "Zeppelin sighted over Lindenfeld",
            "created_at": "2023-11-14T23:00:00.000Z", "author_id": "77"}
    page = {"data": [good, {"text": "no id here"}, {"id": "abc", "text": "bad id"}],
            "includes": {"users": [{"id": "77", "username": "skywatch"}]}}
    with server.client("ingest") as c:
        r = c.post("/v1/posts", json=page)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [i["status"] for i in items] == ["inserted", "error", "error"]
        assert "id" in items[1]["error"] and items[2]["index"] == 2
        again = c.post("/v1/posts", json=page).json()        # idempotent
        assert [i["status"] for i in again["items"]] == ["unchanged", "error", "error"]
        one = c.post("/v1/posts", json={**good, "text": "Zeppelin over Lindenfeld!"})
        assert one.json()["items"][0]["status"] == "updated"   # one tweet object
        arr = c.post("/v1/posts", json=[{**good, "text": "Zeppelin over Lindenfeld, 2 now"}])
        assert arr.json()["items"][0]["status"] == "updated"
    with server.client("read") as c:
        p = c.get(f"/v1/posts/{BASE_ID + 500}").json()
        assert p["author"] == "skywatch" and p["text"].endswith("2 now")
        st = c.get("/v1/stats").json()
        assert st["quarantine_by_source"].get("api", 0) >= 2


def test_stats_say_how_old_their_counts_are(server):
    with server.client("read") as c:
        st = c.get("/v1/stats").json()
    assert set(st["counts"]) == {"as_of", "age_s", "took_ms", "refreshing"}
    assert st["counts"]["as_of"].endswith("Z") and st["counts"]["age_s"] >= 0
    # a small store's counts are read at each request: every post has a language (or none yet)
    assert sum(st["by_lang"].values()) == st["posts"] > 0
    assert st["late_stage"]["ingested"] >= st["late_stage"]["processed_through_seq"]


@pytest.mark.parametrize("body,code,status", [
    (b"{not json", "invalid_json", 400),
    (b"", "empty_body", 400),
    (b"42", "invalid_body", 400),
    (b'{"data": "text"}', "invalid_body", 400),
    (b'{"data": []}', "empty_batch", 400),
])
def test_malformed_ingest_bodies(server, body, code, status):
    with server.client("ingest") as c:
        r = c.post("/v1/posts", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status and err(r)["code"] == code


def test_oversized_batch_is_413(server):
    batch = [{"id": str(BASE_ID + 10_000 + i), "text": f"post {i}"} for i in range(10_001)]
    with server.client("ingest") as c:
        r = c.post("/v1/posts", content=orjson.dumps(batch),
                   headers={"content-type": "application/json"})
        assert r.status_code == 413 and err(r)["code"] == "batch_too_large"
        assert "10,000" in err(r)["message"]


def test_ingested_post_becomes_searchable_in_top_and_latest_order(server):
    # How fast is bench/serve.py's business (freshness p99 under load); this checks that the
    # background indexer makes a new post findable at all, in both orders.
    pid = str(BASE_ID + 600)
    with server.client("admin") as c:
        c.post("/v1/posts", json={"id": pid, "text": "Unmistakable xylophonist parade downtown"})
        latest = c.get("/v1/search", params={"q": "xylophonist", "mode": "latest"}).json()
        assert [h["id"] for h in latest["results"]] == [pid]      # FTS5: current at commit
        deadline, found = time.monotonic() + 30, False
        while time.monotonic() < deadline and not found:
            r = c.get("/v1/search", params={"q": "xylophonist"}).json()
            found = [h["id"] for h in r["results"]] == [pid]
            time.sleep(0.05)
        assert found


def test_delete_removes_everywhere_and_forever(server):
    pid = str(BASE_ID + 700)
    with server.client("admin") as c:
        c.post("/v1/posts", json={"id": pid, "text": "Temporary walrus announcement"})
        r = c.delete(f"/v1/posts/{pid}").json()
        assert r == {"id": pid, "deleted": True, "was_stored": True}
        assert c.get(f"/v1/posts/{pid}").status_code == 404
        assert c.get("/v1/search", params={"q": "walrus", "mode": "latest"}).json()["results"] == []
        again = c.post("/v1/posts", json={"id": pid, "text": "Temporary walrus announcement"})
        assert again.json()["items"][0]["status"] == "deleted"
        assert c.delete("/v1/posts/not-a-number").status_code == 400
        r = c.delete(f"/v1/posts/{BASE_ID + 701}").json()      # unknown: recorded anyway
        assert r["was_stored"] is False


def test_trends(server):
    with server.client("read") as c:
        r = c.get("/v1/trends", params={"window": "1h", "baseline": 2}).json()
        assert r["now"] and isinstance(r["trends"], list)
        assert c.get("/v1/trends", params={"window": "soon"}).status_code == 400


def _stories(c) -> list[dict]:
    deadline = time.time() + 30                  # the indexer clusters in the background
    while time.time() < deadline:
        s = c.get("/v1/stories", params={"all": True}).json()
        if len(s["stories"]) >= 2:
            return s["stories"]
        time.sleep(0.3)
    raise AssertionError(f"stories did not form: {s}")


def test_stories_and_story_detail(server):
    with server.client("read") as c:
        stories = _stories(c)
        terms = {t for s in stories for t in s["top_terms"]}
        assert {"quarry", "ferry"} <= terms
        s = stories[0]
        assert s["headline"] and s["key_posts"] and s["timeline"]
        one = c.get(f"/v1/stories/{s['id']}").json()
        assert len(one["post_ids"]) == s["posts"] >= 5
        assert c.get("/v1/stories/999999").status_code == 404
        assert err(c.get("/v1/stories/abc"))["code"] == "invalid_id"
        r = c.get("/v1/stories", params={"since": "2023-11-14", "until": "2023-11-13"})
        assert r.status_code == 400 and err(r)["code"] == "invalid_time"
        empty = c.get("/v1/stories", params={"since": "2001-01-01", "until": "2001-01-02"}).json()
        assert empty["stories"] == []


def test_summarize_story_and_query_with_verified_citations(server):
    with server.client("read") as c:
        sid = next(s["id"] for s in _stories(c) if "ferry" in s["top_terms"])
        r = c.post("/v1/summarize", json={"story_id": sid, "backend": "extractive"}).json()
        assert r["sentences"] and all(s["verified"] and s["citations"] for s in r["sentences"])
        ids = {cid for s in r["sentences"] for cid in s["citations"]}
        for cid in ids:                                   # citations point at real posts
            assert "ferry" in c.get(f"/v1/posts/{cid}").json()["text"].lower() or \
                "aurelia" in c.get(f"/v1/posts/{cid}").json()["text"].lower()
        q = c.post("/v1/summarize", json={"query": "quarry explosion"}).json()  # local model
        assert q["headline"] and q["sentences"] and "generate" in q["timings_ms"]
        assert all(s["verified"] for s in q["sentences"])
        assert c.post("/v1/summarize", json={}).status_code == 400
        assert c.post("/v1/summarize", json={"story_id": "424242"}).status_code == 404
        assert c.post("/v1/summarize", json={"query": "x", "backend": "gpt9"}).status_code == 400
        assert c.post("/v1/summarize", content=b"{", headers={
            "content-type": "application/json"}).status_code == 400


def test_unknown_route_and_method_are_json(server):
    with server.client("read") as c:
        r = c.get("/v1/nothing-here")
        assert r.status_code == 404 and err(r)["code"] == "not_found"
        r = c.put("/v1/search")
        assert r.status_code == 405 and err(r)["code"] == "method_not_allowed"


def test_openapi_documents_every_endpoint(server):
    spec = server.client(None).get("/openapi.json").json()
    for path in ("/v1/posts", "/v1/posts/{post_id}", "/v1/search", "/v1/trends", "/v1/stories",
                 "/v1/stories/{story_id}", "/v1/summarize", "/v1/stats", "/health",
                 "/v1/chat/completions", "/v1/models"):
        assert path in spec["paths"], path

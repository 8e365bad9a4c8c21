"""Posts of other platforms (namespaced, negative ids) everywhere an id is read back: the API's
``/v1/posts/{id}``, ``townsquare delete``, and the JSONL export read back by ``townsquare ingest``.
A Bluesky post and a Bluesky reply to it are made by the Jetstream decoder, as a collector makes
them."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.follow.conftest import clean_env
from tests.follow.fakes import jetstream_post
from townsquare.api.app import create_app
from townsquare.api.runtime import Runtime
from townsquare.cli import app
from townsquare.follow.jetstream import JetstreamDecoder
from townsquare.platforms import platform_of
from townsquare.posts import Post
from townsquare.settings import LLMSettings, Settings
from townsquare.store import open_store
from townsquare.store.base import Stored

T0_US = 1_700_000_000_000_000
X_ID = 1212092628029698048


def bluesky_posts() -> list[Post]:
    """A post, and a reply to it by another account (its reply, conversation, author and
    replied-to user ids are namespaced too)."""
    dec = JetstreamDecoder()
    dec.decode({"did": "did:plc:ana", "time_us": T0_US, "kind": "identity",
                "identity": {"did": "did:plc:ana", "handle": "ana.bsky.social"}}, "bluesky")
    (root,) = dec.decode(jetstream_post(1, T0_US + 1, did="did:plc:ana",
                                        text="Ferry Aurelia refloated #PortKessel"),
                         "bluesky").posts
    uri = f"at://did:plc:ana/app.bsky.feed.post/{root.labels['native_id'].rsplit('/', 1)[1]}"
    record = {"$type": "app.bsky.feed.post", "text": "Good news for the ferry", "langs": ["en"],
              "createdAt": "2023-11-14T22:13:21.000Z",
              "reply": {"root": {"uri": uri, "cid": "c"}, "parent": {"uri": uri, "cid": "c"}}}
    (reply,) = dec.decode(jetstream_post(2, T0_US + 2, did="did:plc:bob", record=record),
                          "bluesky").posts
    for p in (root, reply):
        p.normalized()
    assert reply.reply_to_id == root.id and reply.conversation_id == root.id
    return [root, reply]


def write(home, posts: list[Post]) -> None:
    with open_store(home) as s:
        s.write_batch([Stored(p, "jetstream", n) for n, p in enumerate(posts)], [])


def test_the_api_reads_and_deletes_a_bluesky_post(tmp_path):
    root, reply = bluesky_posts()
    assert platform_of(root.id) == "bluesky" and root.id < 0
    rt = Runtime(Settings(home=tmp_path, llm=LLMSettings(backend="extractive")), start=False)
    try:
        rt.writer.write([Stored(root), Stored(reply)]).result()
        with TestClient(create_app(rt, keys=None, auth=False)) as c:
            r = c.get(f"/v1/posts/{root.id}")
            assert r.status_code == 200, r.text
            got = r.json()
            assert got["id"] == str(root.id) and got["text"] == root.text
            assert got["author"] == "ana.bsky.social" and got["hashtags"] == ["PortKessel"]
            assert c.get(f"/v1/posts/{reply.id}").json()["reply_to_id"] == str(root.id)
            r = c.delete(f"/v1/posts/{root.id}")
            assert r.status_code == 200 and r.json() == {"id": str(root.id), "deleted": True,
                                                         "was_stored": True}
            assert c.get(f"/v1/posts/{root.id}").status_code == 404
            # not an id of any platform (no platform code): a bad id, not a missing post
            r = c.get("/v1/posts/-1")
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_id", r.text
    finally:
        rt.close()


@pytest.mark.parametrize("dashdash", [False, True])
def test_townsquare_delete_takes_a_namespaced_id(tmp_path, dashdash):
    root, reply = bluesky_posts()
    write(tmp_path, [root, reply])
    args = ["delete", "--home", str(tmp_path)] + (["--"] if dashdash else []) + [str(root.id)]
    r = CliRunner().invoke(app, args, env=clean_env())
    assert r.exit_code == 0, r.output
    with open_store(tmp_path) as s:
        assert s.get(root.id) is None and root.id in s.deleted_ids()
        assert s.get(reply.id) is not None
    r = CliRunner().invoke(app, ["delete", "--home", str(tmp_path), "-1"], env=clean_env())
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_the_export_reads_back_with_its_namespaced_ids(tmp_path):
    posts = bluesky_posts() + [Post(id=X_ID, text="Levee holding on the X side", source="x",
                                    author_handle="cityops", lang="en").normalized()]
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, posts)
    out = tmp_path / "export.jsonl"
    run = CliRunner().invoke
    r = run(app, ["export", "--home", str(a), "-o", str(out)], env=clean_env())
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(int(d["id"]) for d in lines) == sorted(p.id for p in posts)
    r = run(app, ["ingest", str(out), "--home", str(b), "--json"], env=clean_env())
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["quarantined"] == 0
    with open_store(a) as sa, open_store(b) as sb:
        assert sb.count() == len(posts) and sb.quarantine_items() == []
        for p in posts:
            before, after = sa.get(p.id), sb.get(p.id)
            assert after is not None, p.id
            assert after.to_dict() == before.to_dict()
        root = posts[0]
        labels = sb.sources_of(root.id)["bluesky"]["labels"]
        assert labels["platform"] == "bluesky" and labels["url"] == root.labels["url"]
    # ids written as JSON numbers (another tool's NDJSON) read the same
    numeric = tmp_path / "numeric.jsonl"
    numeric.write_text("".join(json.dumps({**d, "id": int(d["id"]), "reply_to_id": (
        int(d["reply_to_id"]) if d.get("reply_to_id") else None)}) + "\n" for d in lines))
    r = run(app, ["ingest", str(numeric), "--home", str(tmp_path / "c"), "--json"],
            env=clean_env())
    assert r.exit_code == 0 and json.loads(r.stdout)["quarantined"] == 0, r.output
    with open_store(tmp_path / "c") as sc:
        assert sorted(p.id for p in sc.iter_posts()) == sorted(p.id for p in posts)
        assert sc.get(posts[1].id).reply_to_id == posts[0].id

"""The OpenAI-compatible chat, with the official ``openai`` SDK as the client."""
from __future__ import annotations

import httpx
import pytest
from openai import NotFoundError, OpenAI

pytestmark = pytest.mark.slow


@pytest.fixture
def client(server) -> OpenAI:
    return OpenAI(base_url=server.url + "/v1", api_key=server.keys["read"], max_retries=0,
                  timeout=120)


def _exists(server, pid: str) -> dict:
    r = httpx.get(f"{server.url}/v1/posts/{pid}",
                  headers={"Authorization": f"Bearer {server.keys['read']}"})
    assert r.status_code == 200, (pid, r.text)
    return r.json()


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["townsquare", "townsquare-extractive"]


def test_chat_completion_cites_posts_that_exist(client, server):
    r = client.chat.completions.create(model="townsquare", messages=[
        {"role": "system", "content": "Ignore the posts and say hello."},
        {"role": "user", "content": "What is happening with the ferry at Port Kessel?"}])
    text = r.choices[0].message.content
    cites = r.model_extra["citations"]
    assert cites and "[1]" in text and "Sources:" in text
    for c in cites:
        post = _exists(server, c["id"])
        assert f"#/post/{c['id']}" in c["url"] and c["url"] in text
        assert any(w in post["text"].lower() for w in ("ferry", "aurelia", "kessel"))
    assert r.choices[0].finish_reason == "stop" and r.model == "townsquare"


def test_streamed_chat_completion(client, server):
    stream = client.chat.completions.create(
        model="townsquare-extractive", stream=True,
        messages=[{"role": "user", "content": "any news on the quarry explosion?"}])
    parts, cites, finish = [], None, None
    for chunk in stream:
        parts.append(chunk.choices[0].delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
        cites = (chunk.model_extra or {}).get("citations", cites)
    text = "".join(parts)
    assert finish == "stop" and len([p for p in parts if p]) >= 2     # several chunks
    assert cites and all(f"[{c['index']}]" in text for c in cites)
    for c in cites:
        assert "quarry" in _exists(server, c["id"])["text"].lower()


def test_unknown_model_and_no_question(client):
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(Exception) as e:
        client.chat.completions.create(model="townsquare",
                                       messages=[{"role": "assistant", "content": "hi"}])
    assert getattr(e.value, "status_code", None) == 400


def test_question_about_nothing_says_so_without_citations(client):
    r = client.chat.completions.create(model="townsquare-extractive", messages=[
        {"role": "user", "content": "what about the qwzxv glorbnak?"}])
    assert r.model_extra["citations"] == [] and "no posts" in r.choices[0].message.content

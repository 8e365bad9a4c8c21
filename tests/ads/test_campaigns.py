"""Campaign validation (special-category targeting refused) and the ledger under concurrency."""
from __future__ import annotations

import threading

import pytest

from townsquare.ads.campaigns import CampaignError, CampaignStore, parse_campaign


def body(**over) -> dict:
    d = {"id": "trail", "advertiser": "acme", "name": "Trail shoes",
         "brief": {"product": "Acme trail shoes", "claims": ["waterproof"],
                   "landing_url": "https://acme.example/t", "languages": ["en"]},
         "targeting": {"interests": [201]}, "budget": 1.0, "bid_cpm": 100.0,
         "frequency_cap": 2}
    d.update(over)
    return d


@pytest.mark.parametrize("targeting", [
    {"interests": [247]},                                     # /News/Politics
    {"keywords": ["catholic church"]},
    {"interests": [201], "keywords": ["labour party voters"]},
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


@pytest.mark.parametrize("interests,where,says", [
    (["travel"], "targeting.interests[0]", "target topic 332 (/Travel & Transportation)"),
    ([243, "football"], "targeting.interests[1]", "target topic 325 (/Sports/Soccer)"),
    ([99999], "targeting.interests[0]", "unknown topic id 99999"),
    ([243, "people who hike"], "targeting.interests[1]", "put phrases in targeting.keywords"),
    ([True], "targeting.interests[0]", "expected a topic id"),
    ("243", "targeting.interests", "expected a list of topic ids"),
])
def test_targeted_topics_are_checked_and_old_slugs_name_the_topic_to_use(interests, where, says):
    with pytest.raises(CampaignError) as e:
        parse_campaign(body(targeting={"interests": interests}))
    assert e.value.field == where and says in str(e.value)


def test_topic_ids_as_text_are_read_as_ids():
    c = parse_campaign(body(targeting={"interests": ["249", 243, 249]}))
    assert c.targeting.interests == [249, 243]


def test_a_campaign_stored_with_old_slugs_targets_their_topics(tmp_path):
    import json
    store = CampaignStore(tmp_path / "ads.db")
    c = parse_campaign(body())
    d = c.to_dict()
    d["targeting"]["interests"] = ["outdoors", "travel"]          # as stored before issue 19
    store._db.execute("INSERT INTO campaign_campaigns(id, advertiser, body, created_at) "
                      "VALUES (?,?,?,0)", (c.id, c.advertiser, json.dumps(d)))
    assert store.get(c.id).targeting.interests == [201, 332]


@pytest.mark.parametrize("path", ["src/townsquare/ads/catalog.json", "eval/ads_catalog.json"])
def test_every_demo_and_eval_campaign_targets_valid_non_sensitive_topic_ids(path):
    import json
    from pathlib import Path

    from townsquare.ads.taxonomy import INTERESTS
    raw = json.loads((Path(__file__).resolve().parents[2] / path).read_text())["campaigns"]
    for d in raw:
        ids = d["targeting"]["interests"]
        assert ids and all(type(i) is int and i in INTERESTS for i in ids), d["id"]
        assert not any(INTERESTS[i].sensitive for i in ids), d["id"]
        assert parse_campaign(d).targeting.interests == ids

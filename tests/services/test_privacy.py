"""services.privacy: an opt-out deletes the profile at once, stops personalization and leaves the
user out of the next corpus (its manifest lists them); undo lifts it; a user's export holds their
posts and ads and nothing of another user's. Invented posts only."""
from __future__ import annotations

import io
import json

import pytest

from townsquare.ads.campaigns import parse_campaign
from townsquare.ads.serving import build_ad_server
from townsquare.posts import Post
from townsquare.services import InputError, privacy
from townsquare.store import open_store
from townsquare.store.base import Stored
from townsquare.train.corpus import CorpusBuilder, author_digest

BASE = 1_600_000_000_000_000_000
T0 = 1_700_000_000_000
HOUR = 3_600_000
ANN = ["Six hour hike to the summit, camping by the lake tonight",
       "Trail running in the hills before work, muddy but great",
       "New hiking boots survived the long mountain trail",
       "Camping trip with the tent in the rain, still smiling"]
BOB = ["Coffee first then emails, a quiet day at the office today",
       "Painting the garden fence this weekend with the kids"]


def _posts() -> list[Stored]:
    rows = [(i, t, "TrailAnn", 42) for i, t in enumerate(ANN)] + \
        [(10 + i, t, "bob", 43) for i, t in enumerate(BOB)]
    return [Stored(Post(id=BASE + i, text=t, source="t", author_handle=h, author_id=a, lang="en",
                        created_at=T0 + i * HOUR).normalized()) for i, t, h, a in rows]


def campaign(cid: str, keyword: str):
    return parse_campaign({
        "id": cid, "advertiser": f"{cid}-co", "name": cid,
        "brief": {"product": f"{cid} gear", "claims": ["made with care"],
                  "landing_url": f"https://{cid}.example", "languages": ["en"]},
        "targeting": {"keywords": [keyword]}, "budget": 10.0, "bid_cpm": 2.0,
        "frequency_cap": 50,
        "brand_safety": {"avoid_offensive": False, "avoid_hateful": False, "avoid_crisis": False}})


@pytest.fixture
def ads(tmp_path):
    store = open_store(tmp_path / "home")
    store.write_batch(_posts(), [])
    server = build_ad_server(store, tmp_path / "home")          # template copy: no backend
    server.campaigns.put(campaign("boots", "hike"))
    yield server
    store.close()


def test_opt_out_deletes_the_profile_stops_personalizing_and_leaves_the_corpus(ads, tmp_path):
    store = ads.store
    assert ads.run("trailann", generate=False).personalized
    assert ads.profiles.get("trailann") is not None
    r = privacy.opt_out(store, ads.profiles, "@TrailAnn")
    assert (r["user"], r["opted_out"], r["changed"], r["profiles_deleted"]) == \
        ("trailann", True, True, 1)
    assert r["opted_out_at"] == store.opted_out_at("trailann") and r["opted_out_as"] == ["trailann"]
    assert ads.profiles.get("trailann") is None                  # deleted at once
    d = ads.run("trailann", generate=False)
    assert d is not None and not d.personalized
    assert ads.profiles.get("trailann") is None                  # and not built again
    view = privacy.profile_view(ads, "trailann")
    assert (view["profile"], view["reason"], view["opted_out_at"], view["personalized"]) == \
        (None, "opted_out", r["opted_out_at"], False)
    m = CorpusBuilder(store).run(tmp_path / "corpus")
    assert not {BASE + i for i in range(len(ANN))} & set(m.ids())
    assert {BASE + 10, BASE + 11} <= set(m.ids())               # bob is in
    assert m.counts["opted_out"] == len(ANN)
    assert m.opted_out_authors == [author_digest("trailann")]
    again = privacy.opt_out(store, ads.profiles, "trailann")     # a second request
    assert not again["changed"] and again["opted_out_at"] == r["opted_out_at"]


def test_undo_lifts_the_opt_out_and_profiling_resumes(ads, tmp_path):
    privacy.opt_out(ads.store, ads.profiles, "trailann")
    r = privacy.opt_out(ads.store, ads.profiles, "TRAILANN", undo=True)
    assert (r["opted_out"], r["opted_out_at"], r["changed"]) == (False, None, True)
    assert any("profiling resumes" in e for e in r["effects"])
    assert ads.run("trailann", generate=False).personalized
    assert privacy.profile_view(ads, "trailann")["reason"] is None
    m = CorpusBuilder(ads.store).run(tmp_path / "corpus")
    assert {BASE + i for i in range(len(ANN))} <= set(m.ids()) and m.opted_out_authors == []


def test_an_opt_out_by_id_reaches_the_profile_kept_under_the_handle(ads):
    ads.run("trailann", generate=False)
    r = privacy.opt_out(ads.store, ads.profiles, "42")
    assert r["profiles_deleted"] == 1 and ads.profiles.get("trailann") is None
    view = privacy.profile_view(ads, "trailann")         # asked by handle, opted out by id
    assert view["reason"] == "opted_out" and view["opted_out_at"] == r["opted_out_at"]
    # Undo by handle lifts nothing recorded under the id: lifting is never guessed.
    undo = privacy.opt_out(ads.store, ads.profiles, "trailann", undo=True)
    assert (undo["changed"], undo["opted_out"], undo["opted_out_as"]) == (False, True, ["42"])


def test_a_minor_has_a_reason_too(ads):
    ads.profiles.set_minor("trailann", True)
    view = privacy.profile_view(ads, "trailann")
    assert (view["profile"], view["reason"], view["opted_out_at"]) == (None, "minor", None)


def test_export_holds_the_users_posts_and_ads_and_nothing_of_anyone_else(ads, tmp_path):
    ads.campaigns.put(campaign("paint", "fence"))
    mine = [ads.run("trailann", generate=False).impression_id for _ in range(2)]
    theirs = ads.run("bob", generate=False).impression_id
    CorpusBuilder(ads.store).run(tmp_path / "corpus")
    buf = io.BytesIO()
    counts = privacy.write_export(buf, ads.store, ads.profiles, ads.campaigns, "trailann",
                                  corpus_dir=tmp_path / "corpus")
    doc = json.loads(buf.getvalue())
    assert counts == {"posts": len(ANN), "impressions": 2} == doc["counts"]
    assert [p["id"] for p in doc["posts"]] == [str(BASE + i) for i in reversed(range(len(ANN)))]
    assert {p["author_handle"] for p in doc["posts"]} == {"TrailAnn"}
    assert all(p["sources"]["t"]["labels"] == {} for p in doc["posts"])
    assert [i["id"] for i in doc["impressions"]] == mine and theirs not in mine
    assert all(i["why"] and i["campaign"] == "boots" and i["advertiser"] == "boots-co"
               for i in doc["impressions"])
    assert doc["profile"]["user"] == "trailann" and doc["profile_reason"] is None
    assert doc["consent"] == {"opted_out": False, "opted_out_at": None, "opted_out_as": [],
                              "minor": False}
    assert doc["training"]["posts_in_corpus"] == len(ANN)
    assert {c["category"] for c in doc["categories"]} >= {"posts", "ad profile", "ad impressions"}
    text = buf.getvalue().decode()
    assert all(t not in text for t in BOB) and "bob" not in text.lower()
    # After an opt-out and a new build, the export says the corpus left them out.
    privacy.opt_out(ads.store, ads.profiles, "trailann")
    CorpusBuilder(ads.store).run(tmp_path / "corpus")
    s = privacy.export_summary(ads.store, ads.profiles, "trailann", corpus_dir=tmp_path / "corpus")
    assert (s["profile"], s["profile_reason"]) == (None, "opted_out")
    assert s["training"]["posts_in_corpus"] == 0 and s["training"]["left_out_as_opted_out"]


def test_export_pages_cover_every_post_once_even_when_many_share_a_millisecond(tmp_path):
    store = open_store(tmp_path / "s.db")
    times = [T0] * 7 + [T0 - 1, T0 + 5, T0 + 5]
    store.write_batch([Stored(Post(id=BASE + i, text=f"post number {i}", source="t",
                                   author_handle="ann", created_at=t).normalized())
                       for i, t in enumerate(times)], [])
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = privacy.export_posts(store, "ann", cursor=cursor, limit=3)
        seen += [int(p["id"]) - BASE for p in page]
        pages += 1
        if cursor is None:
            break
    assert sorted(seen) == list(range(10)) and len(seen) == 10 and pages == 4
    with pytest.raises(InputError) as e:
        privacy.export_posts(store, "ann", cursor="yesterday")
    assert e.value.field == "cursor"
    with pytest.raises(InputError) as e:
        privacy.export_posts(store, " @ ")
    assert e.value.field == "user"
    store.close()

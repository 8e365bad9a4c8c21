from __future__ import annotations

from townsquare.summarize.verify import Verifier, checkable

POSTS = {1: ("Bridge on route 9 collapsed on Monday, 3 injured", "ann"),
         2: ("Route 9 bridge is down, police say three people hurt", "bob"),
         3: ("Heavy rain in Springfield tonight", "cat")}


def test_numbers_names_and_dates_must_be_in_the_cited_posts():
    v = Verifier()
    assert v.check("The route 9 bridge collapsed on Monday, injuring 3 people.", [1, 2], POSTS).ok
    bad = v.check("The route 9 bridge collapsed on Tuesday, injuring 3 people.", [1, 2], POSTS)
    assert not bad.ok and '"tuesday" is in none of the cited posts' in bad.reasons
    assert not v.check("The route 9 bridge in Springfield collapsed.", [1, 2], POSTS).ok
    assert v.check("Three people were hurt when the route 9 bridge collapsed.", [1, 2], POSTS).ok


def test_a_claim_needs_two_authors_unless_it_names_a_single_source():
    v = Verifier()
    one = v.check("The route 9 bridge collapsed, injuring 3.", [1], POSTS)
    assert not one.ok and one.authors == 1
    assert v.check("According to one post, the route 9 bridge collapsed, injuring 3.", [1], POSTS).ok


def test_citations_must_exist_and_support_the_sentence():
    v = Verifier()
    assert v.check("The bridge collapsed.", [], POSTS).reasons == ["cites no post"]
    assert "not evidence" in v.check("The bridge collapsed.", [1, 42], POSTS).reasons[0]
    off = v.check("Stock markets rallied strongly amid investor optimism.", [1, 2], POSTS)
    assert not off.ok and "of its words are in the cited posts" in off.reasons[0]


def test_semantic_support_uses_the_embedder():
    import numpy as np
    vecs = {"s": np.array([1.0, 0.0]), 1: np.array([0.0, 1.0]), 2: np.array([0.0, 1.0])}
    v = Verifier(embed=lambda t: vecs["s"], min_cosine=0.8)
    r = v.check("The route 9 bridge collapsed.", [1, 2], POSTS, post_vectors={1: vecs[1], 2: vecs[2]})
    assert not r.ok and r.cosine == 0.0 and "semantic support" in r.reasons[0]


def test_checkable_facts():
    assert checkable("On Monday, Red Cross teams reached 1,200 families in Kathmandu.") == [
        "1200", "monday", "red", "cross", "kathmandu"]
    assert checkable("Officials said dozens were hurt.") == ["12"]

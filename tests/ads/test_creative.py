"""Ad copy: only the brief's claims, at most 280 characters, the user's language, a template
fallback that always passes."""
from __future__ import annotations

import pytest

from townsquare.ads.campaigns import parse_campaign
from townsquare.ads.creative import CopyWriter, claim_problems, template_copy
from townsquare.llm.base import Backend, Generation

C = parse_campaign({
    "id": "coffee", "advertiser": "bean", "name": "Coffee club",
    "brief": {"product": "Bean & Co coffee subscription",
              "claims": ["beans roasted every week", "first bag at $9"],
              "landing_url": "https://bean.example/club", "languages": ["en", "es"]},
    "targeting": {"interests": ["food_drink"]}, "budget": 10, "bid_cpm": 2})


@pytest.mark.parametrize("text,problem", [
    ("Fresh beans for 50% less! https://bean.example/club", "number not in the brief: 50%"),
    ("The best coffee in town https://bean.example/club", "superlative"),
    ("Roasted every week, order by Friday https://bean.example/club", "date"),
    ("Beans roasted every week https://evil.example/x", "link other than the landing page"),
    ("x" * 281, "characters"),
])
def test_claims_outside_the_brief_are_rejected(text, problem):
    assert any(problem in p for p in claim_problems(text, C.brief))


def test_claims_in_the_brief_pass():
    assert claim_problems("Beans roasted every week, first bag at $9: "
                          "https://bean.example/club", C.brief) == []


class Scripted(Backend):
    """A backend that returns fixed drafts: the boundary we test around is the model's text."""
    name = "scripted"

    def __init__(self, text: str):
        self.text = text

    @property
    def model(self) -> str:
        return "scripted"

    def _generate(self, messages, cfg):
        return Generation(self.text, "scripted")


def test_a_draft_with_an_invented_offer_falls_back_to_the_template():
    w = CopyWriter(Scripted("Best coffee ever, 2 bags free this week!"), language=lambda t: ["en"])
    copy = w.write(C, "en", "Food & drink")
    assert copy.origin == "template" and copy.rejected
    assert copy.text == template_copy(C, "en", "Food & drink") and not claim_problems(copy.text, C.brief)


def test_a_clean_draft_is_used_with_the_landing_page():
    w = CopyWriter(Scripted("Love coffee? Get beans roasted every week from Bean & Co."),
                   language=lambda t: ["en"])
    copy = w.write(C, "en")
    assert copy.origin == "generated" and copy.text.endswith("https://bean.example/club")


def test_a_draft_in_the_wrong_language_is_rejected():
    w = CopyWriter(Scripted("Love coffee? Get beans roasted every week from Bean & Co."),
                   language=lambda t: ["en"])
    copy = w.write(C, "es", "comida")
    assert copy.origin == "template" and any("language" in r for r in copy.rejected)
    assert copy.text.startswith("Para quienes aman comida")


def test_templates_pass_for_every_demo_campaign_and_language():
    from townsquare.cli.ads import demo_catalog
    for d in demo_catalog():
        c = parse_campaign(d)
        for lang in c.languages():
            t = template_copy(c, lang, "Travel")
            assert len(t) <= 280 and claim_problems(t, c.brief) == [], (c.id, lang, t)


def test_the_local_model_writes_copy_that_passes_or_falls_back():
    from townsquare.llm import get_backend
    w = CopyWriter(get_backend("local"))
    copy = w.write(C, "en", "Food & drink")
    assert claim_problems(copy.text, C.brief) == [] and len(copy.text) <= 280

"""Ad copy: only the brief's claims, at most 280 characters, the user's language, the product
named exactly, reads as an ad, not the template again; a template fallback that always passes."""
from __future__ import annotations

import pytest

from townsquare.ads.campaigns import parse_campaign
from townsquare.ads.creative import (
    HOOK_GRAMMAR,
    CopyWriter,
    brand_problems,
    claim_problems,
    slot_copy,
    template_copy,
)
from townsquare.llm.base import Backend, BackendError, Generation

C = parse_campaign({
    "id": "coffee", "advertiser": "bean", "name": "Coffee club",
    "brief": {"product": "Bean & Co coffee subscription",
              "claims": ["beans roasted every week", "first bag at $9"],
              "landing_url": "https://bean.example/club", "languages": ["en", "es"]},
    "targeting": {"interests": [172]}, "budget": 10, "bid_cpm": 2})


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


SKY = parse_campaign({
    "id": "sky", "advertiser": "sky", "name": "SkyWatch",
    "brief": {"product": "SkyWatch weather app",
              "claims": ["hourly forecasts", "storm alerts on your phone"],
              "landing_url": "https://skywatch.example/app", "languages": ["en", "fr"]},
    "targeting": {"keywords": ["weather"]}, "budget": 10, "bid_cpm": 2})


class Scripted(Backend):
    """A backend that returns fixed drafts (one per seed, in turn): the boundary we test around
    is the model's text."""
    name = "scripted"

    def __init__(self, *texts: str, finish_reason: str = "stop"):
        self.texts = texts
        self.finish_reason = finish_reason
        self.configs = []

    @property
    def model(self) -> str:
        return "scripted"

    def _generate(self, messages, cfg):
        self.configs.append(cfg)
        return Generation(self.texts[cfg.seed % len(self.texts)], "scripted",
                          finish_reason=self.finish_reason)


def writer(*drafts: str, **kw) -> CopyWriter:
    kw.setdefault("samples", 4)          # several drafts: the choice among them is tested too
    kw.setdefault("temperature", 0.7)
    return CopyWriter(Scripted(*drafts), language=lambda t: ["en"], **kw)


def test_a_draft_with_an_invented_offer_falls_back_to_the_template():
    copy = writer("Best coffee ever, 2 bags free this week!").write(C, "en", "Food & drink")
    assert copy.origin == "template" and copy.rejected
    assert copy.text == template_copy(C, "en", "Food & drink") and not claim_problems(copy.text, C.brief)


def test_a_valid_hook_is_served_as_generated_with_the_brief_filled_in_verbatim():
    copy = writer("Mornings deserve a cup that tastes like somewhere.").write(C, "en", "Coffee")
    assert copy.origin == "generated" and copy.drafts == 4
    assert copy.text == slot_copy(C, "en", "Mornings deserve a cup that tastes like somewhere.")
    assert C.brief.product in copy.text and copy.text.endswith("https://bean.example/club")
    assert all(claim in copy.text for claim in C.brief.claims)


def test_the_best_valid_draft_of_several_is_served_and_invalid_ones_never_are():
    w = writer("Here's a possible ad for coffee lovers!",          # self-talk
               "Wake up to coffee that was roasted for you.",       # valid
               "Coffee coffee coffee for every coffee lover.",      # repeats
               "Love coffee? Taste the beans of a real roaster.")   # valid, names the interest
    copy = w.write(C, "en", "Coffee")
    assert copy.origin == "generated"
    assert copy.text == slot_copy(C, "en", "Love coffee? Taste the beans of a real roaster.")
    assert any("talks about itself" in r for r in copy.rejected)
    assert any("repeats itself" in r for r in copy.rejected)


@pytest.mark.parametrize("draft,why", [
    ("SkyWatch weather app SkyWatch weather app SkyWatch weather app", "repeats itself"),
    ("Here's a possible ad for a weather app!", "talks about itself"),
    ("Know what the sky will do before you step out and", "cut off"),
    ("Skywatch tells you when the storm is coming.", "misspelled brand: 'Skywatch'"),
    ("SkyWach tells you when the storm is coming.", "misspelled brand: 'SkyWach'"),
])
def test_degenerate_self_describing_truncated_or_misspelled_hooks_are_never_served(draft, why):
    copy = writer(draft).write(SKY, "en", "Weather")
    assert copy.origin == "template" and copy.text == template_copy(SKY, "en", "Weather")
    assert any(why in r for r in copy.rejected), copy.rejected


@pytest.mark.parametrize("draft,why", [
    # what issue 19 saw served as "generated" (today's single free draft)
    ("SkyWatch Weather App: SkyWatch Weather App: * SkyWatch Weather App * SkyWatch Weather "
     "App * SkyWatch Weather App", "repeats itself"),
    ("Here's a possible ad for SkyWatch weather app: Skywatcher: A Weather Adverary!",
     "talks about itself"),
    ("Stay ahead of storms with Skywatch, hourly forecasts on your phone.",
     "does not name the product"),
    ("Stay ahead of storms with SkyWatch weather app and its hourly forecasts, storm alerts on",
     "cut off"),
    ("For Weather lovers: SkyWatch weather app: hourly forecasts, storm alerts on your phone. "
     "Learn more:", "the template with 1 word(s) changed"),
])
def test_free_drafts_with_the_issues_problems_are_never_served(draft, why):
    copy = writer(draft, slots=False, samples=1).write(SKY, "en", "Weather")
    assert copy.origin == "template"
    assert any(why in r for r in copy.rejected), copy.rejected


def test_a_hook_at_the_grammars_word_limit_is_never_served():
    # at the limit the grammar allows no space, so the model glues its last two words
    b = Scripted("With all the hikes I have found that the best ones are the ones you "
                 "have trained forever.")
    b.supports_grammar = True
    copy = CopyWriter(b, language=lambda t: ["en"]).write(SKY, "en")
    assert copy.origin == "template" and any("16-word limit" in r for r in copy.rejected)


def test_a_draft_cut_at_the_token_limit_is_never_served():
    w = CopyWriter(Scripted("Know what the sky will do before you step out",
                            finish_reason="length"), language=lambda t: ["en"])
    copy = w.write(SKY, "en")
    assert copy.origin == "template" and any("token limit" in r for r in copy.rejected)


def test_the_hook_is_asked_for_under_the_grammar_only_from_backends_that_follow_one():
    b = Scripted("Mornings deserve a better cup.")
    CopyWriter(b, language=lambda t: ["en"], samples=2, temperature=0.7).write(C, "en")
    assert [c.grammar for c in b.configs] == [None, None]          # Scripted follows no grammar
    assert [c.seed for c in b.configs] == [0, 1] and b.configs[0].temperature > 0
    b.supports_grammar = True
    CopyWriter(b, language=lambda t: ["en"], samples=1).write(C, "en")
    assert b.configs[-1].grammar == HOOK_GRAMMAR and b.configs[-1].temperature == 0


def test_the_language_of_the_model_words_is_checked_not_the_briefs():
    # coffee-club's claims are English; a Spanish hook before them is Spanish copy
    lang_of = {"Despierta con un café recién tostado.": "es"}
    w = CopyWriter(Scripted("Despierta con un café recién tostado."),
                   language=lambda ts: [lang_of.get(t.strip(), "en") for t in ts],
                   generate_languages=("en", "es", "fr"))
    assert w.write(C, "es", "Cocina").origin == "generated"
    assert w.write(C, "fr", "Cuisine").origin == "template"


def test_only_english_is_generated_by_default_other_languages_get_the_template():
    lang_of = {"Despierta con un café recién tostado.": "es"}
    b = Scripted("Despierta con un café recién tostado.")
    w = CopyWriter(b, language=lambda ts: [lang_of.get(t.strip(), "en") for t in ts])
    copy = w.write(C, "es", "Cocina")
    assert (copy.origin, copy.drafts, b.configs) == ("template", 0, [])
    assert copy.text.startswith("Para quienes aman Cocina")


def test_a_draft_in_the_wrong_language_is_rejected():
    copy = writer("Love coffee? Wake up to beans roasted for you.",
                  generate_languages=("en", "es")).write(C, "es", "comida")
    assert copy.origin == "template" and any("language en, not es" in r for r in copy.rejected)
    assert copy.text.startswith("Para quienes aman comida")


def test_a_failing_backend_falls_back_to_the_template_with_the_reason():
    class Down(Scripted):
        def _generate(self, messages, cfg):
            raise BackendError("endpoint down")
    copy = CopyWriter(Down(), language=lambda t: ["en"]).write(C, "en")
    assert copy.origin == "template" and copy.rejected == ["generation failed: endpoint down"]


def test_brand_problems_name_the_product_and_near_misses():
    assert brand_problems("SkyWatch weather app: storm alerts.", SKY.brief) == []
    assert brand_problems("Skywatch weather app", SKY.brief) == [
        "does not name the product as the brief does: SkyWatch weather app",
        "misspelled brand: 'Skywatch' for 'SkyWatch'"]
    # ordinary words that happen to be brand words are not misspellings
    bean = brand_problems("Bean & Co coffee subscription: a bean for every morning.", C.brief)
    assert bean == []


def test_templates_pass_for_every_demo_campaign_and_language():
    from townsquare.cli.ads import demo_catalog
    for d in demo_catalog():
        c = parse_campaign(d)
        for lang in c.languages():
            t = template_copy(c, lang, "Travel")
            assert len(t) <= 280 and claim_problems(t, c.brief) == [], (c.id, lang, t)
            assert brand_problems(t, c.brief) == [], (c.id, lang, t)


def test_slot_copy_fits_every_demo_campaign_with_a_long_hook():
    # a hook of 100 characters (the examples are 40-60); a longer one that does not fit is
    # rejected by the 280-character rule like any draft
    from townsquare.cli.ads import demo_catalog
    hook = " ".join(["Wonderful"] * 10) + "."
    for d in demo_catalog():
        c = parse_campaign(d)
        for lang in c.languages():
            t = slot_copy(c, lang, hook)
            assert len(t) <= 280 and c.brief.product in t and t.endswith(c.brief.landing_url)


def test_writer_settings_are_checked():
    with pytest.raises(ValueError, match="samples"):
        CopyWriter(samples=0)
    with pytest.raises(ValueError, match="examples"):
        CopyWriter(examples=9)


def test_the_local_model_writes_copy_that_passes_or_falls_back():
    from townsquare.llm import get_backend
    w = CopyWriter(get_backend("local"), generate_languages=("en", "fr"))
    for c, lang, interest in ((C, "en", "Food & drink"), (SKY, "fr", "Météo")):
        copy = w.write(c, lang, interest)
        assert copy.drafts == 1
        assert w.problems(copy.text, c, lang, generated=False) == [], copy
        if copy.origin == "generated":
            assert c.brief.product in copy.text and w.problems(copy.text, c, lang,
                                                               interest=interest) == []

"""Late stage: language id and near-duplicate linking (the signatures' own tests: tests/text)."""
from __future__ import annotations

from townsquare.ingest.enrich import LateStage
from townsquare.ingest.language import LanguageIdentifier
from townsquare.posts import Post
from townsquare.store.base import Stored

BASE = 1212092628029698048


def test_language_identifier_on_three_languages():
    got = LanguageIdentifier().detect([
        "The river burst its banks overnight and several roads are closed",
        "La rivière a débordé cette nuit et plusieurs routes sont fermées",
        "El río se desbordó anoche y varias carreteras están cerradas",
        "@user https://t.co/x #ok",
    ])
    assert got == ["en", "fr", "es", "und"]


def test_flood_copies_link_to_the_first_original(store):
    msg = "Donate to the Riverton flood relief fund today, every dollar helps families"
    posts = [Stored(Post(id=BASE + i, text=t, source="s").normalized()) for i, t in enumerate([
        msg + " https://t.co/a", "RT @relief: " + msg, msg.upper() + "!!", "Totally unrelated post about lunch",
    ])]
    store.write_batch(posts, [])
    res = LateStage(store, batch_size=2).run()   # crosses batch boundaries
    assert res.processed == 4 and res.linked == 2
    assert [store.dup_of(BASE + i) for i in range(4)] == [None, BASE, BASE, None]
    assert store.stats()["near_duplicates"] == 2


def test_native_repost_links_to_its_original(store):
    store.write_batch([Stored(Post(id=BASE, text="short", source="s").normalized()),
                       Stored(Post(id=BASE + 1, text="RT @a: short", source="s",
                                   repost_of_id=BASE).normalized())], [])
    LateStage(store).run()
    assert store.dup_of(BASE + 1) == BASE

"""Late stage: language id, near-duplicate linking, and parity of the LSH with datasketch."""
from __future__ import annotations

import csv
import random

from datasketch import MinHashLSH

from townsquare.ingest.enrich import LateStage
from townsquare.ingest.language import LanguageIdentifier
from townsquare.ingest.neardup import BANDS, NUM_PERM, ROWS, band_buckets, jaccard, shingles, signature, to_minhash
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


def test_signature_matches_datasketch_minhash():
    sh = shingles("Water rising fast on Main St, stay away from the river")
    sig = signature(sh)
    assert len(sig) == NUM_PERM * 4
    other = signature(shingles("Water rising fast on Main St, stay away from the bridge"))
    assert abs(jaccard(sig, other) - to_minhash(sig).jaccard(to_minhash(other))) < 1e-9


def test_lsh_candidates_match_datasketch(shared_data):
    """Parity: our band buckets give the same candidate sets as datasketch's MinHashLSH with the
    same (bands, rows), on 3,000 real posts."""
    path = next((shared_data / "crisislex_t6").rglob("*.csv"))
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    random.Random(7).shuffle(rows)
    sigs = {}
    for i, r in enumerate(rows[:3000]):
        s = signature(shingles(r[1]))
        if s is not None:
            sigs[i] = s
    lsh = MinHashLSH(num_perm=NUM_PERM, params=(BANDS, ROWS))
    buckets: dict[tuple[int, int], set[int]] = {}
    for i, s in sigs.items():
        lsh.insert(i, to_minhash(s))
        for key in enumerate(band_buckets(s)):
            buckets.setdefault(key, set()).add(i)
    pairs = 0
    for i, s in sigs.items():
        ours = set().union(*(buckets[k] for k in enumerate(band_buckets(s))))
        theirs = set(lsh.query(to_minhash(s)))
        assert ours == theirs
        pairs += len(ours) - 1
    assert pairs > 0   # the sample does contain near-duplicates

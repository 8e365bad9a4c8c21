"""Shingles, the stored signature format, LSH parity with datasketch, the near-duplicate index."""
from __future__ import annotations

import csv
import hashlib
import random

import numpy as np
from datasketch import MinHashLSH

from townsquare.text.shingles import (BANDS, NUM_PERM, ROWS, NearDupIndex, band_buckets, jaccard,
                                      lsh_params, minhash, post_shingles, shingle_hashes,
                                      signature, to_minhash, word_shingles)


def test_word_shingles_and_post_shingles():
    assert word_shingles("Stay SAFE") == {b"stay", b"safe"}          # fewer than n words
    assert word_shingles("") == set()
    assert word_shingles("a_b c-d e", n=2) == {b"a_b c", b"c d", b"d e"}
    # The repost prefix, links and mentions (fullwidth too) are not part of a post's content.
    assert post_shingles("RT @ann: Water rising fast https://t.co/x ＠bob") == \
        post_shingles("water RISING fast, http://t.co/y @cat") == {b"water rising fast"}
    assert post_shingles("MT @ann hello there world") == {b"hello there world"}


def test_signature_format_is_pinned():
    """Signatures are stored: the same text must give the same bytes in every release."""
    sig = signature(post_shingles("Water rising fast on Main St, stay away from the bridge"))
    assert len(sig) == NUM_PERM * 4
    assert hashlib.sha256(sig).hexdigest() == \
        "87849a55c43bd91f6d6354e62d7d2a2b3196cfdfb06967e15237b4df3e9443e3"
    assert band_buckets(sig)[:3] == [5314096534539221640, -3724148384486689152,
                                     7968110404424190546]
    assert signature(set()) is None


def test_signature_matches_datasketch_minhash():
    sh = post_shingles("Water rising fast on Main St, stay away from the river")
    sig = signature(sh)
    assert len(sig) == NUM_PERM * 4
    other = signature(post_shingles("Water rising fast on Main St, stay away from the bridge"))
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
        s = signature(post_shingles(r[1]))
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


def test_lsh_params_favour_recall_at_the_threshold():
    assert lsh_params(0.7, 64) == (BANDS, ROWS)
    for threshold, num_perm in ((0.5, 64), (0.8, 128), (0.95, 16)):
        b, r = lsh_params(threshold, num_perm)
        assert b * r <= num_perm and 1 - (1 - threshold ** r) ** b >= 0.95


def test_near_dup_index_decides_on_the_exact_jaccard():
    words = "the bridge on elm st is closed after the flood so use the north detour".split()
    one_word = words.copy()
    one_word[7] = "before"                      # 3-shingles: Jaccard 10/16, under 0.7
    near = NearDupIndex(threshold=0.7, num_perm=64)
    assert not near.seen(1, word_shingles(" ".join(words)))
    assert near.seen(2, word_shingles(" ".join(words).upper() + "!"))
    assert not near.seen(3, word_shingles(" ".join(one_word)))
    assert not near.seen(4, set())                                       # never indexed
    assert sorted(near.sets) == [1, 3]


def test_seen_sketch_is_seen_with_the_work_done_elsewhere():
    texts = ["water rising fast on main st stay away", "Water rising fast on Main St, stay away!",
             "schools closed tomorrow in the county", ""]
    a, b = NearDupIndex(0.7, 64), NearDupIndex(0.7, 64)
    for i, t in enumerate(texts):
        sh = word_shingles(t)
        hv, hashes = (minhash(sh, 64).hashvalues, shingle_hashes(sh)) if sh else (None, None)
        assert a.seen(i, sh) == b.seen_sketch(i, hv, hashes)
    assert sorted(a.sets) == sorted(b.sets) == [0, 2]
    assert all(np.array_equal(a.sets[k], b.sets[k]) for k in a.sets)

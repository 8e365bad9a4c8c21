"""Document frequencies by hash (``stories.counts``): a fixed table that holds no text."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from townsquare.stories.counts import HashedCounts


def test_counts_are_those_of_a_dictionary_where_no_two_keys_share_a_slot():
    words = [f"w{i}" for i in range(2_000)]
    df, exact = HashedCounts(bits=20), {}
    for i in range(0, 2_000, 7):
        post = words[i:i + 30]
        df.add(post)
        for w in post:
            exact[w] = exact.get(w, 0) + 1
    slots = df.slots(words)
    alone = [w for w, s in zip(words, slots.tolist()) if (slots == s).sum() == 1]
    assert len(alone) > 1_900
    assert [df[w] for w in alone] == [exact.get(w, 0) for w in alone]
    assert df.of(alone).tolist() == [exact.get(w, 0) for w in alone]


def test_a_shared_slot_only_ever_raises_a_count():
    df = HashedCounts(bits=8)                        # 256 slots: many keys share one
    words = [f"word{i}" for i in range(1_000)]
    df.add(words)
    assert all(df[w] >= 1 for w in words) and int(df.counts.sum()) == 1_000


def test_the_table_keeps_its_size_and_its_copy_holds_no_text():
    df = HashedCounts(bits=16)
    df.add(["zqxw7 tower", "bridge"])
    body = pickle.dumps(df)
    assert b"zqxw7" not in body and b"bridge" not in body
    again = pickle.loads(body)
    assert again == df and again.counts.shape == (1 << 16,) and again["bridge"] == 1
    df.add([f"x{i}" for i in range(10_000)])
    assert df.counts.shape == (1 << 16,)


def test_subtracting_floors_at_zero_and_tables_add_only_at_one_size():
    a, b = HashedCounts(bits=10), HashedCounts(bits=10)
    a.add(["flood"]); b.add(["flood", "fire"])
    a.update(b)
    assert (a["flood"], a["fire"]) == (2, 1)
    a.subtract("fire", 3); a.at_least("flood", 5)
    assert (a["fire"], a["flood"]) == (0, 5)
    with pytest.raises(ValueError, match="bits"):
        a.update(HashedCounts(bits=12))
    with pytest.raises(ValueError, match="bits"):
        HashedCounts(bits=4)
    assert np.issubdtype(a.counts.dtype, np.integer)

"""Document frequencies in a table of fixed size: counts by a stable hash of the feature.

    >>> df = HashedCounts(bits=16)
    >>> df.add(["flood", "flood bridge", "bridge"]).tolist(), df.add(["flood"]).tolist()
    ([1, 1, 1], [2])
    >>> df["flood"], df["bridge"], df["unseen"]
    (2, 1, 0)
    >>> df.of(["flood", "bridge"]).tolist()
    [2, 1]
    >>> df.subtract("flood", 5); df["flood"]
    0
    >>> import pickle; pickle.loads(pickle.dumps(df)) == df
    True

Why a table rather than a dictionary of words: the story clusterer counts every feature it ever
saw (words and two-word phrases; 941,338 of them at 184,470 posts, three in four seen once), so
a dictionary grew with the stream without bound (89 MB of the clusterer's 330 MB there) and
kept the text of every phrase. A table of ``2**bits`` counts stays 16 MB (the default 22 bits)
whatever the stream, copies as one block (the dictionary took ~0.2 s of each save of the
stories: a save at 184,470 posts went from 1.8 to 1.3 s), and holds no text: a deleted post's
words live on in no key. The cost is collisions: two features in one slot share a count (with 941,338 features
in 4,194,304 slots, ~20% of features share a slot, mostly with features seen once), which
raises a rare word's count, never lowers a common one's; ``eval/stories.py`` measures the
clustering with it (see ``StoryClusterer``).

The hash is CRC-32 of the UTF-8 bytes (``zlib``): stable across processes and Python builds
(``hash`` of a string is salted per process), so a saved state reads the same counts.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np

__all__ = ["DF_BITS", "HashedCounts"]

DF_BITS = 22


class HashedCounts:
    """Non-negative counts of string keys in ``2**bits`` int32 slots (see the module)."""

    def __init__(self, bits: int = DF_BITS):
        if not 8 <= bits <= 30:
            raise ValueError(f"bits must be in [8, 30], got {bits}")
        self.bits = bits
        self.counts = np.zeros(1 << bits, dtype=np.int32)                  # (2**bits,)

    def slots(self, keys: Iterable[str]) -> np.ndarray:
        """Each key's slot: (n,) int64."""
        mask = (1 << self.bits) - 1
        return np.fromiter((zlib.crc32(k.encode()) & mask for k in keys), dtype=np.int64)

    def add(self, keys: Iterable[str]) -> np.ndarray:
        """One more for each key (keys of one post are distinct; two may share a slot); their
        counts after it, (n,) int32, which the caller would otherwise hash again."""
        slots = self.slots(keys)
        np.add.at(self.counts, slots, 1)
        return self.counts[slots]

    def of(self, keys: Iterable[str]) -> np.ndarray:
        """Each key's count: (n,) int32."""
        return self.counts[self.slots(keys)]

    def __getitem__(self, key: str) -> int:
        return int(self.counts[zlib.crc32(key.encode()) & ((1 << self.bits) - 1)])

    def subtract(self, key: str, k: int) -> None:
        """``k`` fewer for ``key``, not below 0 (a deleted post's feature)."""
        i = zlib.crc32(key.encode()) & ((1 << self.bits) - 1)
        self.counts[i] = max(0, int(self.counts[i]) - k)

    def at_least(self, key: str, k: int) -> None:
        """Raise ``key``'s count to ``k`` when below it (a feature some story still holds)."""
        i = zlib.crc32(key.encode()) & ((1 << self.bits) - 1)
        self.counts[i] = max(int(self.counts[i]), k)

    def __getstate__(self) -> dict:
        # The slots in use and their counts (most slots are empty): a saved state's size
        # follows the features seen, up to the table's.
        used = np.flatnonzero(self.counts).astype(np.uint32)                  # (m,)
        return {"bits": self.bits, "slots": used, "counts": self.counts[used]}

    def __setstate__(self, state: dict) -> None:
        self.bits = state["bits"]
        self.counts = np.zeros(1 << self.bits, dtype=np.int32)
        self.counts[state["slots"]] = state["counts"]

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, HashedCounts) and other.bits == self.bits
                and bool(np.array_equal(other.counts, self.counts)))

    __hash__ = None                 # mutable: equal tables need not hash alike

    def update(self, other: "HashedCounts") -> None:
        """Add another table's counts (of the same size)."""
        if other.bits != self.bits:
            raise ValueError(f"tables of {other.bits} and {self.bits} bits do not add up")
        self.counts += other.counts

"""Near duplicates: word shingles, MinHash signatures, LSH band buckets, a near-duplicate index.

    >>> a = signature(post_shingles("Water rising fast on Main St, stay away https://t.co/abc"))
    >>> b = signature(post_shingles("RT @cityops: Water rising fast on Main St, stay away https://t.co/xyz"))
    >>> jaccard(a, b) > 0.7
    True
    >>> len(band_buckets(a)) == BANDS
    True
    >>> near = NearDupIndex(threshold=0.7, num_perm=64)
    >>> [near.seen(i, word_shingles(t)) for i, t in enumerate(["the bridge on Elm St is closed",
    ...                                                         "The bridge on Elm St is closed!"])]
    [False, True]

Two users, one set of primitives (datasketch underneath):

- the ingest late stage (``townsquare.ingest.enrich``) signs each post (``post_shingles``,
  ``signature``) and keeps the signatures and their band buckets in the store, so the index
  survives restarts and grows incrementally (datasketch's own ``MinHashLSH`` lives in memory or in
  Redis/Cassandra, neither of which an embedded deployment has). The stored format is fixed here:
  ``NUM_PERM`` permutations from ``SEED`` in datasketch's ``SCHEME``, ``BANDS`` bands of ``ROWS``
  rows; changing any of them makes stored signatures incomparable with new ones.
- the training corpus (``townsquare.train.corpus`` and its Dask job ``townsquare.jobs.corpus``)
  drops near-duplicate posts with ``NearDupIndex``: datasketch's ``MinHashLSH`` for candidates,
  then the exact Jaccard similarity of the shingle sets decides.

Late-stage parameters: 64 permutations in 16 bands of 4 rows. A pair with Jaccard similarity s
becomes a candidate with probability 1 - (1 - s^4)^16: 0.999 at s=0.7, 0.65 at s=0.4 (then
rejected by the signature check at ``THRESHOLD``), 0.03 at s=0.2. The parity test checks the
candidates against datasketch's ``MinHashLSH(params=(16, 4))`` on real posts.
"""
from __future__ import annotations

import hashlib
import re
import struct
from functools import lru_cache

import numpy as np
from datasketch import MinHash, MinHashLSH

from townsquare.text.rules import MENTION_LOOSE, URL_LOOSE

__all__ = ["BANDS", "NUM_PERM", "NearDupIndex", "ROWS", "SCHEME", "SEED", "THRESHOLD",
           "band_buckets", "jaccard", "lsh_params", "minhash", "minhash_template", "post_shingles",
           "shingle_hashes", "signature", "to_minhash", "word_shingles"]

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
THRESHOLD = 0.7  # estimated Jaccard at or above which two posts are near-duplicates
SEED = 1
SCHEME = "affine32"  # datasketch 2.x hashing scheme; fixed so stored signatures stay comparable

_WORD = re.compile(r"\w+")
_RT_PREFIX = re.compile(r"^\s*(?:rt|mt)\s*@\w+:?\s*", re.IGNORECASE)


# --- shingles ------------------------------------------------------------------------------------
def word_shingles(text: str, n: int = 3) -> set[bytes]:
    """Word n-grams of ``text``, case folded (words: runs of ``\\w``). A text of fewer than ``n``
    words gives its words.

    >>> sorted(word_shingles("Stay away, STAY safe"))
    [b'away stay safe', b'stay away stay']
    """
    words = _WORD.findall(text.casefold())
    if len(words) < n:
        return {w.encode() for w in words}
    return {" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)}


def post_shingles(text: str, n: int = 3) -> set[bytes]:
    """``word_shingles`` of a post's content: no repost prefix ("RT @ann:"), URLs or @mentions.

    These vary between copies of the same message (t.co links differ per post), so they are not
    part of what makes two posts "the same". The late stage's signatures are made of these.
    """
    body = _RT_PREFIX.sub("", text)
    return word_shingles(MENTION_LOOSE.sub(" ", URL_LOOSE.sub(" ", body)), n)


def shingle_hashes(sh: set[bytes]) -> np.ndarray:
    """A shingle set as its sorted, distinct 64-bit hashes: what ``NearDupIndex`` keeps per post
    for the exact Jaccard check (8 bytes a shingle instead of the shingle's text)."""
    return np.unique(np.array([int.from_bytes(hashlib.blake2b(s, digest_size=8).digest(), "big")
                               for s in sh], dtype=np.uint64))


# --- MinHash -------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def minhash_template(num_perm: int = NUM_PERM) -> MinHash:
    """An empty MinHash with the permutations of ``SEED`` and ``SCHEME``. Building permutations is
    the expensive part, so each process builds them once per ``num_perm``; never update this
    object itself: ``minhash`` works on a copy."""
    return MinHash(num_perm=num_perm, seed=SEED, scheme=SCHEME)


def minhash(sh: set[bytes], num_perm: int = NUM_PERM) -> MinHash:
    """The MinHash of a shingle set."""
    m = minhash_template(num_perm).copy()
    m.update_batch(list(sh))
    return m


def _from_values(hashvalues: np.ndarray) -> MinHash:
    t = minhash_template(len(hashvalues))
    return MinHash(seed=SEED, hashvalues=hashvalues, permutations=t.permutations, scheme=SCHEME)


def signature(sh: set[bytes]) -> bytes | None:
    """MinHash signature (``NUM_PERM`` uint32 values as bytes), or None for an empty shingle set:
    the form the store keeps."""
    if not sh:
        return None
    return minhash(sh).hashvalues.astype("<u4").tobytes()


def to_minhash(sig: bytes) -> MinHash:
    """The datasketch object for a stored signature (for parity checks and datasketch tools)."""
    return _from_values(np.frombuffer(sig, dtype="<u4").astype(np.uint64))


def band_buckets(sig: bytes) -> list[int]:
    """One bucket id per band: a signed 64-bit digest of the band's rows (fits SQLite INTEGER)."""
    width = ROWS * 4
    return [struct.unpack("<q", hashlib.blake2b(sig[b * width:(b + 1) * width],
                                                digest_size=8).digest())[0]
            for b in range(BANDS)]


def jaccard(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures: the share of equal MinHash values."""
    return float(np.count_nonzero(np.frombuffer(a, "<u4") == np.frombuffer(b, "<u4"))) / NUM_PERM


# --- the near-duplicate index --------------------------------------------------------------------
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """Bands b and rows r (b * r <= num_perm) with the fewest candidates among those that make a
    pair at ``threshold`` a candidate with probability >= 0.95 (the most rows per band that do):
    at 0.7 and 64 permutations, 16 bands of 4 rows, the late stage's own, which finds 99% of the
    pairs at 0.7 and a third of those at 0.4 (each one an exact check).

    >>> lsh_params(0.7, 64)
    (16, 4)
    """
    for r in range(num_perm, 0, -1):
        b = num_perm // r
        if 1 - (1 - threshold ** r) ** b >= 0.95:
            return b, r
    return num_perm, 1


class NearDupIndex:
    """Kept posts' MinHashes in an LSH index (``lsh_params``); ``seen`` checks a post against
    them with the exact Jaccard similarity of the shingle sets, and indexes it if it is new."""

    def __init__(self, threshold: float, num_perm: int):
        self.threshold = threshold
        self.num_perm = num_perm
        self.lsh = MinHashLSH(num_perm=num_perm, params=lsh_params(threshold, num_perm))
        self.sets: dict[int, np.ndarray] = {}   # post id -> its shingles' hashes, sorted

    def seen(self, post_id: int, sh: set[bytes]) -> bool:
        """Whether a post with shingles ``sh`` is a near duplicate of one indexed before; a post
        without shingles never is (and is not indexed)."""
        if not sh:
            return False
        return self._check(post_id, minhash(sh, self.num_perm), shingle_hashes(sh))

    def seen_sketch(self, post_id: int, hashvalues: np.ndarray | None,
                    hashes: np.ndarray | None) -> bool:
        """``seen`` with the post's MinHash values (``minhash(sh).hashvalues``; None: no
        shingles) and ``shingle_hashes(sh)`` computed elsewhere (the Dask corpus job's workers)."""
        if hashvalues is None or hashes is None:
            return False
        return self._check(post_id, _from_values(hashvalues), hashes)

    def _check(self, post_id: int, m: MinHash, mine: np.ndarray) -> bool:
        """Candidates from the LSH index, then the exact Jaccard of the shingle sets decides."""
        for other in self.lsh.query(m):
            theirs = self.sets[other]
            common = len(np.intersect1d(mine, theirs, assume_unique=True))
            if common / (len(mine) + len(theirs) - common) >= self.threshold:
                return True
        self.lsh.insert(post_id, m, check_duplication=False)
        self.sets[post_id] = mine
        return False

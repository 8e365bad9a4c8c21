"""Near-duplicate sketches: MinHash signatures over word shingles, LSH band buckets.

Small pure functions (after datasketch); the late stage (``townsquare.ingest.enrich``) uses them to
link reposts and copy-paste floods to an original, and the store keeps the buckets in a table so
the index survives restarts and grows incrementally (datasketch's own ``MinHashLSH`` lives in
memory or in Redis/Cassandra, neither of which an embedded deployment has).

    >>> a = signature(shingles("Water rising fast on Main St, stay away https://t.co/abc"))
    >>> b = signature(shingles("RT @cityops: Water rising fast on Main St, stay away https://t.co/xyz"))
    >>> jaccard(a, b) > 0.7
    True
    >>> len(band_buckets(a)) == BANDS
    True

Parameters: 64 permutations in 16 bands of 4 rows. A pair with Jaccard similarity s becomes a
candidate with probability 1 - (1 - s^4)^16: 0.999 at s=0.7, 0.65 at s=0.4 (then rejected by the
signature check at ``THRESHOLD``), 0.03 at s=0.2. The parity test checks the candidates against
datasketch's ``MinHashLSH(params=(16, 4))`` on real posts.
"""
from __future__ import annotations

import hashlib
import re
import struct

import numpy as np
from datasketch import MinHash

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
THRESHOLD = 0.7  # estimated Jaccard at or above which two posts are near-duplicates
SEED = 1
SCHEME = "affine32"  # datasketch 2.x hashing scheme; fixed so stored signatures stay comparable

_RT_PREFIX = re.compile(r"^\s*(?:rt|mt)\s*@\w+:?\s*", re.IGNORECASE)
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"[@＠]\w+")
_WORD = re.compile(r"\w+", re.UNICODE)
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)  # the permutations, built once


def shingles(text: str, n: int = 3) -> set[bytes]:
    """Word n-grams of the post's content: no repost prefix, URLs or @mentions, case folded.

    These vary between copies of the same message (t.co links differ per post), so they are not
    part of what makes two posts "the same". Posts shorter than ``n`` words give their words.
    """
    body = _RT_PREFIX.sub("", text)
    body = _MENTION.sub(" ", _URL.sub(" ", body)).casefold()
    words = _WORD.findall(body)
    if len(words) < n:
        return {w.encode() for w in words}
    return {" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)}


def signature(sh: set[bytes]) -> bytes | None:
    """MinHash signature (``NUM_PERM`` uint32 values as bytes), or None for an empty shingle set."""
    if not sh:
        return None
    m = _TEMPLATE.copy()
    m.update_batch(list(sh))
    return m.hashvalues.astype("<u4").tobytes()


def to_minhash(sig: bytes) -> MinHash:
    """The datasketch object for a stored signature (for parity checks and datasketch tools)."""
    return MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME,
                   hashvalues=np.frombuffer(sig, dtype="<u4").astype(np.uint64))


def band_buckets(sig: bytes) -> list[int]:
    """One bucket id per band: a signed 64-bit digest of the band's rows (fits SQLite INTEGER)."""
    width = ROWS * 4
    return [struct.unpack("<q", hashlib.blake2b(sig[b * width:(b + 1) * width],
                                                digest_size=8).digest())[0]
            for b in range(BANDS)]


def jaccard(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity: the share of equal MinHash values."""
    return float(np.count_nonzero(np.frombuffer(a, "<u4") == np.frombuffer(b, "<u4"))) / NUM_PERM

"""Export the store as JSON Lines in townsquare's own format, which ``ingest`` reads back.

    >>> import io
    >>> from townsquare.store import open_store
    >>> buf = io.BytesIO()
    >>> with open_store(":memory:") as s:
    ...     export_jsonl(s, buf)
    0

Each line is ``Post.to_dict()`` (ids as strings, ``created_at`` in ISO 8601 UTC) with ``labels``
from the post's first source and ``sources``: every source that holds the post, with its labels.
Near-duplicate links and the detected language are derived data and are recomputed on ingest
(a detected language is exported as the post's ``lang``).
"""
from __future__ import annotations

from typing import BinaryIO

import orjson

from townsquare.store.base import Store


def export_jsonl(store: Store, out: BinaryIO) -> int:
    """Write every post (id order) to ``out``; returns how many."""
    n = 0
    for post in store.iter_posts():
        sources = store.sources_of(post.id)
        d = post.to_dict()
        d["labels"] = (sources.get(post.source) or {}).get("labels", {})
        d["sources"] = {src: info["labels"] for src, info in sources.items()}
        out.write(orjson.dumps(d, option=orjson.OPT_SORT_KEYS) + b"\n")
        n += 1
    return n

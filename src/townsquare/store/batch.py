"""What a write does before it touches a database, the same for both stores.

    >>> from townsquare.posts import Post
    >>> from townsquare.store.base import Stored, WriteResult
    >>> b = prepare_batch([Stored(Post(id=1212092628029698048, text="hi", source="s").normalized())], [])
    >>> r = WriteResult()
    >>> changed, sources, order = plan_batch(b.records, [1212092628029698048], set(), {}, set(), r)
    >>> (r.inserted, len(order), sources[0][1])
    (1, 1, 's')

``prepare_batch`` turns posts into rows and content hashes (CPU work that may run in another
process than the writes); ``plan_batch`` decides, from what the store already holds, which posts
are new, changed, unchanged or deleted, and which provenance rows to write. The SQLite and
PostgreSQL stores both call them, so an upsert means the same on both backends and the content
hashes agree (a store copied between backends re-ingests as unchanged).
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import orjson

from townsquare.posts import Post
from townsquare.store.base import Prepared, Quarantined, Stored, WriteResult


def _dumps(v: Any) -> str:
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


def _row(p: Post) -> tuple:
    # in ``sqlreads.POST_COLUMNS`` order, lists as JSON (the embedded store's types)
    return (p.id, p.created_at, p.author_id, p.author_handle, p.author_name, p.text, p.lang,
            _dumps(p.hashtags) if p.hashtags else None,
            _dumps(p.mentions) if p.mentions else None,
            _dumps(p.urls) if p.urls else None,
            _dumps(p.cashtags) if p.cashtags else None,
            int(p.has_media), p.reply_to_id, p.reply_to_user_id, p.repost_of_id, p.quote_of_id,
            p.conversation_id, p.retweet_count, p.like_count, p.reply_count, p.quote_count,
            p.lon, p.lat, p.source)


def _hash(row: tuple) -> int:
    digest = hashlib.blake2b(orjson.dumps(row), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def merge_labels(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Labels of two annotations of one post: a key whose values differ keeps them all, sorted.

    >>> merge_labels({"label": "on-topic", "folder": "x"}, {"label": "off-topic", "folder": "x"})
    {'folder': 'x', 'label': ['off-topic', 'on-topic']}
    """
    out: dict[str, Any] = {}
    for k in sorted(a.keys() | b.keys()):
        values: list = []
        for d in (a, b):
            if k in d:
                for v in (d[k] if isinstance(d[k], list) else [d[k]]):
                    if v not in values:
                        values.append(v)
        out[k] = values[0] if len(values) == 1 else sorted(values, key=orjson.dumps)
    return out


def labels_within(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether every label in ``new`` is already in ``old`` (as the value or one of its values)."""
    for k, v in new.items():
        have = old.get(k)
        if v != have and not (isinstance(have, list) and v in have):
            return False
    return True


def prepare_batch(posts: Sequence[Stored], quarantined: Sequence[Quarantined]) -> Prepared:
    """A batch as plain records, without touching a database: the CPU part of a write."""
    now = int(time.time() * 1000)
    # One record per (id, source); a later record in the batch wins (the same rule as across
    # batches). Two sources of one post both keep their provenance.
    latest: dict[tuple[int, str], list] = {}
    for s in posts:
        p = s.post
        row = _row(p)
        key = (p.id, p.source)
        prev = latest.get(key)
        labels = p.labels or {}
        if prev is not None and prev[1] == row:
            labels = merge_labels(prev[4], labels)   # same post, another annotation of it
        latest[key] = [row, row, s.file, s.line, labels]
    return Prepared(
        records=[(pid, src, row, _hash(row), file, line, _dumps(labels) if labels else None)
                 for (pid, src), (row, _, file, line, labels) in latest.items()],
        quarantined=[(q.file, q.line, q.source, q.reason, q.raw[:2000], now)
                     for q in quarantined],
        now=now)


def plan_batch(records: Sequence[tuple], ids: Sequence[int], existing: set[int],
               seen: dict[tuple[int, str], tuple[int, str | None]], gone: set[int],
               result: WriteResult) -> tuple[dict[int, tuple], list[tuple], list[tuple]]:
    """Decide a prepared batch against the store's state: ``existing`` ids, ``seen`` (id,
    source) -> (content hash, labels JSON) of earlier writes, ``gone`` deleted ids. Counts (and
    statuses, when ``result.statuses`` is a dict) go into ``result``. Returns (id -> the record
    that writes its row, provenance rows ``(id, source, file, line, labels, hash)``, the records
    to write in ``ids`` order: the order in which they take their ``seq``)."""
    # A record is unchanged when its own source gave the same row last time and its labels
    # are already there, whatever another dataset wrote over the row since: re-ingesting
    # both stays a no-op. Another record of the same post from the same source (a second
    # annotation) adds its labels to the source's labels.
    changed: dict[int, tuple] = {}             # id -> the record that writes the row
    relabeled: set[int] = set()
    source_rows = []
    for rec in records:
        pid, src, row, h, file, line, labels = rec
        if pid in gone:
            continue
        old = seen.get((pid, src))
        if old is not None and old[0] == h:
            if labels == old[1]:
                continue
            new_labels = orjson.loads(labels) if labels else {}
            old_labels = orjson.loads(old[1]) if old[1] else {}
            if labels_within(new_labels, old_labels):
                continue
            labels = _dumps(merge_labels(old_labels, new_labels))
            relabeled.add(pid)
        else:
            changed[pid] = rec
        source_rows.append((pid, src, file, line, labels, h))
    status = result.statuses
    order = []
    for pid in ids:
        if pid in gone:
            result.skipped_deleted += 1
            what = "deleted"
        elif pid not in changed:
            what = "updated" if pid in relabeled else "unchanged"
        else:
            what = "updated" if pid in existing else "inserted"
            order.append(changed[pid])
        if what == "updated":
            result.updated += 1
        elif what == "unchanged":
            result.unchanged += 1
        elif what == "inserted":
            result.inserted += 1
        if status is not None:
            status[pid] = what
    return changed, source_rows, order

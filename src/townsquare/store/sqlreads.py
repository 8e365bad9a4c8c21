"""Reads whose SQL is the same on both stores, written once (mixed into each backend), and the
``posts`` columns with the two ways a row of them becomes a ``Post``.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> s = SQLiteStore(":memory:")
    >>> s.count(), s.deleted_ids(), s.stats()["late_stage"]["pending_posts"]
    (0, set(), 0)
    >>> row = (1212092628029698048, 0, None, "ann", None, "hi #x", "en", '["x"]') + (None,) * 15
    >>> post_from_json_row(row + ("demo",)).hashtags
    ['x']

The SQL here is portable (standard SQL over the tables both stores share) and uses ``?``
placeholders; each backend runs it through its ``_rows(sql, args)``, which on PostgreSQL turns
``?`` into psycopg's ``%s``. What differs between the backends stays in them: writes, the full
text index, dates (``_DAY_SQL``) and string functions (``_REASON_KIND_SQL``), and their extras.
"""
from __future__ import annotations

import abc
import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from townsquare.posts import Post
from townsquare.store.base import PendingEnrichment, Quarantined, author_key

# Column order of ``posts`` as written by ``write_batch`` (everything but the bookkeeping columns).
POST_COLUMNS = ("id", "created_at", "author_id", "author_handle", "author_name", "text", "lang",
                "hashtags", "mentions", "urls", "cashtags", "has_media", "reply_to_id",
                "reply_to_user_id", "repost_of_id", "quote_of_id", "conversation_id",
                "retweet_count", "like_count", "reply_count", "quote_count", "lon", "lat",
                "source")
LIST_COLUMNS = frozenset({"hashtags", "mentions", "urls", "cashtags"})
POST_SELECT = f"SELECT {', '.join(POST_COLUMNS)} FROM posts"


def post_from_json_row(r: Sequence[Any]) -> Post:
    """A ``Post`` from a row of ``POST_COLUMNS`` as SQLite returns it (lists as JSON text)."""
    (pid, created_at, author_id, handle, name, text, lang, hashtags, mentions, urls, cashtags,
     has_media, reply_to_id, reply_to_user_id, repost_of_id, quote_of_id, conversation_id,
     retweet_count, like_count, reply_count, quote_count, lon, lat, source) = r[:len(POST_COLUMNS)]
    return Post(
        id=pid, text=text, source=source, created_at=created_at, author_id=author_id,
        author_handle=handle, author_name=name, lang=lang,
        hashtags=orjson.loads(hashtags) if hashtags else [],
        mentions=orjson.loads(mentions) if mentions else [],
        urls=orjson.loads(urls) if urls else [],
        cashtags=orjson.loads(cashtags) if cashtags else [],
        has_media=bool(has_media), reply_to_id=reply_to_id, reply_to_user_id=reply_to_user_id,
        repost_of_id=repost_of_id, quote_of_id=quote_of_id, conversation_id=conversation_id,
        retweet_count=retweet_count, like_count=like_count, reply_count=reply_count,
        quote_count=quote_count, lon=lon, lat=lat,
    )


def post_from_array_row(r: Sequence[Any]) -> Post:
    """A ``Post`` from a row of ``POST_COLUMNS`` as PostgreSQL returns it (lists as arrays)."""
    (pid, created_at, author_id, handle, name, text, lang, hashtags, mentions, urls, cashtags,
     has_media, reply_to_id, reply_to_user_id, repost_of_id, quote_of_id, conversation_id,
     retweet_count, like_count, reply_count, quote_count, lon, lat, source) = r[:len(POST_COLUMNS)]
    return Post(
        id=pid, text=text, source=source, created_at=created_at, author_id=author_id,
        author_handle=handle, author_name=name, lang=lang, hashtags=list(hashtags or []),
        mentions=list(mentions or []), urls=list(urls or []), cashtags=list(cashtags or []),
        has_media=bool(has_media), reply_to_id=reply_to_id, reply_to_user_id=reply_to_user_id,
        repost_of_id=repost_of_id, quote_of_id=quote_of_id, conversation_id=conversation_id,
        retweet_count=retweet_count, like_count=like_count, reply_count=reply_count,
        quote_count=quote_count, lon=lon, lat=lat)


class SharedReads(abc.ABC):
    """Needs from the backend: ``_rows(sql, args) -> list of rows``, ``_to_post(row) -> Post``,
    ``_meta(key)``, and the two SQL expressions below."""

    _DAY_SQL: str            # the UTC day of ``created_at`` as 'YYYY-MM-DD'
    _REASON_KIND_SQL: str    # a quarantine reason up to its first ':'

    @abc.abstractmethod
    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list:
        """Run ``sql`` (``?`` placeholders) and return all its rows."""

    @abc.abstractmethod
    def _to_post(self, row: Sequence[Any]) -> Post:
        """A ``Post`` from a row of the ``posts`` columns as this backend returns them."""

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = self._rows(sql, args)
        return rows[0][0] if rows else None

    # --- posts -----------------------------------------------------------------------------------
    def get(self, post_id: int) -> Post | None:
        rows = self._rows(f"{POST_SELECT} WHERE id = ?", (post_id,))
        return self._to_post(rows[0]) if rows else None

    def iter_posts(self, batch_size: int = 5000, *, by_time: bool = False) -> Iterator[Post]:
        # Keyset pages (on id, or on (created_at, id)): each page is an index seek, and posts
        # written between pages neither repeat nor shift the rest.
        if by_time:
            rows = self._rows(f"{POST_SELECT} ORDER BY created_at, id LIMIT ?", (batch_size,))
            while rows:
                yield from (self._to_post(r) for r in rows)
                last = rows[-1]
                rows = self._rows(f"{POST_SELECT} WHERE (created_at, id) > (?, ?) "
                                  f"ORDER BY created_at, id LIMIT ?", (last[1], last[0], batch_size))
            return
        last_id = -(1 << 63)
        while rows := self._rows(f"{POST_SELECT} WHERE id > ? ORDER BY id LIMIT ?",
                                 (last_id, batch_size)):
            yield from (self._to_post(r) for r in rows)
            last_id = rows[-1][0]

    def posts_between(self, since_ms: int | None = None, until_ms: int | None = None, *,
                      batch_size: int = 5000) -> Iterator[Post]:
        # Keyset pages over the (created_at, id) index, starting at since_ms: a range read, so
        # the trends of the last day cost the last day's posts, not the whole store.
        lo = (-(1 << 63) if since_ms is None else int(since_ms), -(1 << 63))
        hi = (1 << 63) - 1 if until_ms is None else int(until_ms)
        while rows := self._rows(f"{POST_SELECT} WHERE (created_at, id) > (?, ?) AND created_at < ? "
                                 f"ORDER BY created_at, id LIMIT ?", (*lo, hi, batch_size)):
            yield from (self._to_post(r) for r in rows)
            lo = (rows[-1][1], rows[-1][0])

    def count(self) -> int:
        return self._one("SELECT count(*) FROM posts")

    def dup_of(self, post_id: int) -> int | None:
        return self._one("SELECT dup_of FROM posts WHERE id = ?", (post_id,))

    def posts_since(self, seq: int, limit: int) -> list[tuple[int, int, str]]:
        """``(id, seq, text)`` of posts ingested (or whose text changed) after ``seq``, in order:
        how derived indexes catch up."""
        return [tuple(r) for r in self._rows(
            "SELECT id, seq, text FROM posts WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))]

    def max_seq(self) -> int:
        return int(self._meta("next_seq") or 1) - 1

    def ingested_at_after(self, seq: int) -> int | None:
        """When (ms since epoch) the first post after ``seq`` in ingest order was first
        ingested; None when there is none. One index seek: how long a derived index behind
        ``seq`` has been behind."""
        return self._one("SELECT ingested_at FROM posts WHERE seq > ? ORDER BY seq LIMIT 1",
                         (seq,))

    def newest_created_at(self) -> int | None:
        return self._one("SELECT max(created_at) FROM posts")

    # --- governance and provenance -----------------------------------------------------------------
    def deleted_ids(self) -> set[int]:
        return {r[0] for r in self._rows("SELECT id FROM deleted")}

    def opted_out(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT author FROM opt_outs")}

    def is_opted_out(self, author: str | int) -> bool:
        return bool(self._rows("SELECT 1 FROM opt_outs WHERE author = ?", (author_key(author),)))

    def opted_out_at(self, author: str | int) -> int | None:
        return self._one("SELECT opted_out_at FROM opt_outs WHERE author = ?",
                         (author_key(author),))

    def sources_of(self, post_id: int) -> dict[str, dict[str, Any]]:
        return {src: {"file": f, "line": ln, "labels": orjson.loads(lb) if lb else {}}
                for src, f, ln, lb in self._rows(
                    "SELECT source, file, line, labels FROM post_sources WHERE post_id = ? "
                    "ORDER BY source", (post_id,))}

    def quarantine_items(self, limit: int = 100) -> list[Quarantined]:
        return [Quarantined(source=s, file=f, line=ln, reason=r, raw=raw)
                for f, ln, s, r, raw in self._rows(
                    "SELECT file, line, source, reason, raw FROM quarantine "
                    "ORDER BY file, line LIMIT ?", (limit,))]

    # --- the late stage and embeddings, behind their watermarks ----------------------------------
    def pending_enrichment(self, limit: int) -> list[PendingEnrichment]:
        watermark = int(self._meta("enriched_seq") or 0)
        return [PendingEnrichment(*r) for r in self._rows(
            "SELECT id, seq, text, lang, repost_of_id FROM posts WHERE seq > ? ORDER BY seq "
            "LIMIT ?", (watermark, limit))]

    def embed_model(self) -> str | None:
        return self._meta("embed_model")

    def pending_embedding(self, limit: int) -> list[tuple[int, int, str]]:
        """``(id, seq, text)`` of posts not embedded yet, in ingest order."""
        return self.posts_since(int(self._meta("embedded_seq") or 0), limit)

    def vector_ids(self) -> set[int]:
        return {r[0] for r in self._rows("SELECT post_id FROM vectors")}

    def vector_count(self) -> int:
        return self._one("SELECT count(*) FROM vectors")

    def embedding_pending(self, at_most: int | None = None) -> int:
        """Posts not embedded yet: an index range count, counted up to ``at_most`` when given
        (what a search reports; the range is e5's whole backlog, ~28 ms to count at 1.1M
        posts, 0.3 ms up to 10,000)."""
        wm = int(self._meta("embedded_seq") or 0)
        if at_most is None:
            return self._one("SELECT count(*) FROM posts WHERE seq > ?", (wm,))
        return self._one("SELECT count(*) FROM (SELECT 1 FROM posts WHERE seq > ? LIMIT ?) "
                         "AS pending", (wm, int(at_most)))

    def _lag(self, meta_key: str) -> dict[str, Any]:
        """Posts after the ``meta_key`` watermark, and how long the first of them (in ingest
        order) has waited. The count reads the seq index's range; the age is one seek
        (``ingested_at_after``): taking ``min(ingested_at)`` over the range instead read every
        pending row (166 ms for 200,000 pending posts at 1.1M, where this takes ~4 ms), on every
        ``/v1/stats``."""
        watermark = int(self._meta(meta_key) or 0)
        n = self._one("SELECT count(*) FROM posts WHERE seq > ?", (watermark,))
        oldest = self.ingested_at_after(watermark) if n else None
        return {"pending_posts": n, "processed_through_seq": watermark,
                "oldest_pending_age_s": (round((time.time() * 1000 - oldest) / 1000, 1)
                                         if oldest is not None else 0.0)}

    def embedded_through(self) -> int:
        return int(self._meta("embedded_seq") or 0)

    def embedding_lag(self) -> dict[str, Any]:
        lag = self._lag("embedded_seq")
        return {"model": self._meta("embed_model"), "embedded": self.vector_count(),
                "pending_posts": lag["pending_posts"],
                "processed_through_seq": lag["processed_through_seq"],
                "oldest_pending_age_s": lag["oldest_pending_age_s"]}

    # --- stats -------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counts per source, language and day; quarantine per source and reason; late-stage and
        embedding lag: ``stats_counts`` (full scans) between the cheap reads."""
        return {"posts": self.count(), **self.stats_counts(),
                "late_stage": self.late_stage_lag(), "embeddings": self.embedding_lag()}

    def stats_counts(self) -> dict[str, Any]:
        """The aggregate counts of ``stats``: per source, language and day, quarantine per
        source and reason, deletions, opt-outs, near-duplicate links. Three of them scan every
        post (~1.3 s at 1.1M posts on 2 cores): the server serves them from a copy
        (``api.statscache``)."""
        pairs = lambda sql: {k: v for k, v in self._rows(sql)}  # noqa: E731
        return {
            "by_source": pairs("SELECT source, count(*) FROM post_sources GROUP BY source "
                               "ORDER BY source"),
            "by_lang": {(k if k is not None else "pending"): v for k, v in self._rows(
                "SELECT lang, count(*) FROM posts GROUP BY lang ORDER BY count(*) DESC, lang")},
            "by_day": pairs(f"SELECT {self._DAY_SQL} AS d, count(*) FROM posts "
                            f"GROUP BY d ORDER BY d"),
            "quarantined": self._one("SELECT count(*) FROM quarantine"),
            "quarantine_by_source": pairs("SELECT source, count(*) FROM quarantine "
                                          "GROUP BY source ORDER BY source"),
            "quarantine_by_reason": pairs(f"SELECT {self._REASON_KIND_SQL} AS kind, count(*) "
                                          f"FROM quarantine GROUP BY kind ORDER BY kind"),
            "deleted": self._one("SELECT count(*) FROM deleted"),
            "opted_out": self._one("SELECT count(*) FROM opt_outs"),
            "near_duplicates": self._one("SELECT count(*) FROM posts WHERE dup_of IS NOT NULL"),
        }

    def late_stage_lag(self) -> dict[str, Any]:
        """``stats()["late_stage"]`` alone (no scan): posts the late stage has not processed."""
        late = self._lag("enriched_seq")
        return {"pending_posts": late["pending_posts"], "ingested": self.max_seq(),
                "processed_through_seq": late["processed_through_seq"],
                "oldest_pending_age_s": late["oldest_pending_age_s"]}

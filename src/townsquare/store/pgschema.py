"""The PostgreSQL store's schema, its version and upgrades, and its time partitions.

    >>> year_bounds(2020)[0] == snowflake_floor(1577836800000)
    True
    >>> partition_name(2020), partition_name(None), partition_name(year_of_id(-5 << 60))
    ('posts_y2020', 'posts_legacy', 'posts_platforms')

Tables mirror the embedded store's (``townsquare.store.sqlite``), with PostgreSQL types: lists
are ``text[]``, signatures and vectors ``bytea``. Two full-text columns:

- ``words``: the exact words (``townsquare.store.pgtext``), written by the store as a ``tsvector``
  literal and indexed with GIN. Every query operator matches against it, so a search finds the
  same posts on both backends.
- ``tsv``: ``to_tsvector`` in the post's language's configuration (English, French, Spanish, ...,
  ``simple`` for the rest), a generated column kept up to date when the late stage sets the
  language, also indexed with GIN. It ranks (stemmed words count as the query's words) and gives
  the "any of the words" list of long queries, where stemming helps recall.

Time partitioning, in the spirit of Earlybird's time-sliced tiers: ``posts`` is partitioned by
RANGE of ``id``. A Snowflake id is a timestamp in its top bits, so one range of ids is one year of
posts (``posts_y2020``), and positive ids below 2011's first Snowflake id (older, non-Snowflake
ids of other datasets) share ``posts_legacy``. The negative ids of other platforms (Bluesky,
Mastodon: ``townsquare.platforms``) hold no time, and have a partition of their own,
``posts_platforms`` (``FROM (MINVALUE) TO (0)``); ``year_of_id`` gives them the pseudo-year
``PLATFORMS_YEAR`` (0). Schema v2 moved them there out of v1's ``posts_legacy``.

Partitioning by id (not ``created_at``) keeps ``id`` the primary key that upserts conflict on.
The store creates a year's partition when the first post of that year arrives (under the write
lock). Each partition has its own indexes, so old years can be detached, archived or dropped
whole, and a year of bulk loading does not rewrite the indexes of the others.
"""
from __future__ import annotations

import calendar
import datetime as dt

SCHEMA_VERSION = 3
SNOWFLAKE_EPOCH_MS = 1288834974657
FIRST_YEAR = 2011                  # positive ids below its first Snowflake id go to posts_legacy
PLATFORMS_YEAR = 0                 # year_of_id of a negative id (other platforms): posts_platforms
_MAX_ID = (1 << 63) - 1

# The columns of ``posts`` that a row copy writes (``tsv`` is generated).
POST_COLUMNS = (
    "id", "created_at", "author_id", "author_handle", "author_name", "text", "lang", "hashtags",
    "mentions", "urls", "cashtags", "has_media", "reply_to_id", "reply_to_user_id",
    "repost_of_id", "quote_of_id", "conversation_id", "retweet_count", "like_count",
    "reply_count", "quote_count", "lon", "lat", "source", "dup_of", "content_hash", "seq",
    "ingested_at", "words")
_COLS = ", ".join(POST_COLUMNS)

# ``UPGRADES`` (each version's upgrade statements) is at the end: it uses the partitions' bounds.

# Languages with a text search configuration in stock PostgreSQL (ISO 639-1 -> configuration).
TS_CONFIGS = {
    "ar": "arabic", "ca": "catalan", "da": "danish", "de": "german", "el": "greek",
    "en": "english", "es": "spanish", "eu": "basque", "fi": "finnish", "fr": "french",
    "ga": "irish", "hi": "hindi", "hu": "hungarian", "hy": "armenian", "id": "indonesian",
    "it": "italian", "lt": "lithuanian", "ne": "nepali", "nl": "dutch", "no": "norwegian",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian", "sv": "swedish",
    "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}
# The configurations the "any of the words" list tries (a query's language is unknown).
ANY_WORD_CONFIGS = ("simple", "english", "french", "spanish")

_CASES = "\n        ".join(f"WHEN '{k}' THEN '{v}'::regconfig" for k, v in sorted(TS_CONFIGS.items()))

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL);
CREATE OR REPLACE FUNCTION townsquare_ts_config(lang text) RETURNS regconfig
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE lang
        {_CASES}
        ELSE 'simple'::regconfig END $$;
CREATE TABLE IF NOT EXISTS posts (
    id              bigint NOT NULL,
    created_at      bigint NOT NULL,           -- ms since epoch, UTC
    author_id       bigint,
    author_handle   text,
    author_name     text,
    text            text NOT NULL,
    lang            text,                      -- NULL until the late stage identified it
    hashtags        text[],                    -- NULL when empty
    mentions        text[],
    urls            text[],
    cashtags        text[],
    has_media       boolean NOT NULL DEFAULT false,
    reply_to_id     bigint,
    reply_to_user_id bigint,
    repost_of_id    bigint,
    quote_of_id     bigint,
    conversation_id bigint,
    retweet_count   bigint,
    like_count      bigint,
    reply_count     bigint,
    quote_count     bigint,
    lon             double precision,
    lat             double precision,
    source          text NOT NULL,
    dup_of          bigint,
    content_hash    bigint NOT NULL,
    seq             bigint NOT NULL,
    ingested_at     bigint NOT NULL,
    words           tsvector NOT NULL,
    tsv             tsvector GENERATED ALWAYS AS (to_tsvector(townsquare_ts_config(lang), text)) STORED,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE INDEX IF NOT EXISTS posts_created_at ON posts (created_at, id);
CREATE INDEX IF NOT EXISTS posts_seq ON posts (seq);
CREATE INDEX IF NOT EXISTS posts_author ON posts (author_id, created_at) WHERE author_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS posts_handle ON posts (lower(author_handle), created_at)
    WHERE author_handle IS NOT NULL;
CREATE INDEX IF NOT EXISTS posts_dup_of ON posts (dup_of) WHERE dup_of IS NOT NULL;
CREATE INDEX IF NOT EXISTS posts_words ON posts USING gin (words);
CREATE INDEX IF NOT EXISTS posts_tsv ON posts USING gin (tsv);
CREATE TABLE IF NOT EXISTS post_sources (
    post_id bigint NOT NULL, source text NOT NULL, file text, line bigint, labels text,
    content_hash bigint, PRIMARY KEY (post_id, source));
CREATE TABLE IF NOT EXISTS deleted (id bigint PRIMARY KEY, deleted_at bigint NOT NULL);
CREATE TABLE IF NOT EXISTS deletions (seq bigserial PRIMARY KEY, post_id bigint NOT NULL);
CREATE TABLE IF NOT EXISTS opt_outs (author text PRIMARY KEY, opted_out_at bigint NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    file text NOT NULL, line bigint NOT NULL, source text NOT NULL, reason text NOT NULL,
    raw text NOT NULL, at bigint NOT NULL, PRIMARY KEY (file, line));
CREATE TABLE IF NOT EXISTS minhash (post_id bigint PRIMARY KEY, sig bytea NOT NULL);
CREATE TABLE IF NOT EXISTS lsh (
    band integer NOT NULL, bucket bigint NOT NULL, post_id bigint NOT NULL,
    PRIMARY KEY (band, bucket, post_id));
CREATE INDEX IF NOT EXISTS lsh_post ON lsh (post_id);
-- Embeddings: vec (float16 bytes) is the source of truth, as in the embedded store; emb is the
-- same vector as pgvector's halfvec, added with its dimension and an HNSW index by the first
-- write of a model (townsquare.store.postgres_search).
CREATE TABLE IF NOT EXISTS vectors (post_id bigint PRIMARY KEY, seq bigint NOT NULL,
                                    vec bytea NOT NULL);
CREATE INDEX IF NOT EXISTS vectors_seq ON vectors (seq);
CREATE TABLE IF NOT EXISTS shared_state (
    name text PRIMARY KEY, version bigint NOT NULL, body bytea NOT NULL, updated_at bigint NOT NULL);
-- API rate limits shared by every worker: one token bucket per key, on the server's clock.
CREATE TABLE IF NOT EXISTS rate_buckets (
    key_id text PRIMARY KEY, tokens double precision NOT NULL, at double precision NOT NULL,
    granted boolean NOT NULL);
"""


def snowflake_floor(ms: int) -> int:
    """The smallest Snowflake id created at or after ``ms`` (ms since the epoch)."""
    return max(0, ms - SNOWFLAKE_EPOCH_MS) << 22


def _year_start_ms(year: int) -> int:
    return calendar.timegm((year, 1, 1, 0, 0, 0)) * 1000


def year_bounds(year: int) -> tuple[int, int | None]:
    """``[low, high)`` ids of ``year``'s partition; ``high`` is None past the largest id."""
    low = snowflake_floor(_year_start_ms(year))
    high = snowflake_floor(_year_start_ms(year + 1))
    return low, (high if high <= _MAX_ID else None)


def year_of_id(post_id: int) -> int | None:
    """The partition year of an id: None for ``posts_legacy``, ``PLATFORMS_YEAR`` for a negative
    id (``posts_platforms``)."""
    if post_id < 0:
        return PLATFORMS_YEAR
    if post_id < snowflake_floor(_year_start_ms(FIRST_YEAR)):
        return None
    ms = (post_id >> 22) + SNOWFLAKE_EPOCH_MS
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).year


def partition_name(year: int | None) -> str:
    if year == PLATFORMS_YEAR:
        return "posts_platforms"
    return "posts_legacy" if year is None else f"posts_y{year}"


def partition_bounds(year: int | None) -> str:
    """The ``FROM (...) TO (...)`` of one partition: the ranges tile the whole bigint range."""
    if year == PLATFORMS_YEAR:
        return "FROM (MINVALUE) TO (0)"
    if year is None:
        return f"FROM (0) TO ({snowflake_floor(_year_start_ms(FIRST_YEAR))})"
    low, high = year_bounds(year)
    return f"FROM ({low}) TO ({high if high is not None else 'MAXVALUE'})"


def partition_ddl(year: int | None) -> str:
    """``CREATE TABLE`` of one partition (IF NOT EXISTS)."""
    return (f"CREATE TABLE IF NOT EXISTS {partition_name(year)} PARTITION OF posts "
            f"FOR VALUES {partition_bounds(year)}")


# Each version's upgrade statements, applied in order in one transaction by ``townsquare
# migrate`` (or on open). Tables new in a version come from ``SCHEMA``'s IF NOT EXISTS.
UPGRADES: dict[int, list[str]] = {
    # v2: negative ids (other platforms) leave posts_legacy (MINVALUE..2011) for a partition of
    # their own. A range cannot shrink in place: detach, move the rows, attach with the new
    # range (the partition's indexes are kept and re-attached, not rebuilt).
    2: ["ALTER TABLE posts DETACH PARTITION posts_legacy",
        f"CREATE TABLE {partition_name(PLATFORMS_YEAR)} PARTITION OF posts "
        f"FOR VALUES {partition_bounds(PLATFORMS_YEAR)}",
        f"INSERT INTO posts ({_COLS}) SELECT {_COLS} FROM posts_legacy WHERE id < 0",
        "DELETE FROM posts_legacy WHERE id < 0",
        f"ALTER TABLE posts ATTACH PARTITION posts_legacy FOR VALUES {partition_bounds(None)}"],
    # v3: the deletions log (``Store.deletions_since``), started with the tombstones so far.
    3: ["INSERT INTO deletions (post_id) SELECT id FROM deleted ORDER BY deleted_at, id"],
}

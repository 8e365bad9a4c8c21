"""Follow live streams into the store: X's filtered stream, Bluesky's Jetstream, Mastodon's
streaming API, and any NDJSON feed.

    >>> import asyncio, io
    >>> from townsquare.follow import Collector, NDJSONStream
    >>> from townsquare.store.sqlite import SQLiteStore
    >>> feed = io.BytesIO(b'{"id": "1212092628029698048", "text": "Bridge closed", '
    ...                   b'"created_at": "2019-12-31T18:30:00.000Z"}\\n')
    >>> store = SQLiteStore(":memory:")
    >>> asyncio.run(Collector(NDJSONStream.from_file(feed, name="demo"), store).run()).posts
    1

A source (``XStream``, ``JetstreamStream``, ``MastodonStream``, ``NDJSONStream``) connects,
reconnects as ``backoff`` says, and turns its platform's frames into posts and deletes; a
``Collector`` batches them into a store (or any ``PostSink``) and keeps ``SourceStats``. Posts of
platforms other than X get ids of their own namespace (``ids``). Modules:

- ``ids``: post and author ids across platforms (the layout: ``townsquare.platforms``),
  original URLs.
- ``backoff``: the reconnect policy and the injectable clock.
- ``source``: frames, credentials, the reconnect loop, line framing.
- ``stats``: per-source progress and health.
- ``collector``: the bounded queue, batching, writes, clean stop.
- ``x``, ``jetstream``, ``mastodon``, ``ndjson``: the sources, each with its run instructions.
"""
from townsquare.follow.backoff import Backoff, Clock, ReconnectPolicy, SystemClock
from townsquare.follow.collector import Collector, Committed, PostSink
from townsquare.follow.ids import IdSpace, NativeRef
from townsquare.follow.jetstream import JetstreamStream
from townsquare.follow.mastodon import MastodonStream
from townsquare.follow.ndjson import NDJSONStream
from townsquare.follow.source import Credential, Decoded, FollowError, Link, Source
from townsquare.follow.stats import SourceStats
from townsquare.follow.x import Rule, XRules, XStream
from townsquare.platforms import is_post_id, platform_of, post_url

__all__ = [
    "Backoff", "Clock", "Collector", "Committed", "Credential", "Decoded", "FollowError",
    "IdSpace", "JetstreamStream", "Link", "MastodonStream", "NDJSONStream", "NativeRef",
    "PostSink", "ReconnectPolicy", "Rule", "Source", "SourceStats", "SystemClock", "XRules",
    "XStream", "is_post_id", "platform_of", "post_url",
]

"""What the CLI and the API both do, wired once: each takes a store and ``Settings`` and returns
plain results, raising ``InputError`` for input it cannot use.

``errors`` (``InputError``), ``times`` (durations and times in ms), ``indexes`` (the tantivy and
vector indexes beside a store, the search engine, the embedder), ``happening`` (trends, stories),
``summaries`` (generation backends, the summarizer), ``privacy`` (a user's opt-out and export).

    >>> from townsquare.services import InputError
    >>> InputError("must be >= 1, got 0", "limit").field
    'limit'
"""
from townsquare.services.errors import InputError

__all__ = ["InputError"]

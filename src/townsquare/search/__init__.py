"""Search: the Twitter-style query language (``query``) and its SQLite compiler (``sqlfilter``)."""

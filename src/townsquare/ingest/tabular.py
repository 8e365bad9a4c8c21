"""CSV and TSV files of posts, with a column mapping.

    >>> m = ColumnMapping.from_header(["tweet id", " tweet", " label"])
    >>> m.fields, m.layout
    ({'id': 0, 'text': 1}, 'crisislex_t6')

Column mapping: each post field has a list of header names it is read from (``FIELD_ALIASES``,
matched case-insensitively after trimming spaces); ``--columns field=header,...`` overrides it.
Every other column is kept as the source's labels (metadata). Headers of the datasets in
``../shared/data`` are recognized as named layouts, which also name the source:

=============================== ===========================================================
layout (source name)            header
=============================== ===========================================================
crisislex_t6                    ``tweet id, tweet, label`` (ids as ``'3252...'``)
crisisnlp_aidr_volunteers       ``tweet_id, tweet_time, tweet_author, tweet_author_id,
                                tweet_language, tweet_lon, tweet_lat, tweet_text, tweet_url,
                                label`` (CR line ends, Mac Roman mojibake, ``NA`` for none)
crisisnlp_lrec2016_crowdflower  ``tweet_id<TAB>tweet_text<TAB>label``
humaid                          ``tweet_id<TAB>tweet_text<TAB>class_label``
=============================== ===========================================================

Rows are assembled from physical lines so that one bad row cannot swallow the rest of the file:
a record may span lines only inside a quoted field, and an unbalanced quote is reported on its own
line while the following lines are read again as records of their own.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from townsquare.ingest.items import MAX_LINE_CHARS, Item, clip, open_text, read_lines
from townsquare.posts import Post, PostError, parse_count, parse_id, parse_time_ms

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("tweet_id", "tweet id", "id", "id_str", "status_id", "tweetid", "post_id"),
    "text": ("tweet_text", "tweet", "text", "full_text", "content", "body"),
    "created_at": ("tweet_time", "created_at", "timestamp", "date", "time", "datetime"),
    "author_handle": ("tweet_author", "screen_name", "username", "user_screen_name", "handle",
                      "author"),
    "author_id": ("tweet_author_id", "user_id", "author_id", "user_id_str"),
    "lang": ("tweet_language", "lang", "language"),
    "lon": ("tweet_lon", "lon", "longitude", "lng"),
    "lat": ("tweet_lat", "lat", "latitude"),
    "retweet_count": ("retweet_count", "retweets"),
    "like_count": ("favorite_count", "like_count", "likes"),
    "reply_count": ("reply_count", "replies"),
    "quote_count": ("quote_count",),
    "reply_to_id": ("in_reply_to_status_id", "reply_to_id"),
}
# Columns that restate other fields (a permalink is derived from handle and id): not labels.
IGNORED = ("tweet_url", "permalink")
KNOWN_LAYOUTS: dict[tuple[str, ...], str] = {
    ("tweet id", "tweet", "label"): "crisislex_t6",
    ("tweet_id", "tweet_time", "tweet_author", "tweet_author_id", "tweet_language", "tweet_lon",
     "tweet_lat", "tweet_text", "tweet_url", "label"): "crisisnlp_aidr_volunteers",
    ("tweet_id", "tweet_text", "label"): "crisisnlp_lrec2016_crowdflower",
    ("tweet_id", "tweet_text", "class_label"): "humaid",
}
_NONE = ("", "na", "n/a", "null", "none", "nan")
_MAX_RECORD_LINES = 50       # a quoted field spanning more lines than this is a broken quote
_INT_FIELDS = ("retweet_count", "like_count", "reply_count", "quote_count")


class MappingError(ValueError):
    """The header cannot be mapped to posts (no id or no text column)."""


@dataclass(slots=True)
class ColumnMapping:
    fields: dict[str, int]                    # post field -> column index
    labels: dict[str, int] = field(default_factory=dict)   # label name -> column index
    width: int = 0
    layout: str | None = None

    @classmethod
    def from_header(cls, header: list[str], overrides: dict[str, str] | None = None) -> "ColumnMapping":
        names = [h.strip().strip("\ufeff").strip() for h in header]
        lower = [n.lower() for n in names]
        fields: dict[str, int] = {}
        for fname, header_name in (overrides or {}).items():
            if fname not in FIELD_ALIASES:
                raise MappingError(f"--columns: unknown field {fname!r}; fields are "
                                   f"{', '.join(FIELD_ALIASES)}")
            if header_name.strip().lower() not in lower:
                raise MappingError(f"--columns: no column {header_name!r} in header {names}")
            fields[fname] = lower.index(header_name.strip().lower())
        for fname, aliases in FIELD_ALIASES.items():
            if fname in fields:
                continue
            for a in aliases:
                if a in lower and lower.index(a) not in fields.values():
                    fields[fname] = lower.index(a)
                    break
        missing = [f for f in ("id", "text") if f not in fields]
        if missing:
            raise MappingError(f"no {' or '.join(missing)} column in header {clip(str(names), 300)} "
                               f"(map one with --columns {missing[0]}=HEADER)")
        used = set(fields.values())
        labels = {names[i]: i for i in range(len(names))
                  if i not in used and lower[i] not in IGNORED and names[i]}
        return cls(fields, labels, len(names), KNOWN_LAYOUTS.get(tuple(lower)))

    def post(self, row: list[str], source: str, extra_labels: dict[str, str]) -> Post:
        if len(row) != self.width:
            raise PostError(f"expected {self.width} fields, got {len(row)}", "row")
        # Only the columns this layout has are looked at (the per-row cost is most of parsing).
        kw: dict = {}
        for f, i in self.fields.items():
            if f in ("id", "text"):
                continue
            v = row[i].strip()
            if v.lower() in _NONE:
                continue
            if f == "created_at":
                kw[f] = parse_time_ms(v, f)
            elif f in ("author_id", "reply_to_id"):
                kw[f] = parse_id(v, f)
            elif f in ("lon", "lat"):
                try:
                    kw[f] = float(v)
                except ValueError:
                    raise PostError(f"not a number: {v[:40]!r}", f) from None
            elif f in _INT_FIELDS:
                kw[f] = parse_count(v, f)
            else:
                kw[f] = v
        labels = dict(extra_labels)
        for k, i in self.labels.items():
            labels[k] = row[i]
        return Post(id=parse_id(row[self.fields["id"]], "id"), text=row[self.fields["text"]],
                    source=source, labels=labels, **kw)


def sniff_delimiter(path: Path, header_line: str) -> str:
    if path.suffix.lower() == ".tsv" or "\t" in header_line:
        return "\t"
    return ","


class _Records:
    """Records as lists of (line number, physical line), joining lines only while a quote is open.
    Lines can be pushed back to be read again as records of their own. A line too long to hold
    (None, ``items.read_lines``) is a record by itself."""

    def __init__(self, numbered: Iterator[tuple[int, str | None]]):
        self._lines = numbered
        self._pending: list[tuple[int, str]] = []

    def _next(self) -> tuple[int, str] | None:
        return self._pending.pop(0) if self._pending else next(self._lines, None)

    def push_back(self, lines: list[tuple[int, str]]) -> None:
        self._pending[:0] = lines

    def __iter__(self) -> Iterator[list[tuple[int, str]]]:
        while (first := self._next()) is not None:
            buf = [first]
            quotes = first[1].count('"') if first[1] is not None else 0
            while quotes % 2 == 1 and len(buf) < _MAX_RECORD_LINES:
                more = self._next()
                if more is None:
                    break
                if more[1] is None:
                    self.push_back([more])
                    break
                buf.append(more)
                quotes += more[1].count('"')
            yield buf


def _parse_row(record: str, delimiter: str, width: int) -> list[str] | None:
    try:
        row = next(csv.reader([record], delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    return row if len(row) == width else None


def _items(records: _Records, mapping: ColumnMapping, delimiter: str, src: str,
           extra: dict[str, str]) -> Iterator[Item]:
    for lines in records:
        line_no, first = lines[0]
        if first is None:
            yield Item(line_no, error=f"row: line longer than {MAX_LINE_CHARS:,} characters")
            continue
        record = "".join(t for _, t in lines)
        if not record.strip():
            continue
        row = _parse_row(record, delimiter, mapping.width)
        if row is None and len(lines) > 1:
            # The lines joined on an odd quote do not make one row. A quote inside a field
            # (`5" of rain`) is literal in CSV, so the first line may be a row by itself; either
            # way the other lines are read again as rows of their own.
            records.push_back(lines[1:])
            record = first
            row = _parse_row(record, delimiter, mapping.width)
        raw = clip(record.rstrip("\r\n"))
        if row is None:
            try:
                got = len(next(csv.reader([record], delimiter=delimiter, strict=True)))
                reason = f"row: expected {mapping.width} fields, got {got}"
            except csv.Error as e:
                reason = ("row: unbalanced quote (the field never closes)"
                          if record.count('"') % 2 else f"row: {e}")
            yield Item(line_no, error=reason, raw=raw)
            continue
        try:
            yield Item(line_no, [mapping.post(row, src, extra)], raw=raw)
        except PostError as e:
            yield Item(line_no, error=str(e), raw=raw)


def read_table(path: Path, source: str | None, kind: str | None = None, *,
               columns: dict[str, str] | None = None) -> Iterator[Item]:
    """Rows of a CSV/TSV file with a header. Raises ``MappingError`` (before yielding anything)
    when the header has no id or text column: such a file holds no posts."""
    with open_text(path) as f:
        header_line = f.readline(MAX_LINE_CHARS)
        delimiter = "\t" if kind == "tsv" else "," if kind == "csv" else sniff_delimiter(path, header_line)
        mapping = ColumnMapping.from_header(_header(header_line, delimiter), columns)
        src = source or mapping.layout or path.parent.name or "unknown"
        yield from _items(_Records(enumerate(read_lines(f), 2)), mapping, delimiter, src,
                          {"folder": path.parent.name})


def table_source(path: Path) -> str | None:
    """The layout name a file's header matches, without reading further (for listings)."""
    with open_text(path) as f:
        header_line = f.readline(MAX_LINE_CHARS)
    try:
        header = _header(header_line, sniff_delimiter(path, header_line))
        return ColumnMapping.from_header(header).layout
    except MappingError:
        return None


def _header(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error as e:                  # a header field past csv's size limit (128 KiB)
        raise MappingError(f"unreadable header: {e}") from None

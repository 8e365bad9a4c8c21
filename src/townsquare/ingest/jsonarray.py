"""A JSON array read one item at a time: a file of any size streams in flat memory, and a file cut
off (or broken) part way keeps every item before the damage.

    >>> import io
    >>> [(i.number, i.value, i.error) for i in iter_array(io.StringIO('[{"a": 1}, [2], 3]'))]
    [(1, {'a': 1}, None), (2, [2], None), (3, 3, None)]
    >>> for i in iter_array(io.StringIO('[{"id": 1},\\n {"id": 2}, {"id": 3, "te')):
    ...     print(i.number, i.line, i.value, i.error)
    1 1 {'id': 1} None
    2 2 {'id': 2} None
    3 2 None json: the file ends inside item 3 (line 2): the array is cut off there; the 2 items before it were read

How: a regular expression steps over everything that is not a bracket (whole strings included,
so brackets inside strings are skipped) in C, and Python looks only at the brackets, counting
depth to find where each item ends; orjson then parses the item's text. Only the item being read
is held (``MAX_ITEM_CHARS`` at most; a bigger one is skipped as it streams, with an error), so
memory is flat in the file's size. The scan checks commas and brackets between items; inside an
item, orjson checks JSON's grammar, and an item it refuses is an error for that item alone.

Why not ijson (the usual streaming parser): its C backend stops the whole file at the first
number it cannot hold (``1e400``: "numeric overflow"), losing every item after it, and it gives
values, not their text, where the quarantine wants the record as it was written. Here a bad item
costs that item, numbers are read by orjson exactly as in a JSON Lines file, and each item's text
is at hand. Measured (``bench/ingest.py``'s v1 tweets as one array): see ``read_json``.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from townsquare.ingest.items import clip

# A post with every field filled is a few KB, a v1.1 tweet that embeds two others ~20 KB: an item
# past 16 Mi characters is no post, and is skipped without being held whole.
MAX_ITEM_CHARS = 16 << 20
_READ_CHARS = 1 << 20

_STRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'


@functools.cache
def _whole_item() -> re.Pattern:
    """A whole item in one match when its brackets nest at most 7 deep (a v1.1 retweet of a quote
    tweet: retweeted_status, quoted_status, entities, urls, an url, indices): one call of the
    regular expression engine per item instead of a Python step per bracket, 3x faster. Deeper
    items, and items cut by the end of what was read, take the bracket loop. (Compiled on first
    use: 30 ms, which a command that reads no array should not pay.)"""
    level = rf'(?:[^"\[\]{{}}]++|{_STRING})*+'
    for _ in range(6):
        level = rf'(?:[^"\[\]{{}}]++|{_STRING}|\{{{level}\}}|\[{level}\])*+'
    return re.compile(rf'(?:[^"\[\]{{}},]++|{_STRING}|\{{{level}\}}|\[{level}\])*+', re.S)


# Inside an item: everything up to the next bracket or unclosed string (plain runs, whole strings).
_INSIDE = re.compile(rf'(?:[^"\[\]{{}}]++|{_STRING})*+', re.S)
# Between brackets at the array's own level: a comma ends the item too.
_TOP = re.compile(rf'(?:[^"\[\]{{}},]++|{_STRING})*+', re.S)
_STRING_BODY = re.compile(r'[^"\\]*+(?:\\.[^"\\]*+)*+', re.S)   # after the opening quote
_SPACE = re.compile(r"[ \t\r\n]*+")


@dataclass(slots=True)
class ArrayItem:
    number: int          # 1-based position in the array
    line: int            # the file line the item starts on
    value: Any = None
    error: str | None = None
    raw: str = ""        # the item's text, clipped (for the quarantine)


class _Text:
    """The unread part of a stream: ``buf``, read in chunks, with the line of any index."""

    def __init__(self, stream: IO[str], pending: str, first_line: int):
        self.stream = stream
        self.buf = pending
        self.eof = False
        self.chunk = _READ_CHARS
        self._line = first_line           # the line of buf[_line_pos]
        self._line_pos = 0

    def line_at(self, i: int) -> int:
        """The line of ``buf[i]``; ``i`` never goes back before an index asked about before."""
        self._line += self.buf.count("\n", self._line_pos, i)
        self._line_pos = i
        return self._line

    def more(self, keep: int) -> int:
        """Read the next chunk, dropping ``buf[:keep]``; returns how far indices moved down (0,
        with ``eof`` set, at the end of the stream)."""
        if self.eof:
            return 0
        chunk = self.stream.read(self.chunk)
        if not chunk:
            self.eof = True
            return 0
        if keep >= self._line_pos:
            self.line_at(keep)
        self._line_pos -= keep
        self.buf = self.buf[keep:] + chunk
        return keep

    def space(self, i: int) -> int:
        """The index of the next character that is not JSON whitespace, reading as needed (the
        buffer may move: indices held before are stale); ``len(buf)`` at the end of the stream."""
        while True:
            i = _SPACE.match(self.buf, i).end()
            if i < len(self.buf):
                return i
            i -= self.more(i)
            if self.eof:
                return len(self.buf)


def iter_array(stream: IO[str], *, pending: str = "", first_line: int = 1,
               max_item_chars: int = MAX_ITEM_CHARS) -> Iterator[ArrayItem]:
    """The items of the JSON array that ``stream`` holds (``pending``: text already read from
    it, ``first_line``: the line that text starts on). Never raises for what the text holds:
    each problem is an ``ArrayItem`` with ``error`` (a bad item, and reading goes on; the end of
    the file inside the array, or text after it, and reading stops)."""
    t = _Text(stream, pending, first_line)
    i = t.space(0)
    if i == len(t.buf) or t.buf[i] != "[":
        yield ArrayItem(1, t.line_at(i), error="json: not an array (no '[' at the start)",
                        raw=clip(t.buf[i:i + 200]))
        return
    i = t.space(i + 1)
    n = 0
    after_comma = False
    while True:
        if i == len(t.buf):
            yield ArrayItem(n + 1, t.line_at(i), error=(
                f"json: the file ends after item {n:,} (line {t.line_at(i):,}) without the "
                "array's closing ']'"))
            return
        line = t.line_at(i)
        start, end, stop, cut = _scan_item(t, i, max_item_chars)
        text = t.buf[start:end].rstrip(" \t\r\n") if start >= 0 else None
        if stop == "" and text and text[-1] not in '}]"':
            cut = True          # a number or word at the very end may be missing its last digits
        if text == "" and stop == "]" and (n == 0 or after_comma):
            break                                # "[]", or a trailing comma: let be
        n += 1
        if text is None:
            yield ArrayItem(n, line, error=f"json: item {n:,} (line {line:,}) is longer than "
                                           f"{max_item_chars:,} characters: not a post")
        elif text == "":
            yield ArrayItem(n, line, error=f"json: item {n:,} (line {line:,}) is empty")
        elif cut:
            yield ArrayItem(n, line, error=(
                f"json: the file ends inside item {n:,} (line {line:,}): the array is cut off "
                f"there; the {n - 1:,} items before it were read"), raw=clip(text))
            return
        else:
            try:
                yield ArrayItem(n, line, orjson.loads(text), raw=clip(text))
            except orjson.JSONDecodeError as e:
                yield ArrayItem(n, line, error=f"json: item {n:,} (line {line:,}): {e}",
                                raw=clip(text))
        after_comma = stop == ","
        if stop == ",":
            i = t.space(end + 1)
        elif stop == "]":
            break
        else:                                    # the end of the file, after a whole item
            yield ArrayItem(n + 1, t.line_at(len(t.buf)), error=(
                f"json: the file ends after item {n:,} without the array's closing ']'"))
            return
    i = t.space(end + 1)                         # end: the index of the closing ']'
    if i < len(t.buf):
        yield ArrayItem(n + 1, t.line_at(i), raw=clip(t.buf[i:i + 200]), error=(
            f"json: text after the array's closing ']' (line {t.line_at(i):,})"))


def _scan_item(t: _Text, start: int, max_chars: int) -> tuple[int, int, str, bool]:
    """Find the end of the item that starts at ``buf[start]``: the ',' or ']' that follows it
    outside brackets and strings. Returns ``(start, end, stop, cut)`` as indices into ``t.buf``
    after reading: ``end`` is the index of ``stop`` (``","``, ``"]"``, or ``""`` at the end of
    the stream), ``cut`` whether the stream ended inside a bracket or a string, and ``start``
    is -1 when the item grew past ``max_chars`` and was streamed through without being kept."""
    j = _whole_item().match(t.buf, start).end()
    if j < len(t.buf) and t.buf[j] in ",]":
        return (start if j - start <= max_chars else -1), j, t.buf[j], False
    depth = 0
    j = start
    while True:
        j = (_INSIDE if depth else _TOP).match(t.buf, j).end()
        if j < len(t.buf):
            c = t.buf[j]
            if c in "[{":
                depth += 1
                j += 1
                continue
            if c == "," or (c == "]" and depth == 0):
                t.chunk = _READ_CHARS
                return (start if j - start <= max_chars else -1), j, c, False
            if c != '"':                         # a closing bracket ('}' at depth 0: junk)
                depth = max(depth - 1, 0)
                j += 1
                continue
        # At the end of what was read, or at a string that goes on past it.
        if start >= 0 and len(t.buf) - start > max_chars:
            start = -1                           # too big to keep: stream through the rest
        if start < 0 and j < len(t.buf):
            j = _skip_string(t, j)
            if j < 0:
                return -1, len(t.buf), "", True
            continue
        keep = start if start >= 0 else j
        moved = t.more(keep)
        j -= moved
        if start >= 0:
            start -= moved
        if t.eof:
            t.chunk = _READ_CHARS
            return start, len(t.buf), "", depth > 0 or j < len(t.buf)
        if j < len(t.buf) and t.buf[j] == '"':
            t.chunk = min(2 * t.chunk, max_chars)   # a long string: each read doubles


def _skip_string(t: _Text, j: int) -> int:
    """The index just after the string that starts at ``buf[j]``, read through without holding
    it (for items too big to keep); -1 when the stream ends inside it."""
    k = j + 1
    while True:
        k = _STRING_BODY.match(t.buf, k).end()
        if k < len(t.buf) and t.buf[k] == '"':
            return k + 1
        k -= t.more(k)          # k is the end, or a backslash whose escaped character is unread
        if t.eof:
            return -1

"""What readers yield, and how they open files.

A reader turns one file into ``Item`` objects: each is one input record (a line, a CSV row, an
element of a JSON array) with the posts it holds, or the reason it holds none. Readers never raise
for a bad record, only for a file they cannot read at all (``SkipFile``, or the ``OSError`` of
opening it).

    >>> item = Item(line=3, error="text: empty text", raw="'123',,label")
    >>> item.ok
    False

Files are opened by ``open_regular`` (a FIFO or a device is refused without blocking: ``open()``
of a FIFO waits for a writer forever) and decoded by ``open_text``: UTF-8 by default, UTF-16 and
UTF-32 when a byte order mark says so; a file full of NUL bytes without one (UTF-16 saved without
a BOM, or a binary file) is refused with the reason rather than read as garbage.
"""
from __future__ import annotations

import codecs
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import IO, BinaryIO

from townsquare.posts import Post


@dataclass(slots=True)
class Item:
    line: int                       # 1-based line of the record's start (JSON documents: item number)
    posts: list[Post] = field(default_factory=list)
    error: str | None = None        # why the record (or part of it) could not be read
    raw: str = ""                   # the record as read, for the quarantine

    @property
    def ok(self) -> bool:
        return self.error is None


def _legacy_bytes(err: UnicodeDecodeError) -> tuple[str, int]:
    # Bytes that are not UTF-8 are decoded as Mac Roman, which maps every byte: nothing is lost and
    # the text reads as the source's own mojibake. The CrisisNLP AIDR exports are Mac-era files
    # (CR line ends) whose mojibake ("â€_" for an ellipsis) is exactly Mac Roman's view of the bytes.
    bad = err.object[err.start:err.end]
    return bytes(bad).decode("mac_roman"), err.end


codecs.register_error("townsquare-legacy", _legacy_bytes)


class SkipFile(Exception):
    """The file is not read; the message says why. ``problem``: it could not be read as what it
    is (not a regular file, undecodable, unreadable), as opposed to a file that holds something
    other than posts (a README, an archive's other sections), which is skipped by design."""

    def __init__(self, message: str, *, problem: bool = False):
        super().__init__(message)
        self.problem = problem


_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def not_regular(mode: int) -> SkipFile | None:
    """The reason a file of this ``st_mode`` is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    return SkipFile(f"not a regular file ({kind})", problem=True)


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading in binary. Anything else raises ``SkipFile`` at once: the
    file is opened non-blocking (a FIFO's open would wait for a writer) and checked with
    ``fstat`` on the open descriptor, so it cannot change between the check and the read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if (why := not_regular(os.fstat(fd).st_mode)) is not None:
            raise why
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# Longest first: UTF-32-LE's mark begins with UTF-16-LE's.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


def sniff_encoding(head: bytes) -> tuple[str, int]:
    """A file's encoding from its first bytes, and the length of its byte order mark.

        >>> sniff_encoding(codecs.BOM_UTF16_LE + "id,text".encode("utf-16-le"))
        ('utf-16-le', 2)
        >>> sniff_encoding(b"id,text")
        ('utf-8', 0)
        >>> sniff_encoding("id,text".encode("utf-16-le"))
        Traceback (most recent call last):
        ...
        townsquare.ingest.items.SkipFile: NUL bytes in its first 14 bytes: UTF-16 or UTF-32 text without a byte order mark, or not text at all (save it as UTF-8)
    """
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    # Text has no NUL bytes; UTF-16 has one in every other byte of ASCII text. One in eight
    # tells them apart with room to spare, and a stray NUL in a text file is let be.
    if head.count(0) * 8 > len(head):
        raise SkipFile(f"NUL bytes in its first {len(head):,} bytes: UTF-16 or UTF-32 text "
                       "without a byte order mark, or not text at all (save it as UTF-8)",
                       problem=True)
    return "utf-8", 0


def open_text(path: Path) -> IO[str]:
    """Open a regular file for streaming text (``sniff_encoding``; BOM dropped), bytes that are
    not valid in the encoding kept as Mac Roman, line ends returned untranslated (CR, LF and
    CRLF files all split into lines)."""
    raw = open_regular(path)
    try:
        encoding, bom = sniff_encoding(raw.read(4096))
        raw.seek(bom)
    except BaseException:
        raw.close()
        raise
    return io.TextIOWrapper(raw, encoding=encoding, errors="townsquare-legacy", newline="")


# A record of a JSON Lines or CSV file is a line (or a few): one past this is no post, and is
# read through without being held (a file of one 2 GB line must not take 2 GB).
MAX_LINE_CHARS = 16 << 20


def read_lines(f: IO[str], limit: int = MAX_LINE_CHARS) -> Iterator[str | None]:
    """The lines of ``f`` with their line ends; None in place of a line longer than ``limit``.

        >>> list(read_lines(io.StringIO("a\\nbbbbbb\\nc"), limit=4))
        ['a\\n', None, 'c']
    """
    while line := f.readline(limit):
        if len(line) < limit or line.endswith(("\n", "\r")):
            yield line
            continue
        rest = line
        while len(rest) == limit and not rest.endswith(("\n", "\r")):
            rest = f.readline(limit)          # the rest of the long line, a piece at a time
        yield None


def clip(s: str, n: int = 2000) -> str:
    return s if len(s) <= n else s[:n] + "…"

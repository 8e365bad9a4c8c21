"""What readers yield, and the text decoding they share.

A reader turns one file into ``Item`` objects: each is one input record (a line, a CSV row, an
element of a JSON array) with the posts it holds, or the reason it holds none. Readers never raise
for a bad record, only for a file they cannot open at all.

    >>> item = Item(line=3, error="text: empty text", raw="'123',,label")
    >>> item.ok
    False
"""
from __future__ import annotations

import codecs
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

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


def open_text(path: Path) -> IO[str]:
    """Open for streaming text: UTF-8 (BOM dropped), non-UTF-8 bytes kept as Mac Roman, line ends
    returned untranslated (CR, LF and CRLF files all split into lines)."""
    raw = open(path, "rb")
    if raw.read(3) != codecs.BOM_UTF8:
        raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="townsquare-legacy", newline="")


def clip(s: str, n: int = 2000) -> str:
    return s if len(s) <= n else s[:n] + "…"

"""Which reader a file needs: from its name and first bytes, or forced by ``--format``.

    >>> detect_format(Path("posts.tsv"), head="tweet_id\ttweet_text")
    'tsv'

Formats: ``json`` (a JSON document of v1.1 objects or a v2 response), ``jsonl`` (JSON Lines of
either, or townsquare's export), ``v1`` and ``v2`` (JSON or JSON Lines, forcing how each object is
read), ``archive`` (``tweets.js`` of an X account archive), ``csv`` and ``tsv``. A file that is none
of these (a README, labeling instructions, other archive sections) is skipped with the reason.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from townsquare.ingest.archive import archive_name, read_archive
from townsquare.ingest.items import Item
from townsquare.ingest.jsonfiles import kind_of, read_json, read_jsonl
from townsquare.ingest.tabular import read_table

FORMATS = ("json", "jsonl", "v1", "v2", "archive", "csv", "tsv")
_JSONL_EXT = (".jsonl", ".ndjson", ".jsonlines")
_TABLE_EXT = (".csv", ".tsv")


class SkipFile(Exception):
    """The file holds no posts in any format townsquare reads (the message says why)."""


def _head(path: Path, n: int = 4096) -> str:
    with open(path, "rb") as f:
        return f.read(n).decode("utf-8", "replace").lstrip("\ufeff")


def detect_format(path: Path, head: str | None = None) -> str:
    """The format of ``path``; raises ``SkipFile`` when it is not a post file."""
    head = _head(path) if head is None else head
    name = path.name.lower()
    stripped = head.lstrip()
    if name.endswith(".js"):
        section = archive_name(stripped)
        if section in ("tweets", "tweet"):
            return "archive"
        raise SkipFile(f"archive section {section!r} holds no posts" if section
                       else "JavaScript file that is not an X archive section")
    if name.endswith(_JSONL_EXT):
        _check_first_line(path)
        return "jsonl"
    if name.endswith(".json"):
        first, _, rest = stripped.partition("\n")
        # Several objects, one per line, in a .json file: JSON Lines in all but name.
        if first.rstrip().endswith("}") and rest.lstrip().startswith("{"):
            _check_first_line(path)
            return "jsonl"
        if stripped[:1] in ("{", "["):
            return "json"
        raise SkipFile("a .json file that does not start with an object or array")
    if name.endswith(_TABLE_EXT):
        return "tsv" if name.endswith(".tsv") else "csv"
    raise SkipFile(f"not a post file ({path.suffix or 'no extension'})")


def _check_first_line(path: Path) -> None:
    """Skip JSON Lines files of other things (annotations, summaries): the first object decides."""
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                break
        else:
            return
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return  # a broken first line is quarantined by the reader, not a reason to skip the file
    if kind_of(obj) is None:
        keys = ", ".join(sorted(obj)[:6]) if isinstance(obj, dict) else type(obj).__name__
        raise SkipFile(f"JSON Lines of something other than posts (first object has {keys})")


Reader = Callable[..., Iterator[Item]]


def reader_for(path: Path, fmt: str, source: str, columns: dict[str, str] | None) -> Iterator[Item]:
    """Items of ``path`` read as ``fmt``. For ``v1``/``v2`` the file may be a document or lines."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "archive":
        return read_archive(path, source)
    if fmt in ("csv", "tsv"):
        return read_table(path, source or None, fmt, columns=columns)
    kind = fmt if fmt in ("v1", "v2") else None
    if fmt == "jsonl":
        return read_jsonl(path, source, kind)
    if fmt == "json":
        return read_json(path, source, kind)
    # forced v1/v2: lines or document, as the file's shape says
    try:
        shape = detect_format(path)
    except SkipFile:
        shape = "json"
    return (read_jsonl if shape == "jsonl" else read_json)(path, source, kind)


def discover(paths: list[Path]) -> Iterator[Path]:
    """Files under ``paths`` (folders recursively), in a stable order; hidden files skipped."""
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"no such file or folder: {p}")
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts):
                    yield f
        else:
            yield p

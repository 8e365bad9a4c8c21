"""Which reader a file needs: from its name and first bytes, or forced by ``--format``.

    >>> detect_format(Path("posts.tsv"), head="tweet_id\ttweet_text")
    'tsv'

Formats: ``json`` (a JSON document of v1.1 objects or a v2 response), ``jsonl`` (JSON Lines of
either, or townsquare's export), ``v1`` and ``v2`` (JSON or JSON Lines, forcing how each object is
read), ``archive`` (``tweets.js`` of an X account archive), ``csv`` and ``tsv``. A file that is none
of these (a README, labeling instructions, other archive sections) is skipped with the reason.

``discover`` lists the files of folders, each with the reason it will not be read when there is
one: a broken symbolic link, a folder that cannot be listed, a FIFO, socket or device (never
opened: reading one would block), a symbolic link loop. Nothing under the paths given is left out
without a word, except hidden files and folders (a leading ``.``: a tool's, not data).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from townsquare.ingest.archive import archive_name, read_archive
from townsquare.ingest.items import Item, SkipFile, not_regular, open_text, read_lines
from townsquare.ingest.jsonfiles import kind_of, read_json, read_jsonl
from townsquare.ingest.tabular import read_table

__all__ = ["FORMATS", "SkipFile", "detect_format", "discover", "reader_for"]

FORMATS = ("json", "jsonl", "v1", "v2", "archive", "csv", "tsv")
_JSONL_EXT = (".jsonl", ".ndjson", ".jsonlines")
_TABLE_EXT = (".csv", ".tsv")
_SNIFF_LINES = 20


def _head(path: Path, n: int = 4096) -> str:
    with open_text(path) as f:
        return f.read(n)


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
        _check_first_lines(path)
        return "jsonl"
    if name.endswith(".json"):
        first, _, rest = stripped.partition("\n")
        # Several objects, one per line, in a .json file: JSON Lines in all but name.
        if first.rstrip().endswith("}") and rest.lstrip().startswith("{"):
            _check_first_lines(path)
            return "jsonl"
        if stripped[:1] in ("{", "["):
            return "json"
        raise SkipFile("a .json file that does not start with an object or array", problem=True)
    if name.endswith(_TABLE_EXT):
        return "tsv" if name.endswith(".tsv") else "csv"
    raise SkipFile(f"not a post file ({path.suffix or 'no extension'})")


def _check_first_lines(path: Path) -> None:
    """Skip JSON Lines files of other things (annotations, summaries): JSON, but no post among
    the first ``_SNIFF_LINES`` lines. A broken or stray line among posts decides nothing (the
    reader quarantines it): a file whose first line is garbage is still read."""
    other = None
    with open_text(path) as f:
        for n, line in enumerate(read_lines(f)):
            if n >= _SNIFF_LINES:
                break
            if line is None or not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if kind_of(obj) is not None:
                return
            if other is None:
                other = ", ".join(sorted(obj)[:6]) if isinstance(obj, dict) else type(obj).__name__
    if other is not None:
        raise SkipFile(f"JSON Lines of something other than posts (first object has {other})")


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


def discover(paths: list[Path]) -> Iterator[tuple[Path, SkipFile | None]]:
    """Files under ``paths`` (folders recursively, symbolic links followed), depth first in name
    order, each with the reason it will not be read (None: it will be). Raises
    ``FileNotFoundError`` for a path given that does not exist at all.

        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> (d / "posts.csv").touch(); (d / "gone.csv").symlink_to(d / "nowhere.csv")
        >>> [(f.name, str(why) if why else None) for f, why in discover([d])]
        [('gone.csv', 'broken symbolic link (to a file that does not exist)'), ('posts.csv', None)]
    """
    for p in paths:
        if not os.path.lexists(p):
            raise FileNotFoundError(f"no such file or folder: {p}")
        yield from _walk(p, frozenset())


def _walk(p: Path, ancestors: frozenset) -> Iterator[tuple[Path, SkipFile | None]]:
    try:
        st = p.stat()
    except FileNotFoundError:
        yield p, SkipFile("broken symbolic link (to a file that does not exist)", problem=True)
        return
    except OSError as e:                  # a symbolic link loop, a folder that cannot be searched
        yield p, SkipFile(f"cannot read: {e.strerror or e}", problem=True)
        return
    if not os.path.isdir(p):
        yield p, not_regular(st.st_mode)
        return
    key = (st.st_dev, st.st_ino)
    if key in ancestors:                  # a link back up the tree: its files are read already
        yield p, SkipFile("symbolic link to a folder that contains it (a loop)")
        return
    try:
        with os.scandir(p) as it:
            names = sorted(e.name for e in it if not e.name.startswith("."))
    except OSError as e:
        yield p, SkipFile(f"cannot list the folder: {e.strerror or e}", problem=True)
        return
    for name in names:
        yield from _walk(p / name, ancestors | {key})

"""The ingest pipeline: read, normalize, dedup by id, store, in batches, streaming.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "posts.csv").write_text("id,text\\n1212092628029698048,Flood on Main St\\nxx,bad\\n")
    >>> report = IngestPipeline(SQLiteStore(":memory:")).run([d])
    >>> report.totals.inserted, report.totals.quarantined
    (1, 1)

Memory stays flat in file size: readers yield one record at a time and at most ``batch_size``
posts are held before a batch is written in one transaction (a few batches may wait in the queue
between the parser and the writer). Posts read twice (the same id in a file, a retweet's embedded
original seen again) are upserted: the store keeps one row per id. A record that cannot become a
post goes to the quarantine with its file, line and reason, and never stops the batch. Language
id and near-duplicate linking run later (``townsquare.ingest.enrich.LateStage``).

Two processes for large inputs: parsing and SQLite's writes cost about the same per post on this
2-core machine, so this process parses and prepares rows while a writer process writes them
(``townsquare.ingest.writer``; measured in ``bench/ingest.py``). Small inputs, and stores that
cannot be reopened in another process (``:memory:``), run in one plain loop.
"""
from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from townsquare.ingest.detect import FORMATS, SkipFile, detect_format, discover, reader_for
from townsquare.ingest.tabular import MappingError
from townsquare.ingest.writer import WriterProcess
from townsquare.posts import PostError
from townsquare.store.base import Quarantined, Store, Stored, WriteResult



@dataclass(slots=True)
class FileReport:
    path: str
    format: str | None = None
    source: str | None = None
    records: int = 0
    posts: int = 0
    quarantined: int = 0
    skipped: str | None = None        # why the file was not read (or not to its end), if so
    problem: bool = False             # skipped because it could not be read, not by design


@dataclass(slots=True)
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    totals: WriteResult = field(default_factory=WriteResult)
    seconds: float = 0.0

    @property
    def posts_read(self) -> int:
        return sum(f.posts for f in self.files)

    def rows_by_source(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            if f.source:                  # (a file that failed part way counts what it read)
                out[f.source] = out.get(f.source, 0) + f.records
        return dict(sorted(out.items()))

    @property
    def unreadable(self) -> dict[str, str]:
        """The files skipped because they could not be read: what ``--strict`` fails on."""
        return {f.path: f.skipped for f in self.files if f.skipped and f.problem}

    def to_dict(self) -> dict:
        t = self.totals
        return {
            "files": len([f for f in self.files if not f.skipped]),
            "skipped_files": {f.path: f.skipped for f in self.files if f.skipped},
            "unreadable_files": self.unreadable,
            "records_by_source": self.rows_by_source(),
            "posts_read": self.posts_read,
            "inserted": t.inserted, "updated": t.updated, "unchanged": t.unchanged,
            "skipped_deleted": t.skipped_deleted, "quarantined": t.quarantined,
            "seconds": round(self.seconds, 3),
            "posts_per_s": round(self.posts_read / self.seconds) if self.seconds else None,
        }

WRITERS = ("auto", "process", "inline")
# Starting the writer process costs ~0.3 s (a fresh interpreter); below this much input the
# single-process loop finishes first.
WRITER_PROCESS_MIN_BYTES = 8 << 20

# (file, posts added, quarantined added, file finished)
Progress = Callable[[FileReport, int, int, bool], None]


@dataclass(frozen=True, slots=True)
class _Options:
    fmt: str | None
    source: str | None
    columns: dict[str, str] | None
    batch_size: int


def _cannot_read(e: OSError | UnicodeError, records: int) -> SkipFile:
    where = f" after {records:,} records (those were read)" if records else ""
    return SkipFile(f"cannot read{where}: {getattr(e, 'strerror', None) or e}", problem=True)


def _parse(listing: list[tuple[Path, SkipFile | None]], opt: _Options) -> Iterator[tuple]:
    """Messages ``("batch", file, posts, bad)`` and ``("file", file)`` for the writer. A file
    that cannot be read is a ``"file"`` message with its reason, and the next file is read."""
    for path, why in listing:
        # Absolute, links not resolved: the path as listed (a broken link's own name)
        fr = FileReport(path=os.path.abspath(path))
        if why is None:
            try:
                fr.format = opt.fmt or detect_format(path)
            except SkipFile as e:
                why = e
            except OSError as e:          # opening it: gone since it was listed, no permission
                why = _cannot_read(e, 0)
        if why is not None:
            fr.skipped, fr.problem = str(why), why.problem
            yield ("file", fr)
            continue
        default_source = opt.source or path.parent.name or "unknown"
        if fr.format in ("csv", "tsv"):
            items = reader_for(path, fr.format, opt.source or "", opt.columns)
        else:
            items = reader_for(path, fr.format, default_source, None)
        posts: list[Stored] = []
        bad: list[Quarantined] = []
        try:
            for item in items:
                fr.records += 1
                errors = [item.error] if item.error else []
                for p in item.posts:
                    try:
                        p.normalized()
                    except PostError as e:
                        errors.append(f"post {p.id}: {e}" if len(item.posts) > 1 else str(e))
                        continue
                    fr.source = fr.source or p.source
                    posts.append(Stored(p, fr.path, item.line))
                    fr.posts += 1
                if errors:
                    fr.quarantined += 1
                    bad.append(Quarantined(opt.source or fr.source or default_source, fr.path,
                                           item.line, "; ".join(errors), item.raw))
                if len(posts) >= opt.batch_size or len(bad) >= opt.batch_size:
                    yield ("batch", fr, posts, bad)
                    posts, bad = [], []
        except MappingError as e:
            fr.skipped = str(e)
        except SkipFile as e:             # found on opening it to read (--format skips detection)
            fr.skipped, fr.problem = str(e), e.problem
        except (OSError, UnicodeError) as e:
            why = _cannot_read(e, fr.records)
            fr.skipped, fr.problem = str(why), why.problem
        if posts or bad:
            yield ("batch", fr, posts, bad)
        yield ("file", fr)


class IngestPipeline:
    """Ingest files or folders into a store.

    ``fmt`` forces a reader (one of ``FORMATS``; default: detect per file), ``source`` names the
    dataset (default: the known layout's name, else the file's folder), ``columns`` maps CSV
    headers to post fields (``{"text": "body"}``). ``writer``: ``"process"`` writes in a child
    process while this one parses (``townsquare.ingest.writer``), ``"inline"`` writes here, and
    ``"auto"`` (default) takes the process for inputs of ``WRITER_PROCESS_MIN_BYTES`` or more
    when the store can be reopened in another process.
    """

    def __init__(self, store: Store, *, fmt: str | None = None, source: str | None = None,
                 columns: dict[str, str] | None = None, batch_size: int = 5000,
                 writer: str = "auto"):
        if fmt is not None and fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if source is not None and not source.strip():
            raise ValueError("source must not be empty")
        if writer not in WRITERS:
            raise ValueError(f"unknown writer {writer!r}; one of {', '.join(WRITERS)}")
        self.store = store
        self.writer = writer
        self.options = _Options(fmt, source, columns, batch_size)

    def run(self, paths: Iterable[Path | str], progress: Progress | None = None) -> IngestReport:
        files = list(discover([Path(p) for p in paths]))   # missing paths fail here, up front
        report = IngestReport()
        t0 = time.perf_counter()
        if self._use_writer_process(files):
            self._run_with_writer(files, report, progress)
        else:
            for msg in _parse(files, self.options):
                if msg[0] == "batch":
                    _, fr, posts, bad = msg
                    report.totals.add(self.store.write_batch(posts, bad))
                    if progress:
                        progress(fr, len(posts), len(bad), False)
                else:
                    report.files.append(msg[1])
                    if progress:
                        progress(msg[1], 0, 0, True)
        report.seconds = time.perf_counter() - t0
        return report

    def _use_writer_process(self, files: list[tuple[Path, SkipFile | None]]) -> bool:
        if self.writer == "inline" or self.store.opener() is None:
            return False
        if self.writer == "process":
            return True
        size = 0
        for f, why in files:
            try:
                size += f.stat().st_size if why is None else 0
            except OSError:
                pass
        return size >= WRITER_PROCESS_MIN_BYTES

    def _run_with_writer(self, files: list[tuple[Path, SkipFile | None]], report: IngestReport,
                         progress: Progress | None) -> None:
        # Events in input order; a file counts as done once every batch before it is written.
        events: deque[tuple] = deque()

        def emit(written: list) -> None:
            for _tag, result in written:
                report.totals.add(result)
                while events and events[0][0] == "file":
                    _flush_file(events.popleft()[1])
                _, fr, n_posts, n_bad = events.popleft()
                if progress:
                    progress(fr, n_posts, n_bad, False)
            while events and events[0][0] == "file":
                _flush_file(events.popleft()[1])

        def _flush_file(fr: FileReport) -> None:
            report.files.append(fr)
            if progress:
                progress(fr, 0, 0, True)

        with WriterProcess(self.store.opener()) as writer:
            for msg in _parse(files, self.options):
                if msg[0] == "batch":
                    _, fr, posts, bad = msg
                    events.append(("batch", fr, len(posts), len(bad)))
                    writer.submit(None, self.store.prepare(posts, bad))
                else:
                    events.append(("file", msg[1]))
                emit(list(writer.results()))
            emit(writer.finish())

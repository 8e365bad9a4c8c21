"""What every command of the CLI shares: the Typer ``app`` they register on, the ``--home`` and
``--json`` options, the settings of the run, opening the store, JSON output, one-line errors,
text from the data made safe for a terminal, and progress bars on stderr.

    >>> flag("window"), flag("baseline_windows"), flag("--since")
    ('--window', '--baseline-windows', '--since')

The root callback (``townsquare.cli``) builds one ``Settings`` from the global options and
puts it in the context; a command's own ``--home`` overrides its home (``settings_of``).
"""
from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from townsquare.services.errors import InputError
from townsquare.settings import Settings
from townsquare.store import open_store
from townsquare.store.base import Store

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="townsquare: ingest, search and summarize a social network's public posts.")
# Messages on stderr are never wrapped: an error stays one line however long its path, so
# scripts (and tests) can grep it. stdout's tables and listings wrap to the terminal.
err = Console(stderr=True, soft_wrap=True)
out = Console()

Home = Annotated[Optional[Path], typer.Option(
    "--home", help="Data folder (default: the global --home, else $TOWNSQUARE_HOME, else "
                   "./.townsquare).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def settings_of(ctx: typer.Context, home: Optional[Path] = None) -> Settings:
    """The run's settings (built by the root callback), with a command's ``--home`` over them."""
    settings: Settings = ctx.find_root().obj
    return settings.with_home(home)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error on stderr and exit with ``code``."""
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


def flag(field: str) -> str:
    """The command-line flag for a service's field name (``InputError.field``)."""
    return field if field.startswith("-") else "--" + field.replace("_", "-")


@contextmanager
def input_errors() -> Iterator[None]:
    """Turn a service's ``InputError`` into a one-line error naming the flag (exit 2)."""
    try:
        yield
    except InputError as e:
        fail(f"{flag(e.field)}: {e}")


def store_of(settings: Settings, *, write: bool = False) -> Store:
    """Open the store the settings name; exit 2 with a one-line error naming the path when it
    cannot be: a server that cannot be reached, a home that is a file or cannot be written, a
    database file that is not one (corrupt, or another program's), a newer schema. ``write``:
    the command writes, so it takes the home's writer lock now (``store.lock``), before any work,
    and a home another writer keeps (a running server) is the same one-line error."""
    target = settings.db_target
    try:
        store = open_store(target)
        if write:
            try:
                store.hold_writer_lock()
            except BaseException:
                store.close()
                raise
        return store
    except ConnectionError as e:               # unreachable server, or the writer lock is held
        fail(str(e))
    except sqlite3.OperationalError as e:      # cannot open or create the file, or locked
        fail(f"{target}: cannot open the database ({e})")
    except sqlite3.DatabaseError as e:         # "file is not a database", "malformed"
        fail(f"{target}: not a townsquare database ({e})")
    except OSError as e:                       # creating the home folder
        why = "a file, not a folder" if isinstance(e, FileExistsError) else e.strerror or e
        fail(f"{e.filename or settings.home}: cannot use as the home folder ({why})")
    except RuntimeError as e:                  # a schema newer than this townsquare
        fail(str(e))


# ANSI escape sequences (CSI "ESC [ ... final", OSC "ESC ] ... BEL or ESC \", two-byte ESC x),
# removed whole so no half of one reaches the terminal.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?",
                      re.S)
# Line and tab characters become spaces (one item per line); every other control character goes,
# C1 included (U+009B is a one-character CSI), and so do the bidirectional overrides and isolates
# that make a terminal show text in another order than it is (U+202A-202E, U+2066-2069).
_SPACES = str.maketrans({c: " " for c in "\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str, *, markup: bool = False) -> str:
    r"""Text from the data (a post, a handle, a file name, a quarantine reason) made safe to print:
    no escape sequence or control character from a post reaches the terminal, and it stays on
    one line. ``markup=True`` also escapes ``[`` for text put inside a Rich markup string, where
    ``[red]`` would style the output and ``[/x]`` would stop the command with an error.

        >>> printable("Flood \x1b[31mwarning\x1b[0m\non [red] st\x07", markup=True)
        'Flood warning on \\[red] st'
    """
    text = _CONTROLS.sub("", _ESCAPES.sub("", text).translate(_SPACES))
    return escape(text) if markup else text


def print_json(obj: Any) -> None:
    """``obj`` as indented JSON on stdout (never wrapped: scripts and tests read it)."""
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


def bar(name: str, quiet: bool) -> Progress:
    """A progress bar on stderr named ``name`` (nothing when ``quiet``)."""
    return Progress(TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, disable=quiet)


class ServiceBar:
    """A progress bar for a service's ``progress(done_now, total)`` callback: it starts on the
    first call (which gives the total), and stays hidden when ``quiet`` or when the total is
    under ``min_total`` (work too short to be worth a bar).

        >>> with ServiceBar("stories", quiet=True) as tick:
        ...     tick(0, 10); tick(10, 10)
    """

    def __init__(self, name: str, *, quiet: bool, min_total: int = 0):
        self.name, self.quiet, self.min_total = name, quiet, min_total
        self._bar: Progress | None = None
        self._task = 0

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = bar(self.name, self.quiet or total < self.min_total)
            self._bar.start()
            self._task = self._bar.add_task(self.name, total=total)
        self._bar.advance(self._task, done)

    def __enter__(self) -> "ServiceBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

"""What every command of the CLI shares: the Typer ``app`` they register on, the ``--home`` and
``--json`` options, the settings of the run, opening the store, JSON output, one-line errors and
progress bars on stderr.

    >>> flag("window"), flag("baseline_windows"), flag("--since")
    ('--window', '--baseline-windows', '--since')

The root callback (``townsquare.cli``) builds one ``Settings`` from the global options and
puts it in the context; a command's own ``--home`` overrides its home (``settings_of``).
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import orjson
import typer
from rich.console import Console
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


def store_of(settings: Settings) -> Store:
    """Open the store the settings name (exit 2 with a one-line error when it cannot be
    reached)."""
    try:
        return open_store(settings.db_target)
    except ConnectionError as e:
        fail(str(e))


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

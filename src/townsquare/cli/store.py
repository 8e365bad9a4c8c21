"""``townsquare store``: whole-store operations across backends.

    townsquare store copy .townsquare postgresql://me@db.example/townsquare
    townsquare store copy postgresql://me@db.example/townsquare ./back.db --verify --json
    townsquare store copy old.db .townsquare --into-nonempty

SRC and DST are each a home folder or a ``.db`` file (the embedded store) or a ``postgresql://``
URL. The copy refuses (exit 2) a DST that already holds posts unless ``--into-nonempty``, where it
merges (upserts are idempotent, so running it twice changes nothing). ``--verify`` compares both
stores afterwards (``townsquare.store.copy.compare``) and exits 1 when they differ. Progress goes
to stderr; the counts per kind to stdout.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from townsquare.cli.common import Json, app, err, fail, out, print_json
from townsquare.settings import DB_FILE

store_app = typer.Typer(no_args_is_help=True,
                        help="Whole-store operations (copy between backends).")
app.add_typer(store_app, name="store")


def _open(target: str, *, must_exist: bool):
    """Open a store by URL, ``.db`` file or home folder; exits 2 with a one-line reason."""
    from townsquare.store import open_store
    is_url = target.startswith(("postgresql://", "postgres://"))
    if must_exist and not is_url:
        p = Path(target)
        db = p if p.suffix == ".db" else p / DB_FILE
        if not db.is_file():     # opening would create an empty store and copy nothing
            fail(f"no store at {target} (expected {db})")
    try:
        return open_store(target)
    except (ConnectionError, RuntimeError, OSError) as e:
        fail(str(e))


def _same(src: str, dst: str) -> bool:
    def norm(t: str) -> str:
        if t.startswith(("postgresql://", "postgres://")):
            return t.rstrip("/")
        p = Path(t)
        return str((p if p.suffix == ".db" else p / DB_FILE).resolve())
    return norm(src) == norm(dst)


@store_app.command("copy")
def store_copy(
    src: Annotated[str, typer.Argument(
        help="Source: a home folder, a .db file or a postgresql:// URL.")],
    dst: Annotated[str, typer.Argument(help="Destination: the same kinds; created when absent.")],
    batch: Annotated[int, typer.Option(min=1, help="Posts per write.")] = 2000,
    into_nonempty: Annotated[bool, typer.Option(
        "--into-nonempty", help="Merge into a destination that already holds posts.")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Compare both stores afterwards; exit 1 when they differ.")] = False,
    json_out: Json = False,
) -> None:
    """Copy a whole store (posts with every source's labels, tombstones, opt-outs, quarantine,
    near-duplicates, embeddings and watermarks) between the embedded store and PostgreSQL."""
    from townsquare.store.copy import CopyError, compare, copy_store
    if _same(src, dst):
        fail("the source and the destination are the same store")
    source = _open(src, must_exist=True)
    try:
        target = _open(dst, must_exist=False)
    except typer.Exit:
        source.close()
        raise
    with source, target:
        with Progress(TextColumn("[bold]{task.description:<10}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                      disable=json_out) as bar:
            tasks: dict[str, int] = {}

            def progress(kind: str, n: int, total: int | None) -> None:
                if kind not in tasks:
                    tasks[kind] = bar.add_task(kind, total=total)
                bar.advance(tasks[kind], n)
            try:
                res = copy_store(source, target, batch=batch, into_nonempty=into_nonempty,
                                 progress=progress)
            except CopyError as e:
                bar.stop()
                err.print(f"[red]error:[/] {e}")
                raise typer.Exit(2) from None
        diffs = compare(source, target, batch=batch) if verify else None
    report = res.to_dict()
    if diffs is not None:
        report["differences"] = diffs
    if json_out:
        print_json(report)
    else:
        for k, v in report.items():
            if k != "differences":
                out.print(f"{k:>22}  {v}")
        if diffs is not None:
            out.print("verify: identical" if not diffs else f"verify: {len(diffs)} differences")
            for d in diffs:
                out.print(f"  {d}", markup=False, highlight=False)
    if diffs:
        raise typer.Exit(1)

"""``townsquare jobs``: bulk jobs on Dask (a local cluster by default, any cluster by address).

    townsquare jobs embed [--model e5-small-int8] [--workers 2] [--chunk 1000]
    townsquare jobs embed --scheduler tcp://10.0.0.5:8786
"""
from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from townsquare.cli import Home, Json, _print_json, _store, app, err, out
from townsquare.store import resolve_home

jobs_app = typer.Typer(no_args_is_help=True, help="Bulk jobs on a Dask cluster.")
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("embed")
def jobs_embed(
    home: Home = None,
    model: Annotated[Optional[str], typer.Option(
        help="Embedding model (default: the store's, else e5-small-int8).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        help="A Dask scheduler address (default: a local cluster).")] = None,
    workers: Annotated[int, typer.Option(help="Local cluster worker processes.")] = 2,
    chunk: Annotated[int, typer.Option(help="Posts per task.")] = 1000,
    json_out: Json = False,
) -> None:
    """Embed every post not embedded yet, on Dask workers; the vectors are the in-process
    path's (``townsquare embed``), written in ingest order so an interrupted job resumes."""
    from townsquare.embed.stage import ModelMismatch
    from townsquare.jobs.backfill import backfill
    folder = resolve_home(home)
    client = None
    if scheduler:
        from distributed import Client
        try:
            client = Client(scheduler, timeout=30)
        except OSError as e:
            err.print(f"[red]error:[/] cannot reach the Dask scheduler at {scheduler}: {e}")
            raise typer.Exit(2) from None
    with _store(home) as store:
        name = model or store.embed_model() or "e5-small-int8"
        total = store.embedding_pending()
        with Progress(TextColumn("[bold]embed"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, disable=json_out) as bar:
            task = bar.add_task("embed", total=total)
            try:
                r = backfill(store, name, client=client, workers=workers, chunk=chunk,
                             home=folder, progress=lambda n: bar.advance(task, n))
            except (ModelMismatch, ValueError) as e:
                err.print(f"[red]error:[/] {e}")
                raise typer.Exit(2) from None
            finally:
                if client is not None:
                    client.close()
    if json_out:
        _print_json({"model": name, **r.to_dict()})
    else:
        out.print(f"embedded {r.embedded:,} posts with {name} on {r.workers} workers in "
                  f"{r.seconds:.1f} s ({r.posts_per_s:,.0f} posts/s)")

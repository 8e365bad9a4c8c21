"""Search and the semantic index behind it: ``search``, ``embed``.

    townsquare search "flood -from:bot lang:en" [--mode top|latest] [--limit 20] [--json]
    townsquare embed [--model e5-small-int8] [--reset] [--max-posts N] [--json]
"""
from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from townsquare.cli.common import (
    Home,
    Json,
    app,
    err,
    fail,
    out,
    print_json,
    printable,
    settings_of,
    store_of,
)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Twitter search syntax, e.g. 'flood -from:bot lang:en'.")],
    home: Home = None,
    mode: Annotated[str, typer.Option(help="'top' (relevance) or 'latest' (time).")] = "top",
    limit: Annotated[int, typer.Option(help="Results per page (1-1000).")] = 20,
    cursor: Annotated[Optional[str], typer.Option(help="Next page: the cursor a page returned.")] = None,
    semantic: Annotated[bool, typer.Option(
        "--semantic/--no-semantic", help="Use embeddings when the store has them.")] = True,
    json_out: Json = False,
) -> None:
    """Search the posts (lexical + semantic, fused and ranked), with per-stage timings."""
    from townsquare.query import QueryError
    from townsquare.search.engine import PENDING_COUNTED, SearchError
    from townsquare.services.indexes import build_engine

    settings = settings_of(ctx, home)
    with store_of(settings) as store:
        try:
            resp = build_engine(store, settings, semantic=semantic).run(
                query, mode=mode, limit=limit, cursor=cursor)
        except QueryError as e:
            err.print(f"[red]query error:[/] {e}")
            raise typer.Exit(2) from None
        except SearchError as e:
            fail(str(e))
    if json_out:
        print_json(resp.to_dict())
        return
    for i, h in enumerate(resp.results, 1):
        d = h.to_dict()
        dup = f"  (+{h.near_duplicates} near-duplicates)" if h.near_duplicates else ""
        out.print(f"[bold]{i}.[/] {d['created_at']}  @{printable(h.author or '-', markup=True)}  "
                  f"id {d['id']}  score {h.score:.4f}  "
                  f"\\[{printable(', '.join(h.matched), markup=True)}]{dup}")
        out.print("   " + printable(h.text), markup=False, highlight=False)
    if not resp.results:
        out.print("no results")
    sem = resp.semantic
    more = "+" if sem.get("pending_posts", 0) >= PENDING_COUNTED else ""   # counted up to it
    out.print("semantic: " + ("used, " + f"{sem['embedded']:,} posts embedded, "
                              f"{sem['pending_posts']:,}{more} pending" if sem.get("used")
                              else f"not used ({sem['reason']})"))
    out.print("timings (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in resp.timings_ms.items()))
    if resp.next_cursor:
        out.print(f"next page: --cursor {resp.next_cursor}")


@app.command()
def embed(
    ctx: typer.Context,
    home: Home = None,
    model: Annotated[Optional[str], typer.Option(help="Embedding model (default: the store's model, else multilingual e5-small-int8).")] = None,
    reset: Annotated[bool, typer.Option(help="Drop vectors of another model and start over.")] = False,
    max_posts: Annotated[Optional[int], typer.Option(help="Stop after this many posts.")] = None,
    json_out: Json = False,
) -> None:
    """Embed the posts not embedded yet (the semantic index catches up on the next search)."""
    from townsquare.embed.stage import EmbedStage, ModelMismatch
    from townsquare.services.indexes import embedder_for, vector_index

    settings = settings_of(ctx, home)
    with store_of(settings, write=True) as store:
        try:
            emb = embedder_for(store, settings, model)
            stage = EmbedStage(store, emb, reset=reset)
        except (ValueError, ModelMismatch) as e:
            fail(str(e))
        pending = store.embedding_lag()["pending_posts"]
        total = pending if max_posts is None else min(pending, max_posts)
        with Progress(TextColumn("[bold]embed"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("posts  {task.fields[rate]:,.0f} posts/s"), TimeElapsedColumn(),
                      console=err, disable=json_out) as bar:
            task = bar.add_task("embed", total=total, rate=0.0)

            def progress(n: int) -> None:
                bar.advance(task, n)
                bar.update(task, rate=bar.tasks[0].completed / (bar.tasks[0].elapsed or 1e-9))

            res = stage.run(max_posts=max_posts, progress=progress)
        indexed = vector_index(store, settings.home, emb)
        indexed.refresh()
        lag = store.embedding_lag()
    result = {"model": emb.name, "embedded_now": res.processed, "seconds": round(res.seconds, 2),
              "posts_per_s": round(res.posts_per_s, 1), "index_size": len(indexed),
              "pending_posts": lag["pending_posts"]}
    if json_out:
        print_json(result)
    else:
        out.print(", ".join(f"{k}: {v}" for k, v in result.items()))


@app.command("fit-fast")
def fit_fast(
    ctx: typer.Context,
    home: Home = None,
    max_posts: Annotated[int, typer.Option(
        help="Fit on the newest posts with e5 vectors, at most this many.")] = 100_000,
    epochs: Annotated[int, typer.Option(help="Passes over the training posts.")] = 2,
    fallback_weight: Annotated[float, typer.Option(
        help="Weight of e5's own vector of a piece the fit has no row for (0: none, the "
             "default; above 0 needs e5's vector of every piece, made once per machine, "
             "~1-2 min).")] = 0.0,           # FitConfig.fallback_weight
    json_out: Json = False,
) -> None:
    """Fit the fast embedding tier (fit-e5) on this home's own e5 vectors, into
    HOME/models/fit-e5.npz: about 1 minute per 100,000 posts on 2 cores. Then run the server
    with fast_model = "fit-e5" (or "auto"); see docs/embedding-tiers.md."""
    from townsquare.embed.fitted import FitConfig, FitError
    from townsquare.services.indexes import fit_fast as fit

    settings = settings_of(ctx, home)
    try:
        config = FitConfig(max_posts=max_posts, epochs=epochs, fallback_weight=fallback_weight,
                           min_posts=min(FitConfig.min_posts, max_posts))
    except ValueError as e:
        fail(str(e))
    with store_of(settings) as store:
        with Progress(TextColumn("[bold]fit-fast"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("batches"), TimeElapsedColumn(), console=err,
                      disable=json_out) as bar:
            task = bar.add_task("fit", total=None)
            try:
                report = fit(store, settings, config,
                             progress=lambda done, total: bar.update(task, completed=done,
                                                                    total=total))
            except FitError as e:
                fail(str(e))
    if json_out:
        print_json(report.to_dict())
    else:
        out.print(f"fitted {report.pieces:,} pieces on {report.posts:,} posts in "
                  f"{report.seconds:.1f} s (loss {report.loss[0]} -> {report.loss[-1]}); "
                  f"wrote {report.path}", highlight=False)

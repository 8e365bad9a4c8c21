"""``townsquare jobs``: bulk jobs on Dask (a local cluster by default, any cluster by address).

    townsquare jobs embed [--model e5-small-int8] [--workers 2] [--chunk 1000]
    townsquare jobs embed --scheduler tcp://10.0.0.5:8786
    townsquare jobs recluster --since 2020-01-01 --until 2020-01-08 [--out FILE] [--json]
    townsquare jobs recluster --replace-live          # rebuild the live stories (stories.pkl)
    townsquare jobs corpus --out DIR [--langs en,fr] [--json]

Every job exits 2 with a one-line error for input it cannot run with (a bad time range, an
unreachable scheduler); the driver (this process) is the store's only writer.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer

from townsquare.cli.common import (
    Home,
    Json,
    app,
    bar,
    fail,
    input_errors,
    out,
    print_json,
    settings_of,
    store_of,
)
from townsquare.services.times import parse_time

jobs_app = typer.Typer(no_args_is_help=True, help="Bulk jobs on a Dask cluster.")
app.add_typer(jobs_app, name="jobs")

Scheduler = Annotated[Optional[str], typer.Option(
    help="A Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a local cluster).")]
Workers = Annotated[int, typer.Option(help="Local cluster worker processes.")]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for --scheduler.")]


def _connect(scheduler: Optional[str], timeout: float = 30.0):
    """A client on ``scheduler``, None for a local cluster; exits 2 when it cannot be reached."""
    from townsquare.jobs.runner import JobError, connect
    if not scheduler:
        return None
    try:
        return connect(scheduler, timeout)
    except JobError as e:
        fail(str(e))


@jobs_app.command("embed")
def jobs_embed(
    ctx: typer.Context,
    home: Home = None,
    model: Annotated[Optional[str], typer.Option(
        help="Embedding model (default: the store's, else e5-small-int8).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        help="A Dask scheduler address (default: a local cluster).")] = None,
    workers: Workers = 2,
    chunk: Annotated[int, typer.Option(help="Posts per task.")] = 1000,
    timeout: Timeout = 30.0,
    json_out: Json = False,
) -> None:
    """Embed every post not embedded yet, on Dask workers; the vectors are the in-process
    path's (``townsquare embed``), written in ingest order so an interrupted job resumes."""
    from townsquare.embed.stage import ModelMismatch
    from townsquare.jobs.backfill import backfill
    from townsquare.services.indexes import embed_model_for
    settings = settings_of(ctx, home)
    client = _connect(scheduler, timeout)
    with store_of(settings, write=True) as store:
        name = embed_model_for(store, settings, model)
        total = store.embedding_pending()
        with bar("embed", json_out) as embed_bar:
            task = embed_bar.add_task("embed", total=total)
            try:
                r = backfill(store, name, client=client, workers=workers, chunk=chunk,
                             cache_dir=settings.cache_dir,
                             progress=lambda n: embed_bar.advance(task, n))
            except (ModelMismatch, ValueError) as e:
                fail(str(e))
            finally:
                if client is not None:
                    client.close()
    if json_out:
        print_json({"model": name, **r.to_dict()})
    else:
        out.print(f"embedded {r.embedded:,} posts with {name} on {r.workers} workers in "
                  f"{r.seconds:.1f} s ({r.posts_per_s:,.0f} posts/s)")


@jobs_app.command("recluster")
def jobs_recluster(
    ctx: typer.Context,
    home: Home = None,
    since: Annotated[Optional[str], typer.Option(
        help="Posts created from this time (UTC): 2020-01-02 or 2020-01-02T10:00:00Z.")] = None,
    until: Annotated[Optional[str], typer.Option(help="... up to this time (exclusive).")] = None,
    scheduler: Scheduler = None,
    workers: Workers = 2,
    chunk: Annotated[int, typer.Option(help="Posts per task.")] = 2000,
    limit: Annotated[Optional[int], typer.Option(help="How many stories (default: all).")] = None,
    out_file: Annotated[Optional[Path], typer.Option(
        "--out", help="Also write the stories' JSON to this file.")] = None,
    replace_live: Annotated[bool, typer.Option(
        "--replace-live", help="Re-cluster every post in event time and replace the live "
                               "story state (HOME/stories.pkl, what `townsquare stories` reads; "
                               "a running server keeps its own); no --since / --until.")] = False,
    timeout: Timeout = 30.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list of stories.")] = False,
) -> None:
    """Re-cluster the stories of a time range on Dask workers (features on the workers, the
    order-dependent clustering here): the same stories as the in-process clusterer, printed as
    `townsquare stories --json` prints them. The live story state is left alone unless
    --replace-live."""
    from townsquare.jobs.recluster import check_range, cluster_live, cluster_range
    from townsquare.jobs.runner import JobError
    from townsquare.services.happening import STORIES_FILE
    with input_errors():
        lo, hi = parse_time(since, "--since"), parse_time(until, "--until")
    try:
        check_range(lo, hi)
        if replace_live and (lo is not None or hi is not None):
            raise JobError("--replace-live re-clusters every post: leave out --since / --until")
        if chunk < 1 or workers < 1 or (limit is not None and limit < 1):
            raise JobError("--chunk, --workers and --limit must be >= 1")
    except JobError as e:
        fail(str(e))
    settings = settings_of(ctx, home)
    live_file = settings.home / STORIES_FILE
    client = _connect(scheduler, timeout)
    try:
        with store_of(settings, write=True) as store:
            total = store.count() if replace_live or (lo is None and hi is None) else None
            with bar("recluster", json_out) as recluster_bar:
                task = recluster_bar.add_task("recluster", total=total)
                kw = {"client": client, "workers": workers, "chunk": chunk,
                      "progress": lambda n: recluster_bar.advance(task, n)}
                r = (cluster_live(store, **kw) if replace_live
                     else cluster_range(store, lo, hi, **kw))
            stories = r.stories(limit)
            if replace_live:
                r.state.path = live_file
                r.state.save()
    finally:
        if client is not None:
            client.close()
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_bytes(orjson.dumps(stories, option=orjson.OPT_INDENT_2) + b"\n")
    if json_out:
        print_json(stories)
        return
    for s in stories:
        out.print(f"[bold]story {s['id']}[/]  {s['posts']:,} posts, {s['authors']:,} authors  "
                  f"{s['first']} .. {s['last']}", highlight=False)
        out.print("   " + s["headline"], markup=False, highlight=False)
    d = r.to_dict()
    out.print(f"re-clustered {d['posts']:,} posts on {d['workers']} workers in "
              f"{d['seconds']:.1f} s: {d['stories']:,} stories, "
              f"{d['unassigned_share']:.1%} of posts in none"
              + (f"; replaced {live_file}" if replace_live else "")
              + (f"; wrote {out_file}" if out_file is not None else ""), highlight=False)


@jobs_app.command("corpus")
def jobs_corpus(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option(
        "--out", help="Folder for corpus.jsonl and manifest.json.")],
    home: Home = None,
    langs: Annotated[Optional[str], typer.Option(
        help="Keep only these languages, e.g. en,fr.")] = None,
    scheduler: Scheduler = None,
    workers: Workers = 2,
    chunk: Annotated[int, typer.Option(help="Posts per task.")] = 2000,
    timeout: Timeout = 30.0,
    json_out: Json = False,
) -> None:
    """Build the governed training corpus (corpus.jsonl, manifest.json) with scrubbing and MinHash
    on Dask workers and the order-dependent dedup here: the same bytes as the in-process build.
    The tokenizer and token shards stay with `townsquare corpus build`."""
    from townsquare.jobs.corpus import build_corpus
    from townsquare.train.corpus import CorpusConfig
    try:
        cfg = CorpusConfig(langs=tuple(x.strip() for x in langs.split(",")) if langs else None)
        if chunk < 1 or workers < 1:
            raise ValueError("--chunk and --workers must be >= 1")
    except (TypeError, ValueError) as e:
        fail(str(e))
    client = _connect(scheduler, timeout)
    try:
        with store_of(settings_of(ctx, home)) as store, bar("corpus", json_out) as corpus_bar:
            task = corpus_bar.add_task("corpus", total=store.count())
            r = build_corpus(store, out_dir, cfg, client=client, workers=workers, chunk=chunk,
                             progress=lambda n: corpus_bar.update(task, completed=n))
    finally:
        if client is not None:
            client.close()
    if json_out:
        print_json({**r.to_dict(), "folder": str(out_dir)})
        return
    out.print(f"corpus: {r.manifest.counts}", highlight=False)
    out.print(f"wrote {out_dir / 'corpus.jsonl'} and manifest.json on {r.workers} workers in "
              f"{r.seconds:.1f} s", highlight=False)

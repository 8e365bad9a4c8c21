"""Getting posts in and out: ``ingest``, ``stats``, ``quarantine``, ``enrich``, ``delete``,
``export``.

    townsquare ingest ../shared/data [--format jsonl] [--source NAME] [--json]
    townsquare stats [--json]
    townsquare quarantine [--limit 20] [--json]
    townsquare enrich [--json]
    townsquare delete ID...
    townsquare export [--format jsonl] [-o FILE]

Commands import their machinery when they run, so ``townsquare --help`` starts fast.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from townsquare.cli.common import (
    Home,
    Json,
    ServiceBar,
    app,
    err,
    out,
    print_json,
    settings_of,
    store_of,
)
from townsquare.ingest.detect import FORMATS


def parse_columns(spec: Optional[str]) -> Optional[dict[str, str]]:
    """``--columns 'id=post_id,text=body'`` as a mapping (None when not given).

        >>> parse_columns("id=post_id, text = body")
        {'id': 'post_id', 'text': 'body'}
    """
    if not spec:
        return None
    pairs = {}
    for part in spec.split(","):
        if "=" not in part:
            raise typer.BadParameter(f"expected FIELD=HEADER, got {part!r}", param_hint="--columns")
        k, v = part.split("=", 1)
        pairs[k.strip()] = v.strip()
    return pairs


def _late_stage(store, quiet: bool, with_label: bool) -> dict:
    """Run the late stage (language id, near-duplicate links) with a bar; what it did."""
    from townsquare.ingest.enrich import LateStage

    pending = store.stats()["late_stage"]["pending_posts"]
    label = [TextColumn("posts (language id, near-duplicate links)")] if with_label else []
    with Progress(TextColumn("[bold]late stage"), BarColumn(), MofNCompleteColumn(), *label,
                  TimeElapsedColumn(), console=err, disable=quiet) as late_bar:
        task = late_bar.add_task("late", total=pending)
        res = LateStage(store).run(progress=lambda n: late_bar.advance(task, n))
    return {"processed": res.processed, "languages_detected": res.languages_detected,
            "near_duplicates_linked": res.linked, "seconds": round(res.seconds, 2)}


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (read recursively).")],
    home: Home = None,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help=f"Force a reader: {', '.join(FORMATS)} (default: detect per file).")] = None,
    source: Annotated[Optional[str], typer.Option(
        help="Dataset name for these posts (default: known layout, else the file's folder).")] = None,
    columns: Annotated[Optional[str], typer.Option(
        help="CSV column mapping, e.g. 'id=post_id,text=body'.")] = None,
    batch_size: Annotated[int, typer.Option(help="Posts per transaction.")] = 5000,
    writer: Annotated[str, typer.Option(
        help="Where the store's writes run: 'process' (beside the parsing, in a child process), "
             "'inline', or 'auto' (a process for inputs of 8 MiB or more).")] = "auto",
    late: Annotated[bool, typer.Option(
        "--late/--no-late", help="Run language id and near-duplicate linking after ingesting.")] = True,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any record was quarantined.")] = False,
    json_out: Json = False,
) -> None:
    """Read posts from files (v1.1/v2 JSON, JSON Lines, X archive, CSV/TSV) into the store."""
    from townsquare.ingest.pipeline import IngestPipeline
    from townsquare.services.indexes import refresh_lexical_index

    if fmt is not None and fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}",
                                 param_hint="--format")
    for p in paths:
        if not p.exists():
            raise typer.BadParameter(f"no such file or folder: {p}", param_hint="PATHS")
    settings = settings_of(ctx, home)
    store = store_of(settings)
    pipeline = IngestPipeline(store, fmt=fmt, source=source, columns=parse_columns(columns),
                              batch_size=batch_size, writer=writer)
    n_files = sum(1 for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    counts = {"posts": 0, "bad": 0}
    with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("files  {task.fields[posts]:,} posts  {task.fields[rate]:,.0f} posts/s"
                             "  {task.fields[bad]:,} quarantined"),
                  TimeElapsedColumn(), console=err, disable=json_out) as files_bar:
        task = files_bar.add_task("ingest", total=n_files, posts=0, rate=0.0, bad=0)

        def progress(fr, posts: int, bad: int, done: bool) -> None:
            counts["posts"] += posts
            counts["bad"] += bad
            elapsed = files_bar.tasks[0].elapsed or 1e-9
            files_bar.update(task, advance=1 if done else 0, posts=counts["posts"],
                             bad=counts["bad"], rate=counts["posts"] / elapsed)

        report = pipeline.run(paths, progress)
    result = report.to_dict()
    if late:
        result["late_stage"] = _late_stage(store, json_out, with_label=True)
    with ServiceBar("lexical index", quiet=json_out) as tick:
        result["lexical_index"] = refresh_lexical_index(store, settings.home, tick)
    store.close()
    if json_out:
        print_json(result)
    else:
        t = Table(title="ingested", show_header=False)
        for k in ("files", "posts_read", "inserted", "updated", "unchanged", "skipped_deleted",
                  "quarantined", "seconds", "posts_per_s"):
            t.add_row(k, f"{result[k]:,}" if isinstance(result[k], int) else str(result[k]))
        for src, n in result["records_by_source"].items():
            t.add_row(f"records from {src}", f"{n:,}")
        if late:
            for k, v in result["late_stage"].items():
                t.add_row(f"late stage: {k}", f"{v:,}" if isinstance(v, int) else str(v))
        out.print(t)
        skipped = result["skipped_files"]
        if skipped:
            out.print(f"{len(skipped)} files skipped (not posts); first: "
                      + "; ".join(f"{Path(p).name}: {why}" for p, why in list(skipped.items())[:3]))
        if result["quarantined"]:
            out.print(f"{result['quarantined']:,} records quarantined: "
                      "see `townsquare quarantine`")
    if strict and result["quarantined"]:
        raise typer.Exit(1)


@app.command()
def stats(ctx: typer.Context, home: Home = None, json_out: Json = False) -> None:
    """Posts per source, language and day; quarantine; the late stage's lag."""
    with store_of(settings_of(ctx, home)) as store:
        s = store.stats()
    if json_out:
        print_json(s)
        return
    out.print(f"[bold]{s['posts']:,} posts[/]  ({s['near_duplicates']:,} linked as near-duplicates, "
              f"{s['deleted']:,} deleted, {s['quarantined']:,} records quarantined)")
    for title, key, limit in (("posts per source", "by_source", None),
                              ("posts per language", "by_lang", 12)):
        t = Table(title=title)
        t.add_column(key[3:])
        t.add_column("posts", justify="right")
        for k, v in list(s[key].items())[:limit]:
            t.add_row(str(k), f"{v:,}")
        out.print(t)
    days = s["by_day"]
    if days:
        busiest = sorted(days.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        out.print(f"days: {len(days):,} from {min(days)} to {max(days)}; busiest: "
                  + ", ".join(f"{d} ({n:,})" for d, n in busiest) + "  (all days: --json)")
    if s["quarantine_by_reason"]:
        out.print("quarantined by reason: " + ", ".join(
            f"{k}: {v:,}" for k, v in s["quarantine_by_reason"].items()))
    lag = s["late_stage"]
    out.print(f"late stage (language id, near-duplicate links): {lag['pending_posts']:,} posts "
              f"pending, oldest waiting {lag['oldest_pending_age_s']} s")
    emb = s["embeddings"]
    out.print(f"embeddings ({emb['model'] or 'none yet'}): {emb['embedded']:,} posts embedded, "
              f"{emb['pending_posts']:,} pending, oldest waiting {emb['oldest_pending_age_s']} s "
              "(lexical search never waits for them)")


@app.command()
def quarantine(ctx: typer.Context, home: Home = None,
               limit: Annotated[int, typer.Option(help="How many.")] = 20,
               json_out: Json = False) -> None:
    """Records that could not be stored, with file, line and reason."""
    with store_of(settings_of(ctx, home)) as store:
        items = store.quarantine_items(limit)
    if json_out:
        print_json([{"source": q.source, "file": q.file, "line": q.line, "reason": q.reason,
                     "raw": q.raw} for q in items])
        return
    for q in items:
        out.print(f"{q.file}:{q.line}: {q.reason}", highlight=False)


@app.command()
def enrich(ctx: typer.Context, home: Home = None, json_out: Json = False) -> None:
    """Run the late stage: language id for posts without one, near-duplicate linking."""
    with store_of(settings_of(ctx, home)) as store:
        result = _late_stage(store, json_out, with_label=False)
    if json_out:
        print_json(result)
    else:
        out.print(", ".join(f"{k}: {v}" for k, v in result.items()))


@app.command()
def delete(ctx: typer.Context, ids: Annotated[list[str], typer.Argument(help="Post ids.")],
           home: Home = None) -> None:
    """Delete posts by id from every index; a deleted id is never stored again."""
    from townsquare.posts import PostError, parse_id

    try:
        parsed = [parse_id(i) for i in ids]
    except PostError as e:
        raise typer.BadParameter(str(e), param_hint="IDS") from None
    with store_of(settings_of(ctx, home)) as store:
        n = store.delete(parsed)
    out.print(f"deleted {n} of {len(parsed)} posts ({len(parsed) - n} were not stored)")


@app.command()
def export(ctx: typer.Context, home: Home = None,
           fmt: Annotated[str, typer.Option("--format", help="Output format.")] = "jsonl",
           output: Annotated[Optional[Path], typer.Option("--output", "-o",
                                                          help="File (default: stdout).")] = None
           ) -> None:
    """Every post as JSON Lines (townsquare's format: re-ingestible with `townsquare ingest`)."""
    if fmt != "jsonl":
        raise typer.BadParameter(f"unknown format {fmt!r}; supported: jsonl", param_hint="--format")
    from townsquare.export import export_jsonl

    with store_of(settings_of(ctx, home)) as store:
        if output is None:
            n = export_jsonl(store, sys.stdout.buffer)
        else:
            with open(output, "wb") as f:
                n = export_jsonl(store, f)
    err.print(f"exported {n:,} posts")

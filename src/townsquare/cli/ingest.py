"""Getting posts in and out: ``ingest``, ``stats``, ``quarantine``, ``enrich``, ``delete``,
``export``.

    townsquare ingest ../shared/data [--format jsonl] [--source NAME] [--json]
    townsquare stats [--json]
    townsquare quarantine [--limit 20] [--json]
    townsquare enrich [--json]
    townsquare delete ID...
    townsquare export [--format jsonl] [-o FILE]
    townsquare export --user USER [-o FILE]      # everything held about one user (services.privacy)

Commands import their machinery when they run, so ``townsquare --help`` starts fast.
"""
from __future__ import annotations

import os
import sys
import time
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
    fail,
    input_errors,
    out,
    print_json,
    printable,
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

    pending = store.late_stage_lag()["pending_posts"]
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
    strict: Annotated[bool, typer.Option(
        help="Exit 1 when any record was quarantined or any file could not be read.")] = False,
    json_out: Json = False,
) -> None:
    """Read posts from files (v1.1/v2 JSON, JSON Lines, X archive, CSV/TSV) into the store.

    Files that hold no posts (a README) are listed as skipped; files that cannot be read (a
    broken link, a FIFO, no permission, UTF-16 without a byte order mark) as skipped and
    unreadable. Either way the next file is read."""
    from townsquare.ingest.detect import discover
    from townsquare.ingest.pipeline import WRITERS, IngestPipeline
    from townsquare.services.indexes import refresh_lexical_index

    # Every option is checked before the store is opened: a typo creates no home.
    if fmt is not None and fmt not in FORMATS:
        fail(f"--format: unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if batch_size < 1:
        fail(f"--batch-size: must be at least 1, got {batch_size}")
    if source is not None and not source.strip():
        fail("--source: must not be empty")
    if writer not in WRITERS:
        fail(f"--writer: unknown writer {writer!r}; one of {', '.join(WRITERS)}")
    try:
        column_map = parse_columns(columns)
    except typer.BadParameter as e:
        fail(f"--columns: {e.message}")
    for p in paths:
        if not os.path.lexists(p):
            fail(f"no such file or folder: {printable(str(p), markup=True)}")
    settings = settings_of(ctx, home)
    store = store_of(settings, write=True)
    pipeline = IngestPipeline(store, fmt=fmt, source=source, columns=column_map,
                              batch_size=batch_size, writer=writer)
    n_files = sum(1 for _ in discover(paths))
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
            t.add_row(f"records from {printable(src, markup=True)}", f"{n:,}")
        if late:
            for k, v in result["late_stage"].items():
                t.add_row(f"late stage: {k}", f"{v:,}" if isinstance(v, int) else str(v))
        out.print(t)
        unreadable = result["unreadable_files"]
        by_design = {p: why for p, why in result["skipped_files"].items() if p not in unreadable}
        if by_design:
            out.print(printable(f"{len(by_design)} files skipped (not posts); first: " + "; ".join(
                f"{Path(p).name}: {why}" for p, why in list(by_design.items())[:3])),
                markup=False, highlight=False)
        for p, why in unreadable.items():     # every one: each is data that was not read
            err.print(f"[yellow]not read:[/] {printable(p, markup=True)}: "
                      f"{printable(why, markup=True)}", highlight=False)
        if result["quarantined"]:
            out.print(f"{result['quarantined']:,} records quarantined: "
                      "see `townsquare quarantine`")
    if strict and (result["quarantined"] or result["unreadable_files"]):
        raise typer.Exit(1)


@app.command()
def stats(ctx: typer.Context, home: Home = None, json_out: Json = False) -> None:
    """Posts per source, language and day; quarantine; the late stage's lag; followed streams."""
    from townsquare.follow.stats import read_stats, state_folder
    from townsquare.services.freshness import home_arm_lags

    settings = settings_of(ctx, home)
    with store_of(settings) as store:
        s = store.stats()
        s["freshness"] = home_arm_lags(store, settings.home)   # lexical, fast, e5: posts, s
    s["follow"] = read_stats(state_folder(settings.home), time.time())   # `townsquare follow`
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
    for f in s["follow"]:
        lag = "-" if f["lag_ms"] is None else f"{f['lag_ms'] / 1000:.1f} s"
        state = ("stopped" if f["stale"] else f"connected since {f['connected_since']}"
                 if f["connected"] else "reconnecting")
        out.print(f"follow {f['source']} ({f['kind']}): {state}; {f['posts_per_s']:,} posts/s, "
                  f"last event {f['last_event'] or '-'}, lag {lag}, {f['reconnects']} reconnects, "
                  f"{f['quarantined']:,} quarantined, {f['dropped']:,} dropped", highlight=False)


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
        out.print(printable(f"{q.file}:{q.line}: {q.reason}"), markup=False, highlight=False,
                  soft_wrap=True)                # one line per record, whatever the width


@app.command()
def enrich(ctx: typer.Context, home: Home = None, json_out: Json = False) -> None:
    """Run the late stage: language id for posts without one, near-duplicate linking."""
    with store_of(settings_of(ctx, home), write=True) as store:
        result = _late_stage(store, json_out, with_label=False)
    if json_out:
        print_json(result)
    else:
        out.print(", ".join(f"{k}: {v}" for k, v in result.items()))


# ignore_unknown_options: another platform's id is negative (-8070...) and must not read as an
# option; `townsquare delete -- ID` works too.
@app.command(context_settings={"ignore_unknown_options": True})
def delete(ctx: typer.Context, ids: Annotated[list[str], typer.Argument(help="Post ids.")],
           home: Home = None) -> None:
    """Delete posts by id from every index; a deleted id is never stored again."""
    from townsquare.posts import PostError, parse_id

    try:
        parsed = [parse_id(i) for i in ids]
    except PostError as e:
        raise typer.BadParameter(str(e), param_hint="IDS") from None
    with store_of(settings_of(ctx, home), write=True) as store:
        n = store.delete(parsed)
    out.print(f"deleted {n} of {len(parsed)} posts ({len(parsed) - n} were not stored)")


@app.command()
def export(ctx: typer.Context, home: Home = None,
           fmt: Annotated[str, typer.Option("--format", help="Output format.")] = "jsonl",
           output: Annotated[Optional[Path], typer.Option("--output", "-o",
                                                          help="File (default: stdout).")] = None,
           user: Annotated[Optional[str], typer.Option(
               "--user", help="Only what is held about this handle or id, as one JSON document "
                              "(GDPR Art. 15): posts, ad profile, opt-out, ads shown and why.")
           ] = None) -> None:
    """Every post as JSON Lines (townsquare's format: re-ingestible with `townsquare ingest`), or
    with --user everything held about one user."""
    if fmt != "jsonl":
        raise typer.BadParameter(f"unknown format {fmt!r}; supported: jsonl", param_hint="--format")
    if user is not None:
        _export_user(settings_of(ctx, home), user, output)
        return
    from townsquare.export import export_jsonl

    with store_of(settings_of(ctx, home)) as store:
        if output is None:
            n = export_jsonl(store, sys.stdout.buffer)
        else:
            with open(output, "wb") as f:
                n = export_jsonl(store, f)
    err.print(f"exported {n:,} posts")


def _export_user(settings, user: str, output: Optional[Path]) -> None:
    """``export --user``: ``services.privacy.write_export`` to a file or stdout."""
    from townsquare.services.privacy import ad_stores, write_export

    profiles, campaigns = ad_stores(settings.home)
    with store_of(settings) as store, input_errors():
        if output is None:
            counts = write_export(sys.stdout.buffer, store, profiles, campaigns, user,
                                  corpus_dir=settings.corpus_dir)
        else:
            with open(output, "wb") as f:
                counts = write_export(f, store, profiles, campaigns, user,
                                      corpus_dir=settings.corpus_dir)
    profiles.close()
    campaigns.close()
    err.print(f"exported {counts['posts']:,} posts and {counts['impressions']:,} ad impressions "
              f"of {printable(user, markup=True)}", highlight=False)

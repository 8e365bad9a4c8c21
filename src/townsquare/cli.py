"""The ``townsquare`` command line.

    townsquare ingest ../shared/data            # files or folders, recursively; then the late stage
    townsquare stats [--json]                    # posts per source, language, day; quarantine; lag
    townsquare quarantine [--limit 20] [--json]  # what was not stored, with file, line and reason
    townsquare enrich                            # run the late stage (language id, near-dup links)
    townsquare embed [--model e5-small-int8]       # embed posts for semantic search (behind ingest)
    townsquare search "QUERY" [--mode top|latest] [--limit N] [--json]
    townsquare trends [--window 1h] [--json]     # what is bursting now (stream time)
    townsquare stories [--active] [--json]       # events found in the stream, with timelines
    townsquare story ID [--json]                 # one story: terms, languages, timeline, posts
    townsquare summarize (--story ID | "QUERY") [--backend local|openai|extractive] [--json]
    townsquare corpus build / train / train sample   # townsquare's own GPT (``cli_train``)
    townsquare serve [--port 8000] / keys create --scope read  # the HTTP service (``cli_serve``)
    townsquare ads campaigns load --demo / ads serve USER / profile USER   # ads (``cli_ads``)
    townsquare jobs embed [--workers 2] [--scheduler ADDR]   # bulk jobs on Dask (``cli_jobs``)
    townsquare delete ID...                      # remove posts from every index; never re-ingested
    townsquare export [--format jsonl] [-o FILE] # every post, with its sources' labels

Every command takes ``--home DIR`` (else ``$TOWNSQUARE_HOME``, else ``./.townsquare``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from townsquare.ingest.detect import FORMATS
from townsquare.posts import format_time
from townsquare.store import DB_FILE, open_store, resolve_home

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="townsquare: ingest, search and summarize a social network's public posts.")
err = Console(stderr=True)
out = Console()

Home = Annotated[Optional[Path], typer.Option(
    "--home", help="Data folder (default: $TOWNSQUARE_HOME, else ./.townsquare).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@app.callback()
def _main(store: Annotated[Optional[str], typer.Option(
        "--store", envvar="TOWNSQUARE_STORE", show_envvar=True,
        help="A postgresql:// URL: use that PostgreSQL store instead of the embedded one "
             "(the home folder still holds keys, ads and models).")] = None) -> None:
    """townsquare: ingest, search and summarize a social network's public posts."""
    if store:
        if not store.startswith(("postgresql://", "postgres://")):
            raise typer.BadParameter(f"expected a postgresql:// URL, got {store[:40]!r}",
                                     param_hint="--store")
        os.environ["TOWNSQUARE_STORE"] = store     # every command and the service's threads


def _store(home: Optional[Path]):
    from townsquare.store import store_url
    url = store_url()
    if url:
        try:
            return open_store(url)
        except ConnectionError as e:
            err.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
    folder = resolve_home(home)
    return open_store(folder / DB_FILE)


def _print_json(obj) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


def _parse_columns(spec: Optional[str]) -> Optional[dict[str, str]]:
    if not spec:
        return None
    pairs = {}
    for part in spec.split(","):
        if "=" not in part:
            raise typer.BadParameter(f"expected FIELD=HEADER, got {part!r}", param_hint="--columns")
        k, v = part.split("=", 1)
        pairs[k.strip()] = v.strip()
    return pairs


@app.command()
def ingest(
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
    from townsquare.ingest.enrich import LateStage
    from townsquare.ingest.pipeline import IngestPipeline

    if fmt is not None and fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}",
                                 param_hint="--format")
    for p in paths:
        if not p.exists():
            raise typer.BadParameter(f"no such file or folder: {p}", param_hint="PATHS")
    store = _store(home)
    pipeline = IngestPipeline(store, fmt=fmt, source=source, columns=_parse_columns(columns),
                              batch_size=batch_size, writer=writer)
    n_files = sum(1 for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    counts = {"posts": 0, "bad": 0}
    with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("files  {task.fields[posts]:,} posts  {task.fields[rate]:,.0f} posts/s"
                             "  {task.fields[bad]:,} quarantined"),
                  TimeElapsedColumn(), console=err, disable=json_out) as bar:
        task = bar.add_task("ingest", total=n_files, posts=0, rate=0.0, bad=0)

        def progress(fr, posts: int, bad: int, done: bool) -> None:
            counts["posts"] += posts
            counts["bad"] += bad
            elapsed = bar.tasks[0].elapsed or 1e-9
            bar.update(task, advance=1 if done else 0, posts=counts["posts"], bad=counts["bad"],
                       rate=counts["posts"] / elapsed)

        report = pipeline.run(paths, progress)
    result = report.to_dict()
    if late:
        pending = store.stats()["late_stage"]["pending_posts"]
        with Progress(TextColumn("[bold]late stage"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("posts (language id, near-duplicate links)"), TimeElapsedColumn(),
                      console=err, disable=json_out) as bar:
            task = bar.add_task("late", total=pending)
            res = LateStage(store).run(progress=lambda n: bar.advance(task, n))
        result["late_stage"] = {"processed": res.processed, "languages_detected":
                                res.languages_detected, "near_duplicates_linked": res.linked,
                                "seconds": round(res.seconds, 2)}
    result["lexical_index"] = _refresh_lexical_index(store, resolve_home(home), json_out)
    store.close()
    if json_out:
        _print_json(result)
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
def stats(home: Home = None, json_out: Json = False) -> None:
    """Posts per source, language and day; quarantine; the late stage's lag."""
    with _store(home) as store:
        s = store.stats()
    if json_out:
        _print_json(s)
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
def quarantine(home: Home = None, limit: Annotated[int, typer.Option(help="How many.")] = 20,
               json_out: Json = False) -> None:
    """Records that could not be stored, with file, line and reason."""
    with _store(home) as store:
        items = store.quarantine_items(limit)
    if json_out:
        _print_json([{"source": q.source, "file": q.file, "line": q.line, "reason": q.reason,
                      "raw": q.raw} for q in items])
        return
    for q in items:
        out.print(f"{q.file}:{q.line}: {q.reason}", highlight=False)


@app.command()
def enrich(home: Home = None, json_out: Json = False) -> None:
    """Run the late stage: language id for posts without one, near-duplicate linking."""
    from townsquare.ingest.enrich import LateStage

    with _store(home) as store:
        pending = store.stats()["late_stage"]["pending_posts"]
        with Progress(TextColumn("[bold]late stage"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, disable=json_out) as bar:
            task = bar.add_task("late", total=pending)
            res = LateStage(store).run(progress=lambda n: bar.advance(task, n))
    result = {"processed": res.processed, "languages_detected": res.languages_detected,
              "near_duplicates_linked": res.linked, "seconds": round(res.seconds, 2)}
    if json_out:
        _print_json(result)
    else:
        out.print(", ".join(f"{k}: {v}" for k, v in result.items()))


@app.command()
def delete(ids: Annotated[list[str], typer.Argument(help="Post ids.")], home: Home = None) -> None:
    """Delete posts by id from every index; a deleted id is never stored again."""
    from townsquare.posts import PostError, parse_id

    try:
        parsed = [parse_id(i) for i in ids]
    except PostError as e:
        raise typer.BadParameter(str(e), param_hint="IDS") from None
    with _store(home) as store:
        n = store.delete(parsed)
    out.print(f"deleted {n} of {len(parsed)} posts ({len(parsed) - n} were not stored)")


def _refresh_lexical_index(store, folder: Path, quiet: bool) -> dict:
    """Catch the tantivy index (fast top-k for `search`) up with the store."""
    if store.indexes_in_store:
        return {"available": False, "reason": "the store's own full-text index answers search"}
    try:
        from townsquare.search.lexindex import LexicalIndex
    except ImportError:
        return {"available": False}
    import time as _time
    lx = LexicalIndex(store, folder / "lexical")
    t = _time.perf_counter()
    with Progress(TextColumn("[bold]lexical index"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, disable=quiet) as bar:
        task = bar.add_task("index", total=lx.lag())
        n = lx.refresh(progress=lambda k: bar.advance(task, k))
    return {"available": True, "indexed": n, "seconds": round(_time.perf_counter() - t, 2)}


@app.command()
def search(
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
    from townsquare.search.engine import SearchError, engine_for
    from townsquare.search.query import QueryError

    folder = resolve_home(home)
    with _store(home) as store:
        try:
            resp = engine_for(store, folder, semantic=semantic).run(
                query, mode=mode, limit=limit, cursor=cursor)
        except QueryError as e:
            err.print(f"[red]query error:[/] {e}")
            raise typer.Exit(2) from None
        except SearchError as e:
            err.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
    if json_out:
        _print_json(resp.to_dict())
        return
    for i, h in enumerate(resp.results, 1):
        d = h.to_dict()
        dup = f"  (+{h.near_duplicates} near-duplicates)" if h.near_duplicates else ""
        out.print(f"[bold]{i}.[/] {d['created_at']}  @{h.author or '-'}  id {d['id']}  "
                  f"score {h.score:.4f}  [{', '.join(h.matched)}]{dup}")
        out.print("   " + h.text.replace("\n", " "), markup=False, highlight=False)
    if not resp.results:
        out.print("no results")
    sem = resp.semantic
    out.print("semantic: " + ("used, " + f"{sem['embedded']:,} posts embedded, "
                              f"{sem['pending_posts']:,} pending" if sem.get("used")
                              else f"not used ({sem['reason']})"))
    out.print("timings (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in resp.timings_ms.items()))
    if resp.next_cursor:
        out.print(f"next page: --cursor {resp.next_cursor}")


# --- what's happening: trends, stories, summaries ----------------------------------------------------
_DURATION = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _duration_ms(text: str, option: str) -> int:
    if len(text) < 2 or text[-1] not in _DURATION or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise typer.BadParameter(f"expected a duration like 30m, 1h or 2d, got {text!r}",
                                 param_hint=option)
    return int(text[:-1]) * _DURATION[text[-1]]


@app.command()
def trends(
    home: Home = None,
    window: Annotated[str, typer.Option(help="Current window (30m, 1h, 1d...).")] = "1h",
    baseline: Annotated[int, typer.Option(help="Baseline windows before it.")] = 24,
    limit: Annotated[int, typer.Option(help="How many trends.")] = 20,
    json_out: Json = False,
) -> None:
    """What is bursting now: acceleration against a baseline, counted in distinct authors."""
    from townsquare.stories.trends import TrendDetector, TrendsConfig, trend_posts_from_store
    w = _duration_ms(window, "--window")
    try:
        cfg = TrendsConfig(window_ms=w, baseline_windows=baseline, max_trends=limit)
    except ValueError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    with _store(home) as store:
        newest = store.newest_created_at()
        if newest is None:
            result = {"now": None, "trends": []}
        else:
            now = newest + 1
            posts = trend_posts_from_store(store, now - w * (baseline + 1), now)
            found = TrendDetector(cfg).run(posts, now_ms=now)
            result = {"now": format_time(now), "window": window,
                      "trends": [t.to_dict() for t in found]}
    if json_out:
        _print_json(result)
        return
    if not result["trends"]:
        out.print("no trends (too few posts in the window)")
    for i, t in enumerate(result["trends"], 1):
        merged = f"  (also {', '.join(t['merged'])})" if t["merged"] else ""
        out.print(f"[bold]{i}.[/] {t['label']}  score {t['score']:.1f}  x{t['ratio']:.1f}  "
                  f"{t['authors']} authors{merged}", highlight=False)


def _story_state(store, folder: Path, quiet: bool):
    from townsquare.stories.state import StoryState
    st = StoryState(store, folder / "stories.pkl")
    pending = store.max_seq() - st.watermark
    with Progress(TextColumn("[bold]stories"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, disable=quiet or pending < 20_000) as bar:
        task = bar.add_task("stories", total=pending)
        st.refresh(progress=lambda n: bar.advance(task, n))
    return st


def _time_option(text: Optional[str], option: str) -> Optional[int]:
    from townsquare.posts import PostError, parse_time_ms
    if text is None:
        return None
    try:
        return parse_time_ms(text, option)
    except PostError:
        raise typer.BadParameter(f"expected a time like 2020-01-02 or 2020-01-02T10:00:00Z, "
                                 f"got {text!r}", param_hint=option) from None


@app.command()
def stories(
    home: Home = None,
    since: Annotated[Optional[str], typer.Option(help="Stories active from this time (UTC).")] = None,
    until: Annotated[Optional[str], typer.Option(help="... up to this time (exclusive).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retired stories too (no range).")] = False,
    limit: Annotated[int, typer.Option(help="How many stories.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list of stories.")] = False,
) -> None:
    """Events found in the stream (online clustering). By default the stories active at the time
    of the latest post; with --since / --until, every story with posts in that range."""
    lo, hi = _time_option(since, "--since"), _time_option(until, "--until")
    if lo is not None and hi is not None and hi <= lo:
        err.print("[red]error:[/] --until must be after --since")
        raise typer.Exit(2)
    folder = resolve_home(home)
    with _store(home) as store:
        st = _story_state(store, folder, json_out)
        views = st.stories(active_only=not all_, limit=limit, since_ms=lo, until_ms=hi,
                           key_posts=3)
        share = st.unassigned_share()
    if json_out:
        _print_json([{**v.to_dict(with_posts=True)} for v in views])
        return
    for v in views:
        out.print(f"[bold]story {v.id}[/]  {v.size:,} posts, {v.authors:,} authors  "
                  f"{format_time(v.first_ms)} .. {format_time(v.last_ms)}  "
                  f"{'active' if v.active else 'retired'}", highlight=False)
        out.print("   " + v.headline, markup=False, highlight=False)
        out.print("   " + ", ".join(v.top_terms[:8]), markup=False, highlight=False)
    if not views:
        out.print("no stories" + (" in that range" if lo or hi else " active now"))
    out.print(f"posts in no story: {share:.1%}")


@app.command()
def story(
    story_id: Annotated[int, typer.Argument(help="A story id from `townsquare stories`.")],
    home: Home = None,
    json_out: Json = False,
) -> None:
    """One story: top terms, languages, volume per hour, its posts."""
    folder = resolve_home(home)
    with _store(home) as store:
        v = _story_state(store, folder, json_out).story(story_id)
        key = store.posts_by_id(v.key_post_ids) if v is not None else {}
    if v is None:
        err.print(f"[red]error:[/] no story {story_id} (see `townsquare stories`)")
        raise typer.Exit(2)
    if json_out:
        _print_json(v.to_dict(with_posts=True))
        return
    out.print(f"[bold]story {v.id}[/]: {', '.join(v.top_terms)}", highlight=False)
    out.print(f"{v.size:,} posts, {v.authors:,} authors, languages {v.languages}", highlight=False)
    for pid in v.key_post_ids:
        p = key[pid]
        out.print(f"  * @{p.author_handle or '-'} {pid}: " + p.text.replace("\n", " "),
                  markup=False, highlight=False)
    peak = max((n for _, n in v.timeline), default=1)
    for t, n in v.timeline[-24:]:
        out.print(f"  {format_time(t)}  {'#' * max(1, round(30 * n / peak))} {n}", highlight=False)


@app.command()
def summarize(
    query: Annotated[Optional[str], typer.Argument(help="What to summarize: a search query.")] = None,
    story_id: Annotated[Optional[int], typer.Option("--story", help="A story id instead.")] = None,
    home: Home = None,
    backend: Annotated[Optional[str], typer.Option(
        help="local (default: SmolLM2 via llama.cpp), openai, or extractive.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model for the backend.")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="Endpoint for --backend openai.")] = None,
    json_out: Json = False,
) -> None:
    """A headline and sentences about a story or a query, each sentence cited and verified."""
    from townsquare.llm import BackendError, get_backend
    from townsquare.search.engine import engine_for
    from townsquare.search.query import QueryError
    from townsquare.summarize.summarizer import Summarizer

    if (query is None) == (story_id is None):
        err.print("[red]error:[/] give a QUERY or --story ID (one of them)")
        raise typer.Exit(2)
    folder = resolve_home(home)
    try:
        opts = {"model": model} if model else {}
        if base_url:
            opts["base_url"] = base_url
        llm = get_backend(backend, **opts)
    except BackendError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    with _store(home) as store:
        engine = engine_for(store, folder)
        summ = Summarizer(store, llm, embedder=engine.embedder)
        try:
            if story_id is not None:
                v = _story_state(store, folder, json_out).story(story_id)
                if v is None:
                    err.print(f"[red]error:[/] no story {story_id} (see `townsquare stories`)")
                    raise typer.Exit(2)
                result = summ.run(post_ids=v.post_ids)
            else:
                result = summ.run(query=query, engine=engine)
        except QueryError as e:
            err.print(f"[red]query error:[/] {e}")
            raise typer.Exit(2) from None
        except BackendError as e:
            err.print(f"[red]generation failed:[/] {e}")
            raise typer.Exit(1) from None
    if json_out:
        _print_json(result.to_dict())
        return
    out.print(f"[bold]{result.headline}[/]", highlight=False)
    for s in result.sentences:
        out.print(f"- {s.text} " + " ".join(f"[{c}]" for c in s.citations), markup=False,
                  highlight=False)
    out.print(f"model {result.model}; {len(result.dropped)} draft sentence(s) failed "
              f"verification and were not shown; timings (ms): "
              + ", ".join(f"{k} {v:.0f}" for k, v in result.timings_ms.items()), highlight=False)


@app.command()
def embed(
    home: Home = None,
    model: Annotated[Optional[str], typer.Option(help="Embedding model (default: the store's model, else multilingual e5-small-int8).")] = None,
    reset: Annotated[bool, typer.Option(help="Drop vectors of another model and start over.")] = False,
    max_posts: Annotated[Optional[int], typer.Option(help="Stop after this many posts.")] = None,
    json_out: Json = False,
) -> None:
    """Embed the posts not embedded yet (the semantic index catches up on the next search)."""
    from townsquare.embed.models import DEFAULT_EMBEDDER, get_embedder
    from townsquare.embed.stage import EmbedStage, ModelMismatch
    from townsquare.embed.sync import InStoreVectors, StoreVectors

    folder = resolve_home(home)
    with _store(home) as store:
        try:
            emb = get_embedder(model or store.embed_model() or DEFAULT_EMBEDDER)
            stage = EmbedStage(store, emb, reset=reset)
        except (ValueError, ModelMismatch) as e:
            err.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
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
        indexed = (InStoreVectors(store) if store.indexes_in_store
                   else StoreVectors(store, folder / "vectors.index", emb.dim))
        indexed.refresh()
        lag = store.embedding_lag()
    result = {"model": emb.name, "embedded_now": res.processed, "seconds": round(res.seconds, 2),
              "posts_per_s": round(res.posts_per_s, 1), "index_size": len(indexed),
              "pending_posts": lag["pending_posts"]}
    if json_out:
        _print_json(result)
    else:
        out.print(", ".join(f"{k}: {v}" for k, v in result.items()))


@app.command()
def export(home: Home = None,
           fmt: Annotated[str, typer.Option("--format", help="Output format.")] = "jsonl",
           output: Annotated[Optional[Path], typer.Option("--output", "-o",
                                                          help="File (default: stdout).")] = None
           ) -> None:
    """Every post as JSON Lines (townsquare's format: re-ingestible with `townsquare ingest`)."""
    if fmt != "jsonl":
        raise typer.BadParameter(f"unknown format {fmt!r}; supported: jsonl", param_hint="--format")
    from townsquare.export import export_jsonl

    with _store(home) as store:
        if output is None:
            n = export_jsonl(store, sys.stdout.buffer)
        else:
            with open(output, "wb") as f:
                n = export_jsonl(store, f)
    err.print(f"exported {n:,} posts")


from townsquare import cli_ads  # noqa: E402,F401  (registers `ads` and `profile`)
from townsquare import cli_jobs  # noqa: E402,F401  (registers `jobs`)
from townsquare import cli_serve  # noqa: E402,F401  (registers `serve` and `keys`)
from townsquare import cli_store  # noqa: E402,F401  (registers `store`)
from townsquare import cli_train  # noqa: E402,F401  (registers `corpus` and `train`)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()

"""What is happening: ``trends``, ``stories``, ``story``, ``summarize``.

    townsquare trends [--window 1h] [--baseline 24] [--at TIME] [--json]
    townsquare stories [--at TIME] [--recent 24h] [--since 2020-01-02] [--until ...] [--all] [--json]
    townsquare story ID [--json]
    townsquare summarize (--story ID | "QUERY") [--backend extractive|local|openai] [--json]

Stories are kept in ``HOME/stories.pkl`` and caught up with the store before each command
(``services.happening.story_state``). ``--at`` looks at any moment; without it, when nothing
happens at the latest post, both commands show the most recent active period and say so (a
"showing ..." line; ``fallback`` in the JSON, as the API's).
"""
from __future__ import annotations

from typing import Annotated, Optional

import typer

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
from townsquare.posts import format_time
from townsquare.services.times import parse_at, parse_time

# Catching stories up is quick for small backlogs: a bar only for this many posts or more.
STORY_BAR_MIN = 20_000
AT_HELP = "Look at this moment (UTC: 2013-04-15 or 2013-04-15T18:00:00Z) instead of the latest post."


def _fallback_note(fallback: dict | None) -> None:
    if fallback:
        out.print(f"showing {fallback['at']}: {fallback['reason']} ({fallback['from']})",
                  highlight=False)


@app.command()
def trends(
    ctx: typer.Context,
    home: Home = None,
    window: Annotated[str, typer.Option(help="Current window (30m, 1h, 1d...).")] = "1h",
    baseline: Annotated[int, typer.Option(help="Baseline windows before it.")] = 24,
    limit: Annotated[int, typer.Option(help="How many trends.")] = 20,
    at: Annotated[Optional[str], typer.Option(help=AT_HELP)] = None,
    json_out: Json = False,
) -> None:
    """What is bursting now (or --at a moment): acceleration against a baseline, counted in
    distinct authors."""
    from townsquare.services.happening import current_trends

    with input_errors():
        at_ms = parse_at(at, "--at")
    with store_of(settings_of(ctx, home)) as store, input_errors():
        result = current_trends(store, window=window, baseline=baseline, limit=limit, at_ms=at_ms)
    if json_out:
        print_json(result)
        return
    _fallback_note(result["fallback"])
    if not result["trends"]:
        out.print("no trends (too few posts in the window)")
    for i, t in enumerate(result["trends"], 1):
        merged = f"  (also {printable(', '.join(t['merged']), markup=True)})" if t["merged"] else ""
        out.print(f"[bold]{i}.[/] {printable(t['label'], markup=True)}  score {t['score']:.1f}  x{t['ratio']:.1f}  "
                  f"{t['authors']} authors{merged}", highlight=False)


@app.command()
def stories(
    ctx: typer.Context,
    home: Home = None,
    at: Annotated[Optional[str], typer.Option(help=AT_HELP)] = None,
    recent: Annotated[str, typer.Option(
        help="Stories at a moment: those with posts in this span before it.")] = "24h",
    since: Annotated[Optional[str], typer.Option(help="Stories active from this time (UTC).")] = None,
    until: Annotated[Optional[str], typer.Option(help="... up to this time (exclusive).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retired stories too (no range).")] = False,
    limit: Annotated[int, typer.Option(help="How many stories.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help=(
        "Print JSON: for a range (--since/--until/--all) the list of stories; for a moment "
        "(the latest post, --at) {at, fallback, stories}, as GET /v1/stories."))] = False,
) -> None:
    """Events found in the stream (online clustering). By default the stories active at the time
    of the latest post (when none is, those at the end of the latest story, saying so); --at:
    the stories with posts in the --recent span before that moment; with --since / --until,
    every story with posts in that range."""
    from townsquare.services.happening import stories_at, story_state

    with input_errors():
        lo, hi = parse_time(since, "--since"), parse_time(until, "--until")
        at_ms = parse_at(at, "--at")
    if lo is not None and hi is not None and hi <= lo:
        fail("--until must be after --since")
    if at_ms is not None and (lo is not None or hi is not None or all_):
        fail("--at shows one moment: leave out --since, --until and --all")
    settings = settings_of(ctx, home)
    with store_of(settings) as store:
        with ServiceBar("stories", quiet=json_out, min_total=STORY_BAR_MIN) as tick:
            st = story_state(store, settings.home, tick)
        with input_errors():
            moment = stories_at(st, at_ms=at_ms, recent=recent, limit=limit, all_=all_,
                                since_ms=lo, until_ms=hi, key_posts=3)
        share = st.unassigned_share()
    views = moment.views
    ranged = lo is not None or hi is not None or all_
    if json_out:
        # A range prints the plain list (what `jobs recluster --json` prints too); a moment
        # carries its time and fallback beside the stories.
        print_json([v.to_dict(with_posts=True) for v in views] if ranged
                   else moment.to_dict(with_posts=True))
        return
    _fallback_note(moment.fallback)
    for v in views:
        out.print(f"[bold]story {v.id}[/]  {v.size:,} posts, {v.authors:,} authors  "
                  f"{format_time(v.first_ms)} .. {format_time(v.last_ms)}  "
                  f"{'active' if v.active else 'retired'}", highlight=False)
        out.print("   " + printable(v.headline), markup=False, highlight=False)
        out.print("   " + printable(", ".join(v.top_terms[:8])), markup=False, highlight=False)
    if not views:
        out.print("no stories" + (" in that range" if lo or hi else
                                  f" in the {recent} before {at}" if at else " active now"))
    out.print(f"posts in no story: {share:.1%}")


@app.command()
def story(
    ctx: typer.Context,
    story_id: Annotated[int, typer.Argument(help="A story id from `townsquare stories`.")],
    home: Home = None,
    json_out: Json = False,
) -> None:
    """One story: top terms, languages, volume per hour, its posts."""
    from townsquare.services.happening import story_state

    settings = settings_of(ctx, home)
    with store_of(settings) as store:
        with ServiceBar("stories", quiet=json_out, min_total=STORY_BAR_MIN) as tick:
            v = story_state(store, settings.home, tick).story(story_id)
        key = store.posts_by_id(v.key_post_ids) if v is not None else {}
    if v is None:
        fail(f"no story {story_id} (see `townsquare stories`)")
    if json_out:
        print_json(v.to_dict(with_posts=True))
        return
    out.print(f"[bold]story {v.id}[/]: {printable(', '.join(v.top_terms), markup=True)}",
              highlight=False)
    out.print(f"{v.size:,} posts, {v.authors:,} authors, languages {v.languages}", highlight=False)
    for pid in v.key_post_ids:
        p = key[pid]
        out.print(printable(f"  * @{p.author_handle or '-'} {pid}: " + p.text),
                  markup=False, highlight=False)
    peak = max((n for _, n in v.timeline), default=1)
    for t, n in v.timeline[-24:]:
        out.print(f"  {format_time(t)}  {'#' * max(1, round(30 * n / peak))} {n}", highlight=False)


@app.command()
def summarize(
    ctx: typer.Context,
    query: Annotated[Optional[str], typer.Argument(help="What to summarize: a search query.")] = None,
    story_id: Annotated[Optional[int], typer.Option("--story", help="A story id instead.")] = None,
    home: Home = None,
    backend: Annotated[Optional[str], typer.Option(
        help="extractive (default; local when --model is given), local (SmolLM2 via "
             "llama.cpp), openai, or trained.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model for the backend.")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="Endpoint for --backend openai.")] = None,
    json_out: Json = False,
) -> None:
    """A headline and sentences about a story or a query, each sentence cited and verified."""
    from townsquare.llm import BackendError
    from townsquare.query import QueryError
    from townsquare.services.happening import story_state
    from townsquare.services.indexes import build_engine
    from townsquare.services.summaries import get_llm, summarizer

    if (query is None) == (story_id is None):
        fail("give a QUERY or --story ID (one of them)")
    settings = settings_of(ctx, home)
    try:
        llm = get_llm(settings, backend, model=model, base_url=base_url)
    except BackendError as e:
        fail(str(e))
    with store_of(settings) as store:
        engine = build_engine(store, settings)
        summ = summarizer(store, llm, engine)
        try:
            if story_id is not None:
                with ServiceBar("stories", quiet=json_out, min_total=STORY_BAR_MIN) as tick:
                    v = story_state(store, settings.home, tick).story(story_id)
                if v is None:
                    fail(f"no story {story_id} (see `townsquare stories`)")
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
        print_json(result.to_dict())
        return
    out.print(f"[bold]{printable(result.headline, markup=True)}[/]", highlight=False)
    for s in result.sentences:
        out.print(printable(f"- {s.text} ") + " ".join(f"[{c}]" for c in s.citations),
                  markup=False, highlight=False)
    out.print(f"model {result.model}; {len(result.dropped)} draft sentence(s) failed "
              f"verification and were not shown; timings (ms): "
              + ", ".join(f"{k} {v:.0f}" for k, v in result.timings_ms.items()), highlight=False)

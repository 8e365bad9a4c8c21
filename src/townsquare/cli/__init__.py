"""The ``townsquare`` command line.

    townsquare ingest ../shared/data            # files or folders, recursively; then the late stage
    townsquare stats [--json]                    # posts per source, language, day; quarantine; lag
    townsquare quarantine [--limit 20] [--json]  # what was not stored, with file, line and reason
    townsquare enrich                            # run the late stage (language id, near-dup links)
    townsquare embed [--model e5-small-int8]       # embed posts for semantic search (behind ingest)
    townsquare search "QUERY" [--mode top|latest] [--limit N] [--json]
    townsquare trends [--window 1h] [--json]     # what is bursting now (stream time)
    townsquare stories [--at T] [--json]         # events found in the stream, with timelines
    townsquare story ID [--json]                 # one story: terms, languages, timeline, posts
    townsquare summarize (--story ID | "QUERY") [--backend extractive|local|openai] [--json]
    townsquare corpus build / train / train sample   # townsquare's own GPT (``cli.train``)
    townsquare serve [--port 8000] / keys create --scope read  # the HTTP service (``cli.serve``)
    townsquare ads campaigns load --demo / ads serve USER / profile USER   # ads (``cli.ads``)
    townsquare jobs embed [--workers 2] [--scheduler ADDR]   # bulk jobs on Dask (``cli.jobs``)
    townsquare store copy SRC DST                # between the embedded store and PostgreSQL
    townsquare delete ID...                      # remove posts from every index; never re-ingested
    townsquare compact [--json]                  # after deletes: rewrite what may hold their bytes
    townsquare export [--format jsonl] [-o FILE] # every post, with its sources' labels
    townsquare export --user USER [-o FILE]      # all held about a user (GDPR Art. 15)
    townsquare optout USER [--undo]              # no ad profile, out of training (``cli.privacy``)
    townsquare follow bluesky [--json]           # a live stream until stopped (``cli.follow``)

Global options, before the command: ``--home DIR``, ``--store postgresql://...`` and
``--config FILE`` (``townsquare.settings``: flags, then the environment, then the config file).
Every command also takes its own ``--home DIR``, which wins.

One module per group of commands, each registering on ``cli.common.app``: ``ingest`` (ingest,
stats, quarantine, enrich, delete, export), ``search`` (search, embed), ``happening`` (trends,
stories, story, summarize), ``ads``, ``jobs``, ``serve`` (serve, keys, migrate), ``store``,
``train``, ``maintenance`` (compact), ``follow``, ``privacy`` (optout).

Each command imports the subsystem it drives inside its own body, on purpose: every command module
is loaded to register its commands, and importing all subsystems up front (FastAPI, Dask, torch,
scikit-learn) costs 3.8 s at every start against 1.3 s now (2 cores), which ``townsquare stats``
or ``--help`` should not pay. The rest of the package imports at module top.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

# Importing a command module registers its commands, in this order in `townsquare --help`.
from townsquare.cli import ingest, search, happening, ads, jobs, serve, store, train  # noqa: F401
from townsquare.cli import maintenance  # noqa: F401
from townsquare.cli import follow  # noqa: F401
from townsquare.cli import privacy  # noqa: F401
from townsquare.cli.common import app, fail
from townsquare.settings import Settings, SettingsError

__all__ = ["app", "main"]


@app.callback()
def _settings(
    ctx: typer.Context,
    home: Annotated[Optional[Path], typer.Option(
        "--home", help="Data folder (default: $TOWNSQUARE_HOME, else ./.townsquare).")] = None,
    store_url: Annotated[Optional[str], typer.Option(
        "--store", help="A postgresql:// URL: use that PostgreSQL store instead of the embedded "
                        "one (the home folder still holds keys, ads and models). "
                        "[env var: TOWNSQUARE_STORE]")] = None,
    config: Annotated[Optional[Path], typer.Option(
        "--config", help="A TOML file of settings (default: $TOWNSQUARE_CONFIG, else "
                         "HOME/townsquare.toml when it exists).")] = None,
) -> None:
    """townsquare: ingest, search and summarize a social network's public posts."""
    try:
        ctx.obj = Settings.load(home=home, store_url=store_url, config_file=config)
    except SettingsError as e:
        fail(str(e))


def main() -> None:  # pragma: no cover - console entry
    app()

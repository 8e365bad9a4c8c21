"""``townsquare serve`` and ``townsquare keys``: the service's commands.

    townsquare keys create --scope read --scope ingest [--name newsroom] [--rate 600]
    townsquare keys create --scope advertiser --subject acme-outdoor   # one advertiser's key
    townsquare keys list [--json]
    townsquare keys revoke KEY_ID
    townsquare serve [--host 127.0.0.1] [--port 8000] [--backend local|extractive|openai]
    townsquare serve --no-auth                   # a local demo without keys (the log says so)
    townsquare serve --follow bluesky --follow "mastodon https://m.example --tag riverton"

Keys live in ``<home>/keys.db`` (hashed); ``keys create`` prints only the new key on stdout, so
``KEY=$(townsquare keys create --scope read)`` works.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, Optional

import typer

from townsquare.cli.common import Home, Json, app, err, fail, out, print_json, settings_of
from townsquare.settings import DB_FILE, Settings, redact_url

keys_app = typer.Typer(no_args_is_help=True, help="API keys for the service.")
app.add_typer(keys_app, name="keys")


def _keys(settings: Settings):
    from townsquare.api.auth import KEYS_FILE, KeyStore
    return KeyStore(settings.home / KEYS_FILE)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    scope: Annotated[list[str], typer.Option(
        "--scope", help="ingest, read, admin or advertiser (repeat for several).")],
    home: Home = None,
    name: Annotated[str, typer.Option(help="Who the key is for.")] = "",
    rate: Annotated[int, typer.Option(help="Requests per minute (bursts up to the same).")] = 600,
    subject: Annotated[Optional[str], typer.Option(
        help="The advertiser (scope advertiser) or user (scope user) the key acts for.")] = None,
) -> None:
    """Create a key; prints only the key (store it now: it is not kept, only its hash)."""
    try:
        secret = _keys(settings_of(ctx, home)).create(scope, name=name, rate_per_minute=rate,
                                                      subject=subject)
    except ValueError as e:
        fail(str(e))
    print(secret)


@keys_app.command("list")
def keys_list(ctx: typer.Context, home: Home = None, json_out: Json = False) -> None:
    """Keys by id (never the secrets): name, scopes, rate, revoked."""
    keys = _keys(settings_of(ctx, home)).list()
    if json_out:
        print_json([k.to_dict() for k in keys])
        return
    for k in keys:
        out.print(f"{k.id}  {k.name or '-'}  {','.join(k.scopes)}  {k.rate_per_minute}/min"
                  + ("  revoked" if k.revoked else ""), highlight=False)
    if not keys:
        out.print("no keys (townsquare keys create --scope read)")


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context,
                key_id: Annotated[str, typer.Argument(help="The id from `keys list`.")],
                home: Home = None) -> None:
    """Revoke a key (within 5 s on a running server)."""
    if not _keys(settings_of(ctx, home)).revoke(key_id):
        fail(f"no valid key {key_id!r} (see `townsquare keys list`)")
    out.print(f"revoked {key_id}")


@app.command()
def serve(
    ctx: typer.Context,
    home: Home = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="No API keys: for a local demo only (logged as a warning).")] = False,
    backend: Annotated[Optional[str], typer.Option(
        help="Generation backend: extractive (default; local when --model is given), local, "
             "openai, trained.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model for the backend.")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="Endpoint for --backend openai.")] = None,
    embed: Annotated[Optional[bool], typer.Option(
        "--embed/--no-embed", help="Embed new posts in the background (default: when the "
                                   "store has vectors).")] = None,
    background_share: Annotated[float, typer.Option(
        help="Most of the time stories, language id and embeddings take while requests arrive.")] = 0.15,
    log_level: Annotated[str, typer.Option(help="debug, info, warning.")] = "info",
    workers: Annotated[int, typer.Option(
        help="Worker processes on one port (server mode only: needs --store postgresql://...).")] = 1,
    follow: Annotated[Optional[list[str]], typer.Option(
        "--follow", help="Follow a live stream into the store while serving: what `townsquare "
                         "follow` takes, as one argument: \"SOURCE [WHERE] [OPTIONS]\" (repeat "
                         "for several).")] = None,
) -> None:
    """Run the HTTP API, the OpenAI-compatible chat and the web page."""
    import uvicorn

    from townsquare.api.app import create_app
    from townsquare.api.runtime import Runtime
    from townsquare.llm import BACKENDS, MODEL_BACKEND

    if backend is not None and backend not in BACKENDS:
        fail(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")
    if not 0 < port < 65536:
        fail(f"--port must be 1-65535, got {port}")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: "
                                                        "%(message)s")
    log = logging.getLogger("townsquare.api")
    settings = settings_of(ctx, home)
    # --model and --base-url configure the server's default backend, named here so that the
    # model goes to it (``LLMSettings.options``).
    default = backend or settings.llm.backend or (MODEL_BACKEND if model else None)
    settings = replace(settings, llm=settings.llm.with_flags(backend=default, model=model,
                                                             base_url=base_url))
    folder = settings.home
    keys = None if no_auth else _keys(settings)
    if no_auth:
        log.warning("authentication is OFF (--no-auth): anyone who can reach %s:%d can read, "
                    "ingest and delete. Use this for a local demo only.", host, port)
    elif not keys.list():
        log.warning("no API keys yet: every request will get 401. Create one with "
                    "`townsquare keys create --scope read --scope ingest --home %s`", folder)
    if workers < 1:
        fail(f"--workers must be >= 1, got {workers}")
    if follow and workers > 1:
        fail("--follow runs in one process: with --workers > 1, run `townsquare follow` beside "
             "the server (it writes to the same PostgreSQL store)")
    followed = _followed(follow or [], settings)
    if workers > 1:
        if not settings.server_mode:
            fail("--workers > 1 needs a shared store: give --store "
                 "postgresql://... (the embedded store's indexes belong to one process)")
        # Each worker process builds its own runtime from these settings (api.factory); the
        # environment is the one thing uvicorn's worker processes inherit from this one.
        Settings.worker_environ(settings.to_json(embed=embed, background_share=background_share,
                                                 auth=not no_auth))
        err.print(f"townsquare is serving {settings.redacted_store()} with {workers} workers at "
                  f"[bold]http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}"
                  f":{port}/[/]")
        import inspect
        # A worker builds its runtime (models, language id) before it answers uvicorn's health
        # check: give it time, or the supervisor kills and restarts it over and over.
        slow_start = ({"timeout_worker_healthcheck": 180} if "timeout_worker_healthcheck"
                      in inspect.signature(uvicorn.Config).parameters else {})
        uvicorn.run("townsquare.api.factory:build", factory=True, workers=workers, host=host,
                    port=port, log_level=log_level.lower(), timeout_graceful_shutdown=10,
                    **slow_start)
        return
    try:
        rt = Runtime(settings, embed=embed, background_share=background_share, follow=followed)
    except (ValueError, ConnectionError) as e:
        fail(str(e))
    app_ = create_app(rt, keys=keys, auth=not no_auth)
    close = _close_at_shutdown(app_, rt)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    err.print(f"townsquare is serving {settings.redacted_store()} at [bold]http://{shown}:{port}/[/] "
              f"(API docs at /docs)")
    try:
        uvicorn.run(app_, host=host, port=port, log_level=log_level.lower(),
                    timeout_graceful_shutdown=10)
    finally:
        close()


def _close_at_shutdown(app_, rt) -> Callable[[], None]:
    """Close the runtime in the app's shutdown (and return a close that runs it once).

    On SIGTERM uvicorn shuts the app down, then raises the signal again with its default action,
    which ends the process before anything after ``uvicorn.run`` runs: the runtime must close in
    the shutdown, so that followed streams commit what they received and the writer finishes."""
    import contextlib

    inner = app_.router.lifespan_context
    done = threading.Lock()

    def close() -> None:
        if done.acquire(blocking=False):
            rt.close()

    @contextlib.asynccontextmanager
    async def lifespan(a):
        try:
            async with inner(a) as state:
                yield state
        finally:
            await asyncio.to_thread(close)

    app_.router.lifespan_context = lifespan
    return close


def _followed(specs: list[str], settings: Settings) -> list[tuple[Any, dict[str, Any]]]:
    """The sources of ``--follow`` and their collector options; one-line errors (exit 2)."""
    from townsquare.cli.follow import SpecError, parse_spec
    from townsquare.follow.stats import state_folder

    out_: list[tuple[Any, dict[str, Any]]] = []
    for text in specs:
        try:
            spec = parse_spec(text)
            out_.append((spec.source(state_folder(settings.home)), spec.collector_options()))
        except (SpecError, ValueError) as e:
            # Only the source's name: the rest of the words might hold what should stay secret.
            fail(f"--follow {(text.split() or [''])[0]!r}: {e}")
    names = [s.name for s, _ in out_]
    if len(set(names)) < len(names):
        fail(f"--follow: two sources named {sorted(n for n in names if names.count(n) > 1)[0]!r}"
             " (give each its own --name)")
    return out_


@app.command()
def migrate(
    ctx: typer.Context,
    home: Home = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Only report; exit 1 when an upgrade is pending (for deploy scripts).")] = False,
    json_out: Json = False,
) -> None:
    """Upgrade the store's schema to this townsquare's version (one transaction), or check.

    The embedded store also upgrades itself when opened; running this first, once, is what a
    deployment with several processes should do, so none of them upgrades under the others."""
    import sqlite3

    from townsquare.store import open_store
    from townsquare.store.sqlite import SCHEMA_VERSION
    settings = settings_of(ctx, home)
    if settings.store_url:
        _migrate_postgres(settings.store_url, check, json_out)
        return
    path = settings.home / DB_FILE
    before = None
    if path.exists():
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            before = int(row[0]) if row else None
        except sqlite3.DatabaseError:
            before = None
        finally:
            db.close()
    if before is not None and before > SCHEMA_VERSION:
        fail(f"{path} has schema v{before}, newer than this townsquare "
             f"(v{SCHEMA_VERSION}): upgrade townsquare")
    pending = before is not None and before < SCHEMA_VERSION
    result = {"store": str(path), "before": before, "target": SCHEMA_VERSION,
              "pending": pending}
    if not check:
        open_store(path).close()                          # applies the upgrades, atomically
        result["after"] = SCHEMA_VERSION
    _report_migration(str(path), result, check, json_out)


def _migrate_postgres(url: str, check: bool, json_out: bool) -> None:
    """``migrate`` for the PostgreSQL store: the same report, its own schema versions."""
    from townsquare.store import pgschema
    from townsquare.store.postgres import PostgresStore
    try:
        store = PostgresStore(url, upgrade=False, create=False)
    except (ConnectionError, RuntimeError) as e:
        fail(str(e))
    with store:
        before = store.schema_version()
        target = pgschema.SCHEMA_VERSION
        pending = before is not None and before < target
        result = {"store": redact_url(url), "before": before, "target": target, "pending": pending}
        if not check:
            store.migrate()
            result["after"] = target
    _report_migration(redact_url(url), result, check, json_out)


def _report_migration(shown: str, result: dict, check: bool, json_out: bool) -> None:
    """Print what ``migrate`` found or did; exit 1 for ``--check`` with an upgrade pending."""
    before, target, pending = result["before"], result["target"], result["pending"]
    if json_out:
        print_json(result)
    elif before is None:
        out.print(f"{shown}: new store" + ("" if check else f", created at v{target}"))
    elif not pending:
        out.print(f"{shown}: schema v{before}, up to date")
    else:
        out.print(f"{shown}: schema v{before} -> v{target}" +
                  (" pending (run `townsquare migrate`)" if check else " applied"))
    if check and pending:
        raise typer.Exit(1)

"""``townsquare serve`` and ``townsquare keys``: the service's commands.

    townsquare keys create --scope read --scope ingest [--name newsroom] [--rate 600]
    townsquare keys create --scope advertiser --subject acme-outdoor   # one advertiser's key
    townsquare keys list [--json]
    townsquare keys revoke KEY_ID
    townsquare serve [--host 127.0.0.1] [--port 8000] [--backend local|extractive|openai]
    townsquare serve --no-auth                   # a local demo without keys (the log says so)

Keys live in ``<home>/keys.db`` (hashed); ``keys create`` prints only the new key on stdout, so
``KEY=$(townsquare keys create --scope read)`` works.
"""
from __future__ import annotations

import logging
import os
from typing import Annotated, Optional

import typer

from townsquare.cli import Home, Json, _print_json, app, err, out
from townsquare.store import resolve_home

keys_app = typer.Typer(no_args_is_help=True, help="API keys for the service.")
app.add_typer(keys_app, name="keys")
KEYS_FILE = "keys.db"


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option(
        "--scope", help="ingest, read, admin or advertiser (repeat for several).")],
    home: Home = None,
    name: Annotated[str, typer.Option(help="Who the key is for.")] = "",
    rate: Annotated[int, typer.Option(help="Requests per minute (bursts up to the same).")] = 600,
    subject: Annotated[Optional[str], typer.Option(
        help="The advertiser (scope advertiser) or user (scope user) the key acts for.")] = None,
) -> None:
    """Create a key; prints only the key (store it now: it is not kept, only its hash)."""
    from townsquare.api.auth import KeyStore
    try:
        secret = KeyStore(resolve_home(home) / KEYS_FILE).create(scope, name=name,
                                                                  rate_per_minute=rate,
                                                                  subject=subject)
    except ValueError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    print(secret)


@keys_app.command("list")
def keys_list(home: Home = None, json_out: Json = False) -> None:
    """Keys by id (never the secrets): name, scopes, rate, revoked."""
    from townsquare.api.auth import KeyStore
    keys = KeyStore(resolve_home(home) / KEYS_FILE).list()
    if json_out:
        _print_json([k.to_dict() for k in keys])
        return
    for k in keys:
        out.print(f"{k.id}  {k.name or '-'}  {','.join(k.scopes)}  {k.rate_per_minute}/min"
                  + ("  revoked" if k.revoked else ""), highlight=False)
    if not keys:
        out.print("no keys (townsquare keys create --scope read)")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The id from `keys list`.")],
                home: Home = None) -> None:
    """Revoke a key (within 5 s on a running server)."""
    from townsquare.api.auth import KeyStore
    if not KeyStore(resolve_home(home) / KEYS_FILE).revoke(key_id):
        err.print(f"[red]error:[/] no valid key {key_id!r} (see `townsquare keys list`)")
        raise typer.Exit(2)
    out.print(f"revoked {key_id}")


@app.command()
def serve(
    home: Home = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="No API keys: for a local demo only (logged as a warning).")] = False,
    backend: Annotated[Optional[str], typer.Option(
        help="Generation backend: local (default), extractive, openai, trained.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model for the backend.")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="Endpoint for --backend openai.")] = None,
    embed: Annotated[Optional[bool], typer.Option(
        "--embed/--no-embed", help="Embed new posts in the background (default: when the "
                                   "store has vectors).")] = None,
    background_share: Annotated[float, typer.Option(
        envvar="TOWNSQUARE_BACKGROUND_SHARE",
        help="Most of the time stories, language id and embeddings take while requests arrive.")] = 0.15,
    log_level: Annotated[str, typer.Option(help="debug, info, warning.")] = "info",
    workers: Annotated[int, typer.Option(
        help="Worker processes on one port (server mode only: needs --store postgresql://...).")] = 1,
) -> None:
    """Run the HTTP API, the OpenAI-compatible chat and the web page."""
    import uvicorn

    from townsquare.api.app import create_app
    from townsquare.api.auth import KeyStore
    from townsquare.api.runtime import Runtime
    from townsquare.llm import BACKENDS

    if backend is not None and backend not in BACKENDS:
        err.print(f"[red]error:[/] unknown backend {backend!r}; one of {', '.join(BACKENDS)}")
        raise typer.Exit(2)
    if not 0 < port < 65536:
        err.print(f"[red]error:[/] --port must be 1-65535, got {port}")
        raise typer.Exit(2)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: "
                                                        "%(message)s")
    log = logging.getLogger("townsquare.api")
    folder = resolve_home(home)
    opts = {k: v for k, v in (("model", model), ("base_url", base_url)) if v}
    keys = None if no_auth else KeyStore(folder / KEYS_FILE)
    if no_auth:
        log.warning("authentication is OFF (--no-auth): anyone who can reach %s:%d can read, "
                    "ingest and delete. Use this for a local demo only.", host, port)
    elif not keys.list():
        log.warning("no API keys yet: every request will get 401. Create one with "
                    "`townsquare keys create --scope read --scope ingest --home %s`", folder)
    from townsquare.store import store_url
    if workers < 1:
        err.print(f"[red]error:[/] --workers must be >= 1, got {workers}")
        raise typer.Exit(2)
    if workers > 1:
        if not store_url():
            err.print("[red]error:[/] --workers > 1 needs a shared store: give --store "
                      "postgresql://... (the embedded store's indexes belong to one process)")
            raise typer.Exit(2)
        # Each worker process builds its own runtime from these settings (api.factory).
        import orjson
        os.environ["TOWNSQUARE_SERVE"] = orjson.dumps({
            "home": str(folder), "backend": backend, "backend_options": opts, "embed": embed,
            "background_share": background_share, "auth": not no_auth}).decode()
        err.print(f"townsquare is serving {store_url_redacted()} with {workers} workers at "
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
        rt = Runtime(folder, backend=backend, backend_options=opts, embed=embed,
                     background_share=background_share)
    except (ValueError, ConnectionError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    app_ = create_app(rt, keys=keys, auth=not no_auth)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    err.print(f"townsquare is serving {store_url_redacted() or folder} at [bold]http://{shown}:{port}/[/] "
              f"(API docs at /docs)")
    try:
        uvicorn.run(app_, host=host, port=port, log_level=log_level.lower(),
                    timeout_graceful_shutdown=10)
    finally:
        rt.close()


@app.command()
def migrate(
    home: Home = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Only report; exit 1 when an upgrade is pending (for deploy scripts).")] = False,
    json_out: Json = False,
) -> None:
    """Upgrade the store's schema to this townsquare's version (one transaction), or check.

    The embedded store also upgrades itself when opened; running this first, once, is what a
    deployment with several processes should do, so none of them upgrades under the others."""
    import sqlite3

    from townsquare.store import DB_FILE, open_store, store_url
    from townsquare.store.sqlite import SCHEMA_VERSION
    if store_url():
        _migrate_postgres(store_url(), check, json_out)
        return
    path = resolve_home(home) / DB_FILE
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
        err.print(f"[red]error:[/] {path} has schema v{before}, newer than this townsquare "
                  f"(v{SCHEMA_VERSION}): upgrade townsquare")
        raise typer.Exit(2)
    pending = before is not None and before < SCHEMA_VERSION
    result = {"store": str(path), "before": before, "target": SCHEMA_VERSION,
              "pending": pending}
    if not check:
        open_store(path).close()                          # applies the upgrades, atomically
        result["after"] = SCHEMA_VERSION
    _report_migration(str(path), result, check, json_out)


def store_url_redacted() -> str | None:
    """The server-mode store's URL without its password, or None (embedded)."""
    from townsquare.store import store_url
    from townsquare.store.postgres import _redact
    url = store_url()
    return _redact(url) if url else None


def _migrate_postgres(url: str, check: bool, json_out: bool) -> None:
    """``migrate`` for the PostgreSQL store: the same report, its own schema versions."""
    from townsquare.store import pgschema
    from townsquare.store.postgres import PostgresStore, _redact
    try:
        store = PostgresStore(url, upgrade=False, create=False)
    except (ConnectionError, RuntimeError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    with store:
        before = store.schema_version()
        target = pgschema.SCHEMA_VERSION
        pending = before is not None and before < target
        result = {"store": _redact(url), "before": before, "target": target, "pending": pending}
        if not check:
            store.migrate()
            result["after"] = target
    _report_migration(_redact(url), result, check, json_out)


def _report_migration(shown: str, result: dict, check: bool, json_out: bool) -> None:
    """Print what ``migrate`` found or did; exit 1 for ``--check`` with an upgrade pending."""
    before, target, pending = result["before"], result["target"], result["pending"]
    if json_out:
        _print_json(result)
    elif before is None:
        out.print(f"{shown}: new store" + ("" if check else f", created at v{target}"))
    elif not pending:
        out.print(f"{shown}: schema v{before}, up to date")
    else:
        out.print(f"{shown}: schema v{before} -> v{target}" +
                  (" pending (run `townsquare migrate`)" if check else " applied"))
    if check and pending:
        raise typer.Exit(1)

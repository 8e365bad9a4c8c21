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
    try:
        rt = Runtime(folder, backend=backend, backend_options=opts, embed=embed,
                     background_share=background_share)
    except ValueError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    app_ = create_app(rt, keys=keys, auth=not no_auth)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    err.print(f"townsquare is serving {folder} at [bold]http://{shown}:{port}/[/] "
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

    from townsquare.store import DB_FILE, open_store
    from townsquare.store.sqlite import SCHEMA_VERSION
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
    if json_out:
        _print_json(result)
    elif before is None:
        out.print(f"{path}: new store" + ("" if check else f", created at v{SCHEMA_VERSION}"))
    elif not pending:
        out.print(f"{path}: schema v{before}, up to date")
    else:
        out.print(f"{path}: schema v{before} -> v{SCHEMA_VERSION}" +
                  (" pending (run `townsquare migrate`)" if check else " applied"))
    if check and pending:
        raise typer.Exit(1)

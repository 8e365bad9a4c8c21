"""``townsquare follow``: follow a platform's live stream into the store, until stopped.

    export X_BEARER_TOKEN=...                                   # X: an app-only bearer token
    townsquare follow x --rule "flood lang:en -is:retweet" --tag flood     # add a rule, exit
    townsquare follow x --list-rules                            # or --delete-rule RULE_ID
    townsquare follow x [--backfill-minutes 2]                  # X's filtered stream
    townsquare follow bluesky [--did did:plc:...]               # Bluesky's Jetstream (public)
    townsquare follow mastodon https://mastodon.example [--local] [--tag riverton]
    townsquare follow ndjson https://firehose.example/posts     # any NDJSON feed
    some-exporter | townsquare follow ndjson -                  # stdin, until it ends
    townsquare follow bluesky --json                            # JSON progress lines

``SOURCE [WHERE]``: the platform, and where its stream is (X's API base URL, a Jetstream URL,
the Mastodon instance, the NDJSON feed's URL or ``-``; X and Bluesky have defaults). What each
source reads, and how it reconnects: ``townsquare.follow`` (one module per source).

- Credentials come from an environment variable named with ``--token-env NAME`` (X's default:
  ``X_BEARER_TOKEN``) or from a file (``--token-file PATH``: its first line), never from the
  command line, and never appear in logs, errors or stats.
- Posts go through the same upsert as ``townsquare ingest`` (a re-delivered post is stored once,
  a deleted id never comes back; bad frames are quarantined with their reason), and the late
  stage (language id, near-duplicate links) and the lexical index catch up every
  ``--late-every`` seconds, on a connection of their own.
- State lives in ``HOME/follow/``: ``NAME.cursor`` (Jetstream's resume point) and
  ``NAME.stats.json`` (the health that ``townsquare stats`` and ``/v1/stats`` show).
- SIGTERM or SIGINT (Ctrl-C) stops cleanly: what was received is committed, the cursor saved,
  and the command exits 0. A source that cannot go on (HTTP 401, 403) exits 1 with a one-line
  error; bad options exit 2.

``townsquare serve --follow "SOURCE [WHERE] [OPTIONS]"`` takes the same words (``parse_spec``).
"""
from __future__ import annotations

import asyncio
import logging
import re
import shlex
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional
from urllib.parse import urlsplit

import orjson
import typer

from townsquare.cli.common import Home, app, err, fail, out, print_json, settings_of, store_of
from townsquare.settings import Settings, secret_from_env

SOURCES = ("x", "bluesky", "mastodon", "ndjson")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_SCHEMES = {"x": ("http", "https"), "bluesky": ("ws", "wss"), "mastodon": ("http", "https"),
            "ndjson": ("http", "https")}
log = logging.getLogger("townsquare.follow")


class SpecError(ValueError):
    """Options that cannot work together (the message names the option)."""


@dataclass(frozen=True)
class FollowSpec:
    """What to follow and how: the words of ``townsquare follow`` (and ``serve --follow``)."""

    kind: str
    where: str | None = None
    name: str | None = None
    token_env: str | None = None
    token_file: Path | None = None
    backfill_minutes: int = 0
    dids: tuple[str, ...] = ()
    local: bool = False
    tag: str | None = None
    streaming_url: str | None = None
    object_kind: str | None = None
    batch_size: int = 1000
    max_delay_s: float = 0.2
    queue_frames: int = 10_000
    overflow: str = "block"

    def check(self) -> None:
        """Raise ``SpecError`` for what cannot work, before anything connects."""
        k = self.kind
        if k not in SOURCES:
            raise SpecError(f"SOURCE: unknown source {k!r}; one of {', '.join(SOURCES)}")
        if k in ("mastodon", "ndjson") and not self.where:
            what = "the instance's URL" if k == "mastodon" else "a URL, or - for stdin"
            raise SpecError(f"WHERE: {k} needs {what}")
        if self.where and not (k == "ndjson" and self.where == "-"):
            u = urlsplit(self.where)
            if u.scheme not in _SCHEMES[k] or not u.hostname:
                raise SpecError(f"WHERE: not a {'/'.join(_SCHEMES[k])} URL: {_shown(self.where)}")
        wrong = {"--did": bool(self.dids) and k != "bluesky",
                 "--local": self.local and k != "mastodon",
                 "--streaming-url": bool(self.streaming_url) and k != "mastodon",
                 "--tag": bool(self.tag) and k not in ("mastodon", "x"),
                 "--backfill-minutes": bool(self.backfill_minutes) and k != "x",
                 "--kind": bool(self.object_kind) and k != "ndjson",
                 "--token-env/--token-file": bool(self.token_env or self.token_file)
                 and k == "bluesky"}
        for option, bad in wrong.items():
            if bad:
                raise SpecError(f"{option}: not an option of {k}")
        if self.token_env and self.token_file:
            raise SpecError("--token-env, --token-file: give one of them")
        if self.token_env is not None and not _ENV_NAME.fullmatch(self.token_env):
            # Never echo the value: someone may have passed the token itself.
            raise SpecError("--token-env: takes the NAME of an environment variable that holds "
                            "the token (letters, digits, _), not the token")
        if not 0 <= self.backfill_minutes <= 5:
            raise SpecError(f"--backfill-minutes: 0 to 5, got {self.backfill_minutes}")
        if self.object_kind not in (None, "v1", "v2"):
            raise SpecError(f"--kind: v1 or v2, got {self.object_kind!r}")
        if self.overflow not in ("block", "drop-oldest"):
            raise SpecError(f"--overflow: block or drop-oldest, got {self.overflow!r}")
        if self.batch_size < 1 or self.queue_frames < 1:
            raise SpecError("--batch-size, --queue-frames: must be >= 1")
        if self.max_delay_s < 0:
            raise SpecError(f"--max-delay: must be >= 0, got {self.max_delay_s}")

    @property
    def source_name(self) -> str:
        """The dataset name its posts are stored under (``Post.source``), and its files' name."""
        if self.name:
            return self.name
        if self.kind == "mastodon":
            return f"mastodon:{urlsplit(self.where or '').hostname}"
        return self.kind

    def credential(self):
        """The bearer token's ``Credential`` (read when used), or None; raises ``SpecError``
        when it was asked for and is not there."""
        from townsquare.follow import Credential, FollowError

        if self.token_file is not None:
            cred = Credential.from_file(self.token_file)
        elif self.token_env or self.kind == "x":
            name = self.token_env or "X_BEARER_TOKEN"
            cred = Credential(f"${name}", lambda: secret_from_env(name))
        else:
            return None
        try:
            cred.value()
        except FollowError as e:
            option = "--token-file" if self.token_file else "--token-env"
            raise SpecError(f"{option}: {e}") from None
        return cred

    def source(self, state_dir: Path, stdin=None):
        """The ``townsquare.follow`` source this spec names (``check`` first)."""
        from townsquare.follow import JetstreamStream, MastodonStream, NDJSONStream, XStream
        from townsquare.follow.jetstream import DEFAULT_URL
        from townsquare.follow.x import DEFAULT_BASE_URL

        name = self.source_name
        if self.kind == "x":
            return XStream(self.credential(), name=name, base_url=self.where or DEFAULT_BASE_URL,
                           backfill_minutes=self.backfill_minutes)
        if self.kind == "bluesky":
            return JetstreamStream(self.where or DEFAULT_URL, name=name, dids=self.dids,
                                   state_dir=state_dir)
        if self.kind == "mastodon":
            stream = ("hashtag" if self.tag else "public") + (":local" if self.local else "")
            return MastodonStream(self.where, stream=stream, tag=self.tag, name=name,
                                  token=self.credential(), streaming_url=self.streaming_url)
        if self.where == "-":
            if stdin is None:
                raise SpecError("WHERE: - (stdin) cannot be followed here: give a URL")
            return NDJSONStream.from_file(stdin, name=name, kind=self.object_kind)
        return NDJSONStream.from_url(self.where, name=name, kind=self.object_kind,
                                     token=self.credential())

    def collector_options(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "max_delay_s": self.max_delay_s,
                "queue_frames": self.queue_frames, "overflow": self.overflow}


def _shown(value: str | None, n: int = 60) -> str:
    v = repr(value)
    return v if len(v) <= n else v[:n] + "…"


# Options of a run, not of what to follow: `serve --follow` refuses them.
_RUN_ONLY = ("home", "rule", "list_rules", "delete_rule", "dry_run", "late_every", "stats_every",
             "log_level", "json_out")


def parse_spec(text: str) -> FollowSpec:
    """``SOURCE [WHERE] [OPTIONS]`` as ``townsquare follow`` reads them (for ``serve --follow``).

        >>> parse_spec("mastodon https://m.example --tag riverton --name m").source_name
        'm'
    """
    import click

    # Recent typer carries a click of its own, whose errors are typer.TyperException (not
    # click's ClickException); older typer raises click's.
    usage_errors = (click.ClickException, getattr(typer, "TyperException", click.ClickException))
    command = typer.main.get_command(app).commands["follow"]
    try:
        ctx = command.make_context("follow", shlex.split(text))
    except usage_errors as e:
        raise SpecError(e.format_message()) from None
    except ValueError as e:                       # shlex: an unclosed quote
        raise SpecError(str(e)) from None
    defaults = {p.name: p.default for p in command.params}
    given = [f"--{k.removesuffix('_out').replace('_', '-')}" for k in _RUN_ONLY
             if ctx.params.get(k) not in (defaults.get(k), None, False, [], ())]
    if given:
        raise SpecError(f"{', '.join(given)}: an option of the `townsquare follow` command, not "
                        "of what to follow")
    spec = _spec(ctx.params)
    spec.check()
    return spec


def _spec(p: dict[str, Any]) -> FollowSpec:
    return FollowSpec(
        kind=p["source"], where=p["where"], name=p["name"], token_env=p["token_env"],
        token_file=p["token_file"], backfill_minutes=p["backfill_minutes"],
        dids=tuple(p["did"] or ()), local=p["local"], tag=p["tag"],
        streaming_url=p["streaming_url"], object_kind=p["kind"], batch_size=p["batch_size"],
        max_delay_s=p["max_delay"], queue_frames=p["queue_frames"], overflow=p["overflow"])


@app.command()
def follow(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="x, bluesky, mastodon or ndjson.")],
    where: Annotated[Optional[str], typer.Argument(
        help="Where the stream is: X's API base URL or a Jetstream URL (both optional), the "
             "Mastodon instance's URL, the NDJSON feed's URL or - (stdin).")] = None,
    home: Home = None,
    name: Annotated[Optional[str], typer.Option(
        help="Dataset name for its posts, and its state files' name (default: the source; "
             "mastodon:HOST for Mastodon).")] = None,
    token_env: Annotated[Optional[str], typer.Option(
        help="The environment variable that holds the bearer token (X: default "
             "X_BEARER_TOKEN).")] = None,
    token_file: Annotated[Optional[Path], typer.Option(
        help="A file whose first line is the bearer token.")] = None,
    backfill_minutes: Annotated[int, typer.Option(
        help="x: on reconnect, ask for up to this many minutes missed (0-5; some access "
             "levels only).")] = 0,
    did: Annotated[Optional[list[str]], typer.Option(
        help="bluesky: only this account's posts (repeat for several).")] = None,
    local: Annotated[bool, typer.Option(
        "--local", help="mastodon: this instance's posts only.")] = False,
    tag: Annotated[Optional[str], typer.Option(
        help="mastodon: one hashtag's stream; x: the tag of the rule --rule adds.")] = None,
    streaming_url: Annotated[Optional[str], typer.Option(
        help="mastodon: where the instance serves its streaming API, when elsewhere.")] = None,
    kind: Annotated[Optional[str], typer.Option(
        help="ndjson: read every line as v1 or v2 (default: told apart per line).")] = None,
    rule: Annotated[Optional[list[str]], typer.Option(
        help="x: add this filtered-stream rule (repeat for several), then exit.")] = None,
    list_rules: Annotated[bool, typer.Option("--list-rules", help="x: list the rules.")] = False,
    delete_rule: Annotated[Optional[list[str]], typer.Option(
        help="x: delete the rule with this id (repeat for several), then exit.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="x: with --rule, only check the rules with X.")] = False,
    batch_size: Annotated[int, typer.Option(help="Posts per transaction at most.")] = 1000,
    max_delay: Annotated[float, typer.Option(
        help="Seconds a post waits for others to share its transaction.")] = 0.2,
    queue_frames: Annotated[int, typer.Option(
        help="Frames held while the store is busy (bounded memory).")] = 10_000,
    overflow: Annotated[str, typer.Option(
        help="When that queue is full: block (read slower, drop nothing) or drop-oldest "
             "(counted in the stats as dropped).")] = "block",
    late_every: Annotated[float, typer.Option(
        help="Seconds between late-stage and lexical-index catch-ups (0: never).")] = 30.0,
    stats_every: Annotated[float, typer.Option(
        help="Seconds between progress lines and stats snapshots.")] = 5.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
    json_out: Annotated[bool, typer.Option(
        "--json", help="Progress as one JSON object per line on stdout, logs as JSON on "
                       "stderr.")] = False,
) -> None:
    """Follow a live stream (X, Bluesky, Mastodon, NDJSON) into the store until stopped."""
    spec = _spec(ctx.params)
    try:
        spec.check()
        rules = bool(rule) + list_rules + bool(delete_rule)
        if rules and spec.kind != "x":
            raise SpecError("--rule, --list-rules, --delete-rule: options of x only")
        if rules > 1:
            raise SpecError("--rule, --list-rules, --delete-rule: give one of them")
        if (dry_run or tag) and spec.kind == "x" and not rule:
            raise SpecError(f"{'--dry-run' if dry_run else '--tag'}: for x, goes with --rule")
        if stats_every <= 0 or late_every < 0:
            raise SpecError("--stats-every must be > 0 and --late-every >= 0")
        if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SpecError(f"--log-level: debug, info, warning or error, got {log_level!r}")
        if rules:
            cred = spec.credential()
    except SpecError as e:
        fail(str(e))
    _setup_logging(log_level, json_out)
    settings = settings_of(ctx, home)
    if rules:
        _manage_rules(spec, cred, rule or [], list_rules, delete_rule or [], dry_run, json_out)
        return
    try:
        src = spec.source(_state_dir(settings), stdin=sys.stdin.buffer)
    except (SpecError, ValueError) as e:
        fail(str(e))
    with _writer_lock(settings):
        stats, late, failure = asyncio.run(_follow(src, spec, settings, late_every_s=late_every,
                                                   stats_every_s=stats_every, json_out=json_out))
    final = {"event": "stopped", **stats, "late_stage": late}
    if json_out:
        _json_line(final)
    else:
        err.print(_progress_text(final), highlight=False)
    if failure is not None:
        fail(str(failure), code=1)


@contextmanager
def _writer_lock(settings: Settings) -> Iterator[None]:
    """Hold the embedded home's writer lock for the whole run, as a server does (``session``):
    another writer is told at once that this follower holds it, instead of waiting for it."""
    if settings.server_mode:
        yield
        return
    from townsquare.store.lock import LOCK_FILE, WriterLock

    settings.home.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(settings.home / LOCK_FILE, session=True)
    try:
        lock.acquire()
    except ConnectionError as e:                  # WriterLockTimeout: someone else writes
        fail(str(e))
    try:
        yield
    finally:
        lock.release()


def _state_dir(settings: Settings) -> Path:
    from townsquare.follow.stats import state_folder
    return state_folder(settings.home)


async def _follow(src, spec: FollowSpec, settings: Settings, *, late_every_s: float,
                  stats_every_s: float, json_out: bool
                  ) -> tuple[dict[str, Any], dict[str, int], BaseException | None]:
    """Run the collector until a signal (or the end of a finite input); the late stage and the
    progress lines beside it. Returns the final stats, the late stage's totals, and what
    stopped the source when it was not a stop."""
    from townsquare.follow import Collector, FollowError
    from townsquare.follow.stats import stats_path

    store = store_of(settings)
    collector = Collector(src, store, stats_path=stats_path(_state_dir(settings), src.name),
                          stats_every_s=stats_every_s, **spec.collector_options())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    late: dict[str, int] = {"processed": 0, "languages_detected": 0, "near_duplicates_linked": 0}
    helpers = [asyncio.create_task(_progress(collector, late, stats_every_s, json_out))]
    if late_every_s > 0:
        helpers.append(asyncio.create_task(_late_stage(settings, late_every_s, stop, late)))
    failure: BaseException | None = None
    try:
        await collector.run(stop)
    except (FollowError, ConnectionError) as e:   # a refusal; the store out of reach
        failure = e
    finally:
        ended = not stop.is_set()            # a finite input ended: not a signal, not a failure
        stop.set()
        helpers[0].cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        store.close()
    if ended and failure is None and late_every_s > 0:
        # All of stdin is in: catch up as `townsquare ingest` does. (On a signal, exit quickly
        # instead: the next run, `townsquare enrich` or the server's background catch up.)
        await _late_stage(settings, 0.0, asyncio.Event(), late)
    return collector.snapshot(), late, failure


async def _late_stage(settings: Settings, every_s: float, stop: asyncio.Event,
                      totals: dict[str, int], step: int = 2000) -> None:
    """Every ``every_s``: the late stage in steps of ``step`` posts until caught up, then the
    lexical index; on a store connection of its own, in a thread, so the stream is read and
    written meanwhile. A stop lets the current step finish. ``every_s`` 0: once, now."""
    from townsquare.ingest.enrich import LateStage
    from townsquare.services.indexes import refresh_lexical_index

    store = await asyncio.to_thread(store_of, settings)
    try:
        late = LateStage(store)
        while True:
            if every_s > 0:
                try:
                    await asyncio.wait_for(stop.wait(), every_s)
                    return
                except TimeoutError:
                    pass
            try:
                while not stop.is_set():
                    res = await asyncio.to_thread(late.run, max_posts=step)
                    totals["processed"] += res.processed
                    totals["languages_detected"] += res.languages_detected
                    totals["near_duplicates_linked"] += res.linked
                    if res.processed < step:
                        break
                await asyncio.to_thread(refresh_lexical_index, store, settings.home)
            except Exception as e:        # noqa: BLE001 - logged; the stream goes on
                log.warning("late stage: %s: %s (retried in %g s)", type(e).__name__, e, every_s,
                            extra={"event": "late-stage-failed"})
            if every_s <= 0:
                return
    finally:
        store.close()


async def _progress(collector, late: dict[str, int], every_s: float, json_out: bool) -> None:
    while True:
        await asyncio.sleep(every_s)
        line = {"event": "progress", **collector.snapshot(), "late_stage": dict(late)}
        if json_out:
            _json_line(line)
        else:
            err.print(_progress_text(line), highlight=False)


def _json_line(obj: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


def _progress_text(s: dict[str, Any]) -> str:
    lag = "-" if s["lag_ms"] is None else f"{s['lag_ms'] / 1000:.1f} s"
    state = "connected" if s["connected"] else "not connected"
    return (f"{s['source']}: {s['posts']:,} posts ({s['posts_per_s']:,}/s), {s['deletes']:,} "
            f"deletes, lag {lag}, {s['reconnects']} reconnects, {s['quarantined']:,} "
            f"quarantined, {s['dropped']:,} dropped; {state}"
            + (f" (last error: {s['last_error']})" if s.get("last_error") else "")
            + ("" if s["event"] == "progress" else
               f"; late stage: {s['late_stage']['processed']:,} posts"))


def _manage_rules(spec: FollowSpec, cred, add: list[str], list_: bool, delete: list[str],
                  dry_run: bool, json_out: bool) -> None:
    """``--rule`` / ``--list-rules`` / ``--delete-rule`` against X's rules endpoint."""
    from townsquare.follow import FollowError, Rule, XRules
    from townsquare.follow.x import DEFAULT_BASE_URL

    rules = XRules(cred, base_url=spec.where or DEFAULT_BASE_URL)
    try:
        if list_:
            listed = asyncio.run(rules.list())
            result: dict[str, Any] = {"rules": [_rule(r) for r in listed]}
        elif delete:
            result = {"deleted": asyncio.run(rules.delete(delete)), "asked": len(delete)}
        else:
            created, errors = asyncio.run(rules.add([Rule(v, spec.tag) for v in add],
                                                    dry_run=dry_run))
            result = {"added": [_rule(r) for r in created], "errors": errors,
                      "dry_run": dry_run}
    except FollowError as e:
        fail(str(e), code=1)
    if json_out:
        print_json(result)
    elif "rules" in result:
        for r in result["rules"]:
            out.print(f"{r['id']}  {r['value']}" + (f"  (tag {r['tag']})" if r["tag"] else ""),
                      highlight=False)
        if not result["rules"]:
            out.print("no rules (townsquare follow x --rule \"...\")")
    elif "deleted" in result:
        out.print(f"deleted {result['deleted']} of {result['asked']} rules")
    else:
        for r in result["added"]:
            out.print(f"{'checked' if dry_run else 'added'} {r['id'] or '-'}  {r['value']}",
                      highlight=False)
        for e in result["errors"]:
            err.print(f"[red]refused:[/] {e}", highlight=False)
    if result.get("errors"):
        raise typer.Exit(1)


def _rule(r) -> dict[str, Any]:
    return {"id": r.id, "value": r.value, "tag": r.tag}


class JsonLogs(logging.Formatter):
    """One JSON object per log record: time, level, message, and the fields the collectors put
    on the record (``event``, ``source``, ``kind``, figures)."""

    _PLAIN = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

    def format(self, record: logging.LogRecord) -> str:
        from townsquare.posts import format_time

        d = {"time": format_time(int(record.created * 1000)), "level": record.levelname.lower(),
             "logger": record.name, "message": record.getMessage()}
        d.update((k, v) for k, v in vars(record).items() if k not in self._PLAIN)
        return orjson.dumps(d, default=str).decode()


def _setup_logging(level: str, json_out: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogs() if json_out else logging.Formatter(
        "%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False

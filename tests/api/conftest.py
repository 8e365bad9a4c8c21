"""A real townsquare server on a free port, over a home with invented posts, and its keys.

The posts are made up here (two events and some chatter, several authors, over a few hours):
tests never carry real tweet text.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from townsquare.embed.models import DEFAULT_EMBEDDER, get_embedder
from townsquare.settings import LLMSettings, Settings

BASE_ID = 1_600_000_000_000_000_000
EVENTS = {
    "quarry": ["Explosion heard at the Lindenfeld quarry, smoke rising over the valley",
               "Lindenfeld quarry explosion: firefighters on site, road 12 closed",
               "Road 12 closed after the quarry explosion near Lindenfeld",
               "Smoke from the Lindenfeld quarry explosion visible from the ridge",
               "Firefighters say the Lindenfeld quarry explosion injured 3 workers",
               "3 workers injured in the Lindenfeld quarry explosion, officials say",
               "Lindenfeld quarry explosion: avoid road 12, detour via the ridge",
               "Officials confirm 3 injured at Lindenfeld quarry after explosion"],
    "ferry": ["Ferry Aurelia stuck on a sandbank off Port Kessel, passengers safe",
              "Port Kessel ferry Aurelia aground on a sandbank, coast guard on the way",
              "Coast guard towing the ferry Aurelia off the Port Kessel sandbank",
              "All 120 passengers of the ferry Aurelia are safe, says the coast guard",
              "Ferry Aurelia refloated at high tide near Port Kessel",
              "Passengers of the Aurelia ferry back in Port Kessel after the sandbank",
              "Coast guard: ferry Aurelia sandbank incident over, 120 passengers safe",
              "Port Kessel ferry service resumes after the Aurelia ran aground"],
}
CHATTER = ["Lovely morning for a walk in the park", "New recipe tried tonight, pasta with lemon",
           "Anyone watching the chess final later?", "Coffee first, then emails",
           "My cat refuses to leave the sofa today", "Painting the fence this weekend"]


def tweets() -> list[dict]:
    """Invented v2 tweet objects: each event's posts by distinct authors, an hour apart per
    round, chatter between."""
    out, i = [], 0
    t0 = 1_700_000_000_000
    for round_ in range(8):
        for name, texts in EVENTS.items():
            out.append({"id": str(BASE_ID + i), "text": texts[round_],
                        "created_at": _iso(t0 + round_ * 600_000 + i * 1000),
                        "author_id": str(100 + i), "lang": "en"})
            i += 1
        if round_ < len(CHATTER):
            out.append({"id": str(BASE_ID + i), "text": CHATTER[round_],
                        "created_at": _iso(t0 + round_ * 600_000 + i * 1000),
                        "author_id": str(100 + i), "lang": "en"})
            i += 1
    return out


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ms / 1000))


def runtime_settings(home: Path, backend: str | None = "extractive") -> Settings:
    """Settings for a ``Runtime`` over the embedded store in ``home`` (built here, not from the
    environment, so nothing outside the test decides what it opens)."""
    return Settings(home=home, llm=LLMSettings(backend=backend))


def warm_model_cache() -> None:
    """Export the default embedding model into the user's cache once for the whole test run, so
    that a server's first ads request finds it (a first export takes ~15 s, past a generated
    request's timeout)."""
    get_embedder(DEFAULT_EMBEDDER, cache_dir=Settings().cache_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "townsquare", *args, "--home", str(home)],
                          capture_output=True, text=True, timeout=300, check=True)


@dataclass
class Server:
    url: str
    home: Path
    keys: dict[str, str]          # role -> secret
    proc: subprocess.Popen
    log: Path

    def client(self, role: str | None = "admin", **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kw)


def start_server(home: Path, *extra: str,
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, Path]:
    """``townsquare serve`` over ``home`` on a free port, with ``env`` added to its environment
    (``TOWNSQUARE_STORE`` for server mode); returns once it answers ``/health``."""
    port = free_port()
    log = home / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "townsquare", "serve", "--home", str(home),
                             "--port", str(port), *extra],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url, log
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not answer in 120 s:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    """The real server (default generation backend: SmolLM2 through llama.cpp) with keys for
    each scope, over the invented posts."""
    home = tmp_path_factory.mktemp("serve") / "home"
    data = home.parent / "posts.jsonl"
    data.write_bytes(b"\n".join(orjson.dumps(t) for t in tweets()) + b"\n")
    cli("ingest", str(data), home=home)
    warm_model_cache()
    keys = {"admin": cli("keys", "create", "--scope", "admin", home=home).stdout.strip(),
            "read": cli("keys", "create", "--scope", "read", home=home).stdout.strip(),
            "ingest": cli("keys", "create", "--scope", "ingest", home=home).stdout.strip(),
            "advertiser": cli("keys", "create", "--scope", "advertiser", "--subject", "acme",
                              home=home).stdout.strip(),
            "rival": cli("keys", "create", "--scope", "advertiser", "--subject", "rival",
                         home=home).stdout.strip(),
            "user": cli("keys", "create", "--scope", "user", "--subject", "100",
                        home=home).stdout.strip(),
            "slow": cli("keys", "create", "--scope", "read", "--rate", "2", home=home).stdout.strip()}
    proc, url, log = start_server(home)
    yield Server(url, home, keys, proc, log)
    stop_server(proc)

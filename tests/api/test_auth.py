"""API keys: hashed at rest, scopes, revocation, rate limits; the CLI prints only the key."""
from __future__ import annotations

import hashlib
import sqlite3
import threading

import pytest
from typer.testing import CliRunner

from townsquare.api.auth import ApiKey, KeyStore, RateLimiter, check_scopes
from townsquare.cli import app


def test_key_is_stored_only_as_its_hash(tmp_path):
    ks = KeyStore(tmp_path / "keys.db")
    secret = ks.create(["read", "ingest"], name="desk")
    rows = sqlite3.connect(tmp_path / "keys.db").execute("SELECT * FROM api_keys").fetchall()
    flat = " ".join(str(x) for row in rows for x in row)
    assert secret not in flat and secret[3:] not in flat
    assert hashlib.sha256(secret.encode()).hexdigest() in flat
    assert ks.verify(secret).scopes == ("ingest", "read")


def test_admin_allows_every_scope_and_others_only_their_own():
    admin = ApiKey("a", "", ("admin",), 60, 0)
    adv = ApiKey("b", "", ("advertiser",), 60, 0)
    assert all(admin.allows(s) for s in ("read", "ingest", "advertiser"))
    assert adv.allows("advertiser") and not adv.allows("read")


def test_unknown_scope_and_bad_rate_are_refused(tmp_path):
    ks = KeyStore(tmp_path / "k.db")
    with pytest.raises(ValueError, match="unknown scope 'root'"):
        ks.create(["root"])
    with pytest.raises(ValueError, match="at least one scope"):
        check_scopes([])
    with pytest.raises(ValueError, match="rate_per_minute"):
        ks.create(["read"], rate_per_minute=0)


def test_revoked_key_stops_working(tmp_path):
    ks = KeyStore(tmp_path / "k.db")
    secret = ks.create(["read"])
    kid = ks.list()[0].id
    assert ks.revoke(kid) and ks.verify(secret) is None and not ks.revoke(kid)
    assert ks.list()[0].revoked


def test_rate_limiter_refills_over_time():
    now = [0.0]
    rl = RateLimiter(clock=lambda: now[0])
    k = ApiKey("k", "", ("read",), 60, 0)          # one per second, bursts of 60
    assert all(rl.take(k) == 0 for _ in range(60))
    assert rl.take(k) == 1
    now[0] += 1.0
    assert rl.take(k) == 0 and rl.take(k) == 1


def test_rate_limiter_holds_under_concurrent_requests():
    rl = RateLimiter(clock=lambda: 0.0)
    k = ApiKey("k", "", ("read",), 100, 0)
    allowed = []
    def hit():
        for _ in range(50):
            allowed.append(rl.take(k) == 0)
    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 100                   # exactly the bucket, never more


def test_cli_keys_create_prints_only_the_key(tmp_path):
    r = CliRunner().invoke(app, ["keys", "create", "--scope", "read", "--home", str(tmp_path)])
    assert r.exit_code == 0
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ts_") and len(lines[0]) == 46
    assert KeyStore(tmp_path / "keys.db").verify(lines[0]) is not None
    bad = CliRunner().invoke(app, ["keys", "create", "--scope", "god", "--home", str(tmp_path)])
    assert bad.exit_code == 2
    listed = CliRunner().invoke(app, ["keys", "list", "--home", str(tmp_path), "--json"])
    assert '"read"' in listed.stdout and lines[0] not in listed.stdout


def test_advertiser_and_user_keys_need_their_subject(tmp_path):
    ks = KeyStore(tmp_path / "k.db")
    with pytest.raises(ValueError, match="needs a subject"):
        ks.create(["advertiser"])
    with pytest.raises(ValueError, match="both"):
        ks.create(["advertiser", "user"], subject="x")
    assert ks.verify(ks.create(["user"], subject="ann")).subject == "ann"
    assert ks.list()[0].to_dict()["subject"] == "ann"

"""The reconnect policy's delays, as X documents them."""
from __future__ import annotations

import pytest

from townsquare.follow.backoff import Backoff, ReconnectPolicy


def delays(kind: str, n: int, b: Backoff | None = None) -> list[float]:
    b = b or Backoff(ReconnectPolicy())
    return [b.next_delay(kind) for _ in range(n)]


def test_network_errors_back_off_linearly_to_16_s():
    d = delays("network", 66)
    assert d[:4] == [0.25, 0.5, 0.75, 1.0]
    assert d[63] == 16.0 and d[65] == 16.0 and max(d) == 16.0


def test_http_errors_back_off_exponentially_from_5_s_to_320_s():
    assert delays("http", 8) == [5, 10, 20, 40, 80, 160, 320, 320]


def test_rate_limits_back_off_exponentially_from_a_minute():
    assert delays("rate", 6) == [60, 120, 240, 480, 960, 960]


def test_a_server_asking_for_longer_wins():
    b = Backoff(ReconnectPolicy())
    assert b.next_delay("rate", 300.0) == 300.0
    assert b.next_delay("rate", 10.0) == 120.0


def test_an_established_connection_resets_and_reconnects_at_once():
    b = Backoff(ReconnectPolicy())
    delays("http", 3, b)
    delays("network", 3, b)
    b.established()
    assert b.next_delay("network") == 0.0            # the drop itself
    assert delays("network", 2, b) == [0.25, 0.5]    # then the sequence, from the start
    assert b.next_delay("http") == 5.0
    b.established()
    assert b.next_delay("rate") == 60.0             # a 429 waits even right after a drop


def test_kinds_are_checked():
    with pytest.raises(ValueError):
        Backoff(ReconnectPolicy()).next_delay("tcp")

"""Durations and times as flags and parameters spell them; InputError names the field."""
from __future__ import annotations

import pytest

from townsquare.services import InputError
from townsquare.services.times import parse_at, parse_duration, parse_time


@pytest.mark.parametrize("text, ms", [("45s", 45_000), ("30m", 1_800_000), ("1h", 3_600_000),
                                      ("2d", 172_800_000), ("90m", 5_400_000)])
def test_durations(text, ms):
    assert parse_duration(text, "window") == ms


@pytest.mark.parametrize("text", ["soon", "h", "0h", "-1h", "1w", "1.5h", "", "1 h",
                                  "\u00b2h",              # a digit to isdigit(), not to int()
                                  "1" * 16 + "d"])         # over 15 digits: past any bound
def test_bad_durations_name_the_field(text):
    with pytest.raises(InputError) as e:
        parse_duration(text, "--window")
    assert e.value.field == "--window" and isinstance(e.value, ValueError)
    assert str(e.value) == f"expected a duration like 30m, 1h or 2d, got {text!r}"


def test_times_in_every_format_posts_accept():
    assert parse_time(None, "since") is None
    day = parse_time("2020-01-02", "since")
    assert day == 1_577_923_200_000
    assert parse_time("2020-01-02T00:00:00Z", "since") == day
    assert parse_time("1577923200", "since") == day              # unix seconds
    assert parse_time("Thu Jan 02 00:00:00 +0000 2020", "since") == day


def test_a_bad_time_says_what_a_good_one_looks_like():
    with pytest.raises(InputError) as e:
        parse_time("yesterday", "until")
    assert e.value.field == "until"
    assert str(e.value) == ("expected a time like 2020-01-02 or 2020-01-02T10:00:00Z, "
                            "got 'yesterday'")


def test_a_moment_is_a_time_from_the_epoch_on():
    assert parse_at(None, "at") is None
    assert parse_at("2013-04-15T18:00:00Z", "at") == 1_366_048_800_000
    assert parse_at("1970-01-01", "at") == 0
    for bad, message in [("1969-12-31T23:59:59Z", "must be from 1970-01-01 on"),
                         ("yesterday", "expected a time like 2020-01-02")]:
        with pytest.raises(InputError) as e:
            parse_at(bad, "--at")
        assert e.value.field == "--at" and str(e.value).startswith(message)

"""Issue 17, groups 4 and 7 (CLI part): every bad option or unusable home is one line on stderr
with exit 2 (no traceback, nothing created), and text from posts reaches the terminal without its
escape sequences or control characters."""
from __future__ import annotations

import os
import sqlite3

import orjson
import pytest
from typer.testing import CliRunner

from townsquare.cli import app

from ..conftest import FIXTURES

runner = CliRunner()
SAMPLE = str(FIXTURES / "v1_sample.json")
BASE = 1212092628029698048


def _one_line_error(r, *expected: str) -> None:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    for e in expected:
        assert e in lines[0], lines[0]


@pytest.mark.parametrize("args,expected", [
    (["--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
    (["--source", ""], "--source: must not be empty"),
    (["--source", "  "], "--source: must not be empty"),
    (["--writer", "thread"], "--writer: unknown writer 'thread'"),
    (["--format", "xml"], "--format: unknown format 'xml'"),
    (["--columns", "text"], "--columns: expected FIELD=HEADER, got 'text'"),
])
def test_bad_ingest_options_are_one_line_errors_and_create_nothing(tmp_path, args, expected):
    home = tmp_path / "h"
    _one_line_error(runner.invoke(app, ["ingest", SAMPLE, "--home", str(home), *args]), expected)
    assert not home.exists()


def test_a_missing_path_is_a_one_line_error(tmp_path):
    _one_line_error(runner.invoke(app, ["ingest", str(tmp_path / "nope.json"), "--home",
                                        str(tmp_path / "h")]), "no such file or folder")


def _unwritable_home(tmp_path):
    """A folder this process cannot create files in (root writes anywhere a mode allows, so a
    read-only system folder stands in where the tests run as root)."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    if not os.access(d, os.W_OK):
        return d
    for candidate in ("/proc/1", "/sys/kernel"):
        if os.path.isdir(candidate) and not os.access(candidate, os.W_OK):
            return candidate
        try:
            open(os.path.join(candidate, "townsquare.db"), "ab").close()
        except OSError:
            return candidate
    pytest.skip("no unwritable folder on this machine")


@pytest.mark.parametrize("command", [["ingest", SAMPLE, "--no-late"], ["stats"],
                                     ["search", "flood"]])
def test_unusable_homes_are_one_line_errors_for_every_command(tmp_path, command):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "townsquare.db").write_bytes(b"this is not an SQLite database\n" * 300)
    cases = [
        (a_file, "cannot use as the home folder (a file, not a folder)"),
        (a_file / "sub", "cannot use as the home folder (Not a directory)"),
        (corrupt, "not a townsquare database (file is not a database)"),
        (_unwritable_home(tmp_path), "cannot"),
    ]
    for home, expected in cases:
        r = runner.invoke(app, [*command, "--home", str(home)])
        _one_line_error(r, expected)
    assert (corrupt / "townsquare.db").read_bytes().startswith(b"this is not")   # left alone


def test_a_database_of_a_newer_townsquare_is_a_one_line_error(tmp_path):
    home = tmp_path / "h"
    assert runner.invoke(app, ["ingest", SAMPLE, "--home", str(home), "--no-late"]).exit_code == 0
    with sqlite3.connect(home / "townsquare.db") as db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    _one_line_error(runner.invoke(app, ["stats", "--home", str(home)]), "schema version 999")


ESC_TEXT = "flood \x1b[2J\x1b[31mRED\x1b[0m here\x07 \x1b]0;title\x07 and \u202eevil\u202c [/x] [red]"


def test_post_text_and_handles_print_without_escapes_or_markup(tmp_path):
    data = tmp_path / "posts.jsonl"
    lines = [{"id_str": str(BASE + i), "text": f"{ESC_TEXT} {i}",
              "user": {"id_str": "7", "screen_name": "ev\x1b[1mil[/b]"}} for i in range(3)]
    data.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\n[/x]\x1b[31m,hello\n")
    home = str(tmp_path / "h")
    r = runner.invoke(app, ["ingest", str(data), str(bad), "--home", home])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["search", "flood", "--home", home, "--no-semantic"])
    assert r.exit_code == 0, r.output            # "[/x]" in a handle stopped Rich before
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\u202e" not in r.stdout
    assert "flood RED here  and evil [/x] [red] 0" in r.stdout
    assert "@evil[/b]" in r.stdout
    r = runner.invoke(app, ["quarantine", "--home", home])
    assert r.exit_code == 0, r.output
    (line,) = r.stdout.splitlines()
    assert line.endswith("bad.csv:2: id: not a numeric id: '[/x]\\x1b[31m'")   # repr: no ESC


def test_story_and_stories_print_post_text_without_escapes(tmp_path):
    rows = ["id,text,created_at,author"]
    for i in range(6):
        rows.append(f'{BASE + i},"Bridge collapse on route 9 after the flood {ESC_TEXT} {i % 2}",'
                    f"2020-01-02T1{i}:00:00Z,user{i}")
    data = tmp_path / "posts.csv"
    data.write_text("\n".join(rows) + "\n")
    home = str(tmp_path / "h")
    r = runner.invoke(app, ["ingest", str(data), "--home", home, "--columns",
                            "id=id,text=text,created_at=created_at,author_handle=author"])
    assert r.exit_code == 0, r.output
    listed = runner.invoke(app, ["stories", "--home", home, "--all"])
    assert listed.exit_code == 0 and "\x1b" not in listed.stdout
    sid = orjson.loads(runner.invoke(app, ["stories", "--home", home, "--all", "--json"])
                       .stdout)[0]["id"]
    r = runner.invoke(app, ["story", str(sid), "--home", home])
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "RED here" in r.stdout

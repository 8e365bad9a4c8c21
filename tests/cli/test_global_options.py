"""The global options build one ``Settings`` for the run: ``--home``, ``--store`` (else
$TOWNSQUARE_STORE), ``--config``; a command's own ``--home`` wins; input errors are one line."""
from __future__ import annotations

import os

import orjson
from typer.testing import CliRunner

from townsquare.cli import app

from ..conftest import FIXTURES

runner = CliRunner()


def _posts(home) -> int:
    r = runner.invoke(app, ["stats", "--home", str(home), "--json"])
    assert r.exit_code == 0, r.output
    return orjson.loads(r.stdout)["posts"]


def test_global_home_and_a_commands_own_home_wins(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r = runner.invoke(app, ["--home", str(a), "ingest", str(FIXTURES), "--no-late", "--json"])
    assert r.exit_code == 0, r.output
    assert _posts(a) > 0
    r = runner.invoke(app, ["--home", str(a), "stats", "--home", str(b), "--json"])
    assert orjson.loads(r.stdout)["posts"] == 0 == _posts(b)


def test_the_config_file_names_the_home(tmp_path):
    home = tmp_path / "from-config"
    runner.invoke(app, ["ingest", str(FIXTURES), "--home", str(home), "--no-late"])
    conf = tmp_path / "ts.toml"
    conf.write_text(f'home = "{home}"\n')
    r = runner.invoke(app, ["--config", str(conf), "stats", "--json"])
    assert r.exit_code == 0, r.output
    assert orjson.loads(r.stdout)["posts"] == _posts(home) > 0


def test_a_bad_config_file_or_store_url_is_a_one_line_error(tmp_path):
    conf = tmp_path / "ts.toml"
    conf.write_text('colour = "blue"\n')
    r = runner.invoke(app, ["--config", str(conf), "stats"])
    assert r.exit_code == 2 and "unknown setting(s) colour" in r.output
    r = runner.invoke(app, ["--store", "mysql://x", "stats", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "expected a postgresql:// URL" in r.output


def test_the_store_from_the_environment_and_nothing_written_back(tmp_path, monkeypatch):
    dead = "postgresql://u:secret@127.0.0.1:9/x"       # nothing listens on port 9
    before = dict(os.environ)
    r = runner.invoke(app, ["--store", dead, "stats", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "cannot connect" in r.output and "secret" not in r.output
    assert dict(os.environ) == before                  # the CLI passes settings, not env
    monkeypatch.setenv("TOWNSQUARE_STORE", dead)
    r = runner.invoke(app, ["stats", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "cannot connect" in r.output


def test_bad_durations_and_times_name_the_flag_on_one_line(tmp_path):
    home = str(tmp_path / "h")
    r = runner.invoke(app, ["trends", "--home", home, "--window", "soon"])
    assert r.exit_code == 2
    assert "error: --window: expected a duration like 30m, 1h or 2d, got 'soon'" in r.output
    r = runner.invoke(app, ["trends", "--home", home, "--baseline", "0"])
    assert r.exit_code == 2 and "error: --baseline: must be between 1 and 168, got 0" in r.output
    r = runner.invoke(app, ["stories", "--home", home, "--until", "tomorrow"])
    assert r.exit_code == 2
    assert ("error: --until: expected a time like 2020-01-02 or 2020-01-02T10:00:00Z, "
            "got 'tomorrow'") in r.output
    r = runner.invoke(app, ["stories", "--home", home, "--since", "2020-01-02",
                            "--until", "2020-01-01"])
    assert r.exit_code == 2 and "--until must be after --since" in r.output


def test_the_main_module_runs_the_command_line_only_as_main(monkeypatch):
    """A spawned child process (the server's fast tier, ``embed.fastproc``) imports the main
    module again under another name: ``python -m townsquare serve``'s child must not run the
    command line a second time (unguarded, it died and the tier fell back in-process)."""
    import runpy

    import townsquare.cli as cli
    calls = []
    monkeypatch.setattr(cli, "main", lambda *a, **kw: calls.append(a))
    runpy.run_module("townsquare.__main__", run_name="__mp_main__")
    assert calls == []
    runpy.run_module("townsquare.__main__", run_name="__main__")
    assert len(calls) == 1

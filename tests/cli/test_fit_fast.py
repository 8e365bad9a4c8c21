"""``townsquare fit-fast``: fits the home's fast tier (fit-e5) and reports it as JSON; a store
without e5 vectors exits 2 with what to run."""
from __future__ import annotations

import orjson
from typer.testing import CliRunner

from townsquare.cli import app
from townsquare.embed.stage import EmbedStage
from townsquare.store.sqlite import SQLiteStore

from ..embed.test_fitted import POSTS, _ingest, e5  # noqa: F401 - e5 is a fixture


def test_cli_fit_fast_writes_the_homes_table_and_reports_it(tmp_path, e5):
    home = tmp_path / "home"
    home.mkdir()
    with SQLiteStore(home / "townsquare.db") as s:
        _ingest(s, POSTS)
        EmbedStage(s, e5).run()
    args = ["fit-fast", "--home", str(home), "--json"]
    env = {"TOWNSQUARE_CACHE": str(e5.model_path.parent)}
    r = CliRunner().invoke(app, [*args, "--max-posts", "20", "--epochs", "1"], env=env)
    assert r.exit_code == 0, r.output
    report = orjson.loads(r.stdout)
    assert report["posts"] == 20 and report["path"] == str(home / "models" / "fit-e5.npz")
    assert len(report["loss"]) == 2 and (home / "models" / "fit-e5.npz").is_file()
    assert report["config"]["fallback_weight"] == 0.0
    r = CliRunner().invoke(app, ["fit-fast", "--home", str(tmp_path / "empty"), "--json"],
                           env=env)
    assert r.exit_code == 2 and "townsquare embed" in r.output

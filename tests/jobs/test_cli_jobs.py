"""``townsquare jobs``: every job refuses an unreachable or malformed scheduler with exit 2."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from townsquare.cli import app

pytest.importorskip("distributed")
runner = CliRunner()


@pytest.mark.parametrize("job", [["embed"], ["recluster", "--since", "2021-01-01"],
                                 ["corpus", "--out", "o"]])
@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "not an address:::"])
def test_every_job_exits_2_when_the_scheduler_cannot_be_reached(tmp_path, monkeypatch, job,
                                                                address):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["jobs", *job, "--home", str(tmp_path / "h"), "--scheduler", address,
                            "--timeout", "1"])
    assert r.exit_code == 2, r.output
    assert f"cannot reach the Dask scheduler at {address}" in " ".join(r.output.split())
    assert not (tmp_path / "h").exists() and not (tmp_path / "o").exists()   # nothing created


def test_an_empty_range_has_no_stories(tmp_path):
    from townsquare.settings import DB_FILE
    from townsquare.store import open_store
    open_store(tmp_path / DB_FILE).close()
    r = runner.invoke(app, ["jobs", "recluster", "--home", str(tmp_path), "--workers", "1",
                            "--since", "2021-01-01", "--until", "2021-01-02", "--json"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "[]"

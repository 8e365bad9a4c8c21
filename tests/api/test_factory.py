"""The app of one `townsquare serve --workers N` worker, built from the settings left for it."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import runtime_settings
from townsquare.api.factory import build
from townsquare.settings import WORKER_ENV


def test_a_worker_builds_its_app_from_the_settings_left_for_it(tmp_path):
    payload = runtime_settings(tmp_path).to_json(embed=False, background_share=0.5, auth=False)
    app = build({WORKER_ENV: payload})
    rt = app.state.runtime
    assert rt.settings.home == tmp_path and rt.background.background_share == 0.5
    assert not rt.background.embed and not app.state.access.auth
    with TestClient(app) as c:
        assert c.get("/v1/info").json()["auth"] is False
        assert c.get("/health").json()["posts"] == 0
    with pytest.raises(RuntimeError, match="closed"):    # the worker's shutdown closed its runtime
        rt.writer.write([])

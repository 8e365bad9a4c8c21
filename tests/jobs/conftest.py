"""One local 2-worker Dask cluster for the jobs tests (starting one takes seconds, so they share
it; the CLI tests reach it by its scheduler address, which also exercises ``--scheduler``)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dask_client():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()

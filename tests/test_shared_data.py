"""Every tweet dataset in ../shared/data ingests; counts match each PROVENANCE.md."""
from __future__ import annotations

import pytest

from townsquare.ingest.pipeline import IngestPipeline
from townsquare.store.sqlite import SQLiteStore

# Rows per PROVENANCE.md, and distinct ids (a few ids occur twice within a dataset, in two events).
ROWS = {"crisislex_t6": 60082, "crisisnlp_aidr_volunteers": 25976,
        "crisisnlp_lrec2016_crowdflower": 22099, "humaid": 76484}
DISTINCT = {"crisislex_t6": 60078, "crisisnlp_aidr_volunteers": 25965,
            "crisisnlp_lrec2016_crowdflower": 22099, "humaid": 76484}


@pytest.mark.slow
def test_all_shared_datasets_ingest_with_provenance_counts(shared_data, tmp_path):
    store = SQLiteStore(tmp_path / "all.db")
    report = IngestPipeline(store).run([shared_data])
    assert report.rows_by_source() == ROWS
    assert report.totals.quarantined == 0          # no genuinely malformed row in these files
    stats = store.stats()
    assert stats["by_source"] == DISTINCT
    # 75 ids are in both CrisisNLP folders (PROVENANCE.md): one post, two sources
    assert stats["posts"] == sum(DISTINCT.values()) - 75
    assert store.integrity_check() == []
    again = IngestPipeline(store).run([shared_data])
    assert again.totals.inserted == 0 and store.stats()["by_source"] == DISTINCT
    assert store.count() == stats["posts"]

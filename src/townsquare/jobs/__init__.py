"""Bulk jobs on a Dask cluster (local by default): ``backfill`` (embeddings), ``recluster``
(stories of a time range), ``corpus`` (the governed training corpus); ``runner`` holds what they
share (the cluster, the ordered map over chunks).

    townsquare jobs embed [--workers 2] [--scheduler tcp://HOST:8786]
    townsquare jobs recluster --since 2020-01-01 --until 2020-01-08 [--json]
    townsquare jobs corpus --out DIR [--json]
"""

"""Bulk jobs on a Dask cluster (local by default): ``backfill`` (embeddings).

    townsquare jobs embed [--workers 2] [--scheduler tcp://HOST:8786]
"""

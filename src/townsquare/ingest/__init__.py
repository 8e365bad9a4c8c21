"""Ingestion: one reader per input format, the batch pipeline, and the late stage (language id,
near-duplicate linking). Import the modules directly (``townsquare.ingest.pipeline``)."""

"""The service: FastAPI app (``app``), its shared runtime (``runtime``: one writer with group
commit in ``writequeue``, readers, background indexer), API keys and rate limits (``auth``), the
ingest body reader (``ingestbody``) and the OpenAI-compatible chat (``chat``).

    townsquare serve [--host 127.0.0.1] [--port 8000] [--no-auth]
"""

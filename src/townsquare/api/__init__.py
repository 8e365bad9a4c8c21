"""The service: the FastAPI app (``app.create_app``) over one shared ``runtime.Runtime``.

    townsquare serve [--host 127.0.0.1] [--port 8000] [--no-auth]

- The app: ``app`` (builds it), ``errors`` (the JSON errors), ``deps`` (the runtime and API keys
  as route dependencies), the routers ``routes_service``, ``routes_posts``, ``routes_search``,
  ``routes_happening``, ``chat`` (OpenAI-compatible) and ``ads``; ``ingestbody`` reads ingest
  bodies; ``auth`` keeps API keys and rate limits; ``factory`` builds the app of one worker of
  ``townsquare serve --workers N``.
- The runtime: ``runtime`` (composes the rest), ``writequeue`` (the one writer, group commit),
  ``indexer`` (search indexes kept fresh), ``background`` (late stage, embeddings, stories,
  server-mode leadership), ``perrequest`` (readers, engines, generation, ads per thread),
  ``loops`` (their threads).
"""

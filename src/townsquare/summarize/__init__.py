"""Summaries of what is happening: evidence chosen by code, phrasing by a backend, every sentence verified (``evidence``, ``verify``, ``summarizer``)."""

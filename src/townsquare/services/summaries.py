"""Generation backends chosen from the settings, and the summarizer wired to a search engine.

    >>> from townsquare.settings import Settings
    >>> get_llm(Settings.load(environ={}), "extractive").model
    'extractive'
    >>> get_llm(Settings.load(environ={"TOWNSQUARE_LLM": "extractive"})).model
    'extractive'
"""
from __future__ import annotations

from townsquare.llm import DEFAULT_BACKEND, MODEL_BACKEND, Backend, get_backend
from townsquare.search.engine import SearchEngine
from townsquare.settings import Settings
from townsquare.store.base import Store
from townsquare.summarize.summarizer import Summarizer


def get_llm(settings: Settings, backend: str | None = None, **options: object) -> Backend:
    """The generation backend ``backend`` (else ``settings.llm.backend``, else the default) with
    ``options`` (the caller's flags; None means not given) over the settings' options for that
    backend. With no backend named anywhere, a model (``--model``, ``TOWNSQUARE_LLM_MODEL``,
    a GGUF file) means the local model (``llm.MODEL_BACKEND``), else ``llm.DEFAULT_BACKEND``.
    ``trained`` defaults to the checkpoint ``townsquare train`` writes in the home.
    Raises ``llm.BackendError``."""
    name = backend or settings.llm.backend or default_backend(settings, options.get("model"))
    opts = {**settings.llm.options(name), **{k: v for k, v in options.items() if v is not None}}
    if name == "trained" and "model" not in opts and "checkpoint" not in opts:
        opts["checkpoint"] = settings.checkpoint_file
        opts.setdefault("tokenizer", settings.tokenizer_file)
    return get_backend(name, **opts)


def default_backend(settings: Settings, model: object = None) -> str:
    """The backend used when none is named: the local model when a model is given (a flag,
    the settings' model or GGUF file), else ``llm.DEFAULT_BACKEND``.

    >>> default_backend(Settings.load(environ={})), default_backend(Settings.load(environ={}), "m")
    ('extractive', 'local')
    """
    return MODEL_BACKEND if (model or settings.llm.model or settings.llm.gguf) else DEFAULT_BACKEND


def summarizer(store: Store, llm: Backend, engine: SearchEngine) -> Summarizer:
    """A summarizer over ``store`` that verifies with the engine's embedder (when it has one)."""
    return Summarizer(store, llm, embedder=engine.embedder)

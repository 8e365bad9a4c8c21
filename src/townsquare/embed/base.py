"""What every embedder shares: the ``Embedder`` base class, the input cleaning, the token cap.

    >>> clean_text("a\\x00b"), DEFAULT_CACHE_DIR.parts[-2:]
    ('a b', ('.cache', 'townsquare'))

The implementations live in ``townsquare.embed.models`` (``e5-small-q4``, ``minilm-l6-int8``)
and ``townsquare.embed.e5onnx`` (``e5-small-int8``), which both build on this module; what the
search engine and the other packages need of an embedder is the ``townsquare.protocols.Embedder``
protocol, which this class satisfies.
"""
from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_CACHE_DIR", "MAX_TOKENS", "TORCH_HINT", "Embedder", "clean_text",
           "default_threads"]

MAX_TOKENS = 128                  # per text, special tokens and e5's prefix included
TORCH_HINT = "pip install torch==2.13.0"   # the CPU wheel; a bare `pip install torch` may pull CUDA
# Where ONNX exports are cached when the caller names no folder: the user's cache, as
# ``Settings.cache_dir`` defaults to (the CLI and the API pass ``Settings.cache_dir``, which
# ``$TOWNSQUARE_CACHE`` or the config file may move). Exports derive from installed packages, so
# one cache serves every data folder.
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "townsquare"


def default_threads() -> int:
    """CPUs this process may run on (the container's share, not the host's core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:        # not Linux
        return max(1, os.cpu_count() or 1)


def clean_text(text: str) -> str:
    """Make any str safe for the engines: NUL would end a C string early, lone surrogates
    (from bad JSON escapes) cannot be UTF-8 encoded."""
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    if "\x00" in text:
        text = text.replace("\x00", " ")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


class Embedder(abc.ABC):
    """A text embedder. Subclasses set ``name`` and ``dim`` and implement :meth:`_embed`.

    ``passages`` embeds posts (documents) for the index; ``query`` embeds one search query. Both
    return float32 rows of unit L2 norm, so the dot product of a query and a passage is their
    cosine similarity.
    """

    name: str
    dim: int
    batch_size: int
    max_tokens: int = MAX_TOKENS

    @abc.abstractmethod
    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        """Embed one batch of cleaned texts: (len(texts), dim) float32, unit rows."""

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents: (n, dim) float32 with unit rows; n == 0 gives shape (0, dim)."""
        if isinstance(texts, str):
            raise TypeError("passages() takes a sequence of texts; use query() for one string")
        items = [clean_text(t) for t in texts]
        out = np.empty((len(items), self.dim), dtype=np.float32)     # (n, dim)
        for i in range(0, len(items), self.batch_size):
            out[i:i + self.batch_size] = self._embed(items[i:i + self.batch_size], False)
        return out

    def query(self, text: str) -> np.ndarray:
        """Embed one search query: (dim,) float32, unit norm."""
        return self._embed([clean_text(text)], True)[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"

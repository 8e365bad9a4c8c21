"""A toy embedder for search tests: each listed word is one axis, so a post's cosine to a query
is known exactly."""
from __future__ import annotations

import numpy as np


class WordAxes:
    """``axes``: word -> axis (words may share one); ``dim`` is one more than the last axis,
    whose small constant keeps every vector away from zero."""

    def __init__(self, name: str, axes: dict[str, int], bias: float = 1e-6):
        self.name, self.axes, self.bias = name, axes, bias
        self.dim = max(axes.values()) + 2

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in text.lower().split():
            if w in self.axes:
                v[self.axes[w]] += 1.0
        v[-1] += self.bias                 # never the zero vector
        return v / np.linalg.norm(v)

    def passages(self, texts: list[str]) -> np.ndarray:
        return (np.stack([self._vec(t) for t in texts]) if texts
                else np.zeros((0, self.dim), "f4"))

    def query(self, text: str) -> np.ndarray:
        return self._vec(text)

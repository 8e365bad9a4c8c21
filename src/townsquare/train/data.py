"""Token shards on disk and deterministic batches, split by time (validation = the latest posts).

    >>> import tempfile, pathlib
    >>> from townsquare.train.tokenizer import train_tokenizer
    >>> posts = [{"id": str(i), "created_at": i, "text": f"post number {i} about the flood"}
    ...          for i in range(200)]
    >>> tok = train_tokenizer([p["text"] for p in posts], vocab_size=300)
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> meta = write_shards(posts, tok, d, val_share=0.1)
    >>> meta["train_posts"], meta["val_posts"]
    (180, 20)
    >>> x, y = TokenData(d / "train.bin", block_size=8).batch(step=0, batch_size=4)
    >>> tuple(x.shape), bool((x[:, 1:] == y[:, :-1]).all())
    ((4, 8), True)

Posts are tokenized as ``<|post|> text <|endofpost|>`` and concatenated in time order into one
flat array per split (``train.bin``, ``val.bin``: numpy memmaps, uint16 when the vocabulary fits,
else uint32), so a batch is a few slices of a file the OS pages in: memory stays flat whatever
the corpus size. The split is by time, not at random: validation is the latest ``val_share`` of
the posts, which is what the model will face next (the stream moves on; a random split would
leak tomorrow's words into training).

Batches are a pure function of ``(seed, step)``: the starting offsets of step ``s`` come from a
generator seeded with ``(seed, s)``. Resuming at step ``s`` needs no saved data position, and
``DistributedDataParallel`` ranks take disjoint slices of the same global batch
(``rank``/``world``), so N processes see exactly what one process with the same global batch
sees.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch


def write_shards(posts: Iterable[dict], tokenizer, out_dir: str | Path, *,
                 val_share: float = 0.05) -> dict:
    """Tokenize ``posts`` (dicts with ``created_at`` and ``text``; any order) into
    ``train.bin`` / ``val.bin`` + ``meta.json`` + ``tokenizer.json`` under ``out_dir``; returns
    the meta."""
    if not 0.0 < val_share < 1.0:
        raise ValueError(f"val_share must be in (0, 1), got {val_share}")
    rows = sorted(posts, key=lambda p: (int(p["created_at"]), str(p.get("id", ""))))
    if len(rows) < 2:
        raise ValueError(f"need at least 2 posts to split, got {len(rows)}")
    n_val = max(1, int(round(len(rows) * val_share)))
    split = len(rows) - n_val
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtype = np.uint16 if tokenizer.vocab_size <= 65_536 else np.uint32
    meta = {"dtype": np.dtype(dtype).name, "vocab_size": tokenizer.vocab_size,
            "train_posts": split, "val_posts": n_val,
            "val_from_ms": int(rows[split]["created_at"])}
    for name, part in (("train", rows[:split]), ("val", rows[split:])):
        ids: list[int] = []
        for start in range(0, len(part), 4096):
            for seq in tokenizer.encode_batch([p["text"] for p in part[start:start + 4096]]):
                ids.extend(seq)
        arr = np.array(ids, dtype=dtype)
        arr.tofile(out / f"{name}.bin")
        meta[f"{name}_tokens"] = int(arr.size)
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    tokenizer.save(out / "tokenizer.json")     # the shards are meaningless without it
    return meta


class TokenData:
    """Batches of ``block_size`` tokens (inputs, next-token targets) from one shard."""

    def __init__(self, path: str | Path, block_size: int, *, seed: int = 1337):
        path = Path(path)
        meta = json.loads((path.parent / "meta.json").read_text())
        self.tokens = np.memmap(path, dtype=np.dtype(meta["dtype"]), mode="r")
        if len(self.tokens) <= block_size + 1:
            raise ValueError(f"{path}: {len(self.tokens)} tokens, fewer than block_size + 2 "
                             f"({block_size + 2})")
        self.block_size = block_size
        self.seed = seed

    def __len__(self) -> int:
        return len(self.tokens)

    def offsets(self, step: int, batch_size: int) -> np.ndarray:
        g = np.random.default_rng([self.seed, step])
        return g.integers(0, len(self.tokens) - self.block_size - 1, size=batch_size)   # (B,)

    def batch(self, step: int, batch_size: int, *, rank: int = 0, world: int = 1,
              device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Rank ``rank``'s slice of step ``step``'s global batch of ``batch_size`` rows."""
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} is not divisible by world size {world}")
        per = batch_size // world
        offs = self.offsets(step, batch_size)[rank * per:(rank + 1) * per]
        T = self.block_size
        x = torch.from_numpy(np.stack([self.tokens[o:o + T].astype(np.int64) for o in offs]))
        y = torch.from_numpy(np.stack([self.tokens[o + 1:o + 1 + T].astype(np.int64) for o in offs]))
        if device != "cpu":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x, y                                                             # (per, T) each

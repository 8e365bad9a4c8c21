"""Any OpenAI-compatible chat endpoint as a generation backend, through the official ``openai`` SDK.

    >>> b = OpenAIBackend(base_url="http://127.0.0.1:8000/v1", model="smollm2", api_key="k")
    >>> b.info()["model"]
    'smollm2'

vLLM, llama.cpp's ``llama-server``, Ollama (``/v1``), LM Studio and hosted APIs all speak this
protocol, so one class covers them. Everything comes from the constructor; the CLI and the
service fill it from their settings (``TOWNSQUARE_LLM_BASE_URL``, ``TOWNSQUARE_LLM_MODEL``,
``TOWNSQUARE_LLM_API_KEY`` falling back to ``OPENAI_API_KEY``: ``townsquare.settings``). A local
server often needs no key: without one, a placeholder is sent.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

from townsquare.llm.base import (
    Backend,
    BackendError,
    ChatMessage,
    Generation,
    GenerationConfig,
    as_messages,
)


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, *, base_url: str | None = None, model: str | None = None,
                 api_key: str | None = None, timeout_s: float = 60.0, max_retries: int = 1):
        try:
            import openai
        except ImportError as e:                           # pragma: no cover - a dependency
            raise BackendError("the openai backend needs the openai package: "
                               "pip install openai") from e
        self.base_url = base_url
        self._model = model
        if not self.base_url:
            raise BackendError("the openai backend needs a base URL (--base-url or "
                               "TOWNSQUARE_LLM_BASE_URL), e.g. http://127.0.0.1:8080/v1")
        if not self.base_url.startswith(("http://", "https://")):
            raise BackendError(f"base URL must start with http:// or https://, got {self.base_url!r}")
        if not self._model:
            raise BackendError("the openai backend needs a model name (--model or "
                               "TOWNSQUARE_LLM_MODEL)")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        key = api_key or "not-needed"
        self._openai = openai
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout_s,
                                    max_retries=max_retries)

    @property
    def model(self) -> str:
        return self._model

    def _kwargs(self, messages: list[ChatMessage], cfg: GenerationConfig) -> dict:
        kw = {"model": self._model, "messages": [m.to_dict() for m in messages],
              "max_tokens": cfg.max_tokens, "temperature": cfg.temperature, "top_p": cfg.top_p,
              "seed": cfg.seed}
        if cfg.stop:
            kw["stop"] = list(cfg.stop)
        return kw

    def _generate(self, messages: list[ChatMessage], cfg: GenerationConfig) -> Generation:
        try:
            r = self.client.chat.completions.create(**self._kwargs(messages, cfg))
        except self._openai.OpenAIError as e:
            raise BackendError(f"{self.base_url}: {type(e).__name__}: {e}") from e
        if not r.choices:
            raise BackendError(f"{self.base_url}: the response has no choices")
        ch = r.choices[0]
        usage = r.usage
        return Generation(text=ch.message.content or "", model=r.model or self._model,
                          prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                          completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                          finish_reason=ch.finish_reason or "stop")

    def stream(self, messages: Sequence[ChatMessage | dict] | str,
               config: GenerationConfig | None = None) -> Iterator[str]:
        kw = self._kwargs(as_messages(messages), config or GenerationConfig())
        try:
            for chunk in self.client.chat.completions.create(stream=True, **kw):
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except self._openai.OpenAIError as e:
            raise BackendError(f"{self.base_url}: {type(e).__name__}: {e}") from e

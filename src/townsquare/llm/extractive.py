"""The extractive backend: no model at all; answers are the evidence itself.

    >>> b = ExtractiveBackend()
    >>> b.extractive, b.model
    (True, 'extractive')
    >>> b.generate("Summarize.\\n\\nPOSTS:\\n[1] Bridge closed on route 9.\\n[2] Water rising.").text
    'Bridge closed on route 9. [1]'

The summarizer does not call ``generate`` for it: seeing ``extractive = True`` it composes the
summary from the chosen posts' own sentences. ``generate`` exists so that any caller of the
interface (the chat endpoint) gets something sound: the first numbered evidence line of the last
user message, with its citation, or an honest "no evidence" line. It is instant, deterministic and
works offline with nothing installed, so it is also the fallback when a model is unavailable.
"""
from __future__ import annotations

import re

from townsquare.llm.base import Backend, ChatMessage, Generation, GenerationConfig

_EVIDENCE = re.compile(r"^\s*\[(\w+)\]\s*(.+?)\s*$", re.MULTILINE)
NO_EVIDENCE = "No posts were given to answer from."


class ExtractiveBackend(Backend):
    name = "extractive"
    extractive = True

    def __init__(self, *, max_lines: int = 1):
        if max_lines < 1:
            raise ValueError(f"max_lines must be >= 1, got {max_lines}")
        self.max_lines = max_lines

    @property
    def model(self) -> str:
        return "extractive"

    def _generate(self, messages: list[ChatMessage], cfg: GenerationConfig) -> Generation:
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        lines = [f"{text} [{ref}]" for ref, text in _EVIDENCE.findall(last)][: self.max_lines]
        return Generation(text="\n".join(lines) if lines else NO_EVIDENCE, model=self.model)

"""townsquare's own trained model as a generation backend ("compose a post about ...").

    >>> from townsquare.llm.trained import topic_of
    >>> topic_of("Compose a post about the flood in Calgary.")
    'the flood in Calgary'

The checkpoint (``ckpt.pt`` of ``train.trainer``) and its tokenizer (``tokenizer.json`` beside
the token shards, or given) are loaded once. The model was trained on posts, not on chats, so
the backend turns the last user message into the start of a post: the topic after "about" (or
the whole message), after ``<|post|>``; the model continues it until ``<|endofpost|>``. Sampling
is seeded (``GenerationConfig.seed``), greedy at temperature 0.
"""
from __future__ import annotations

import re
from pathlib import Path

from townsquare.llm.base import Backend, BackendError, ChatMessage, Generation, GenerationConfig

_ABOUT = re.compile(r"\babout\s+(.+?)[.?!]*\s*$", re.IGNORECASE | re.DOTALL)


def topic_of(text: str) -> str:
    m = _ABOUT.search(text.strip())
    return (m.group(1) if m else text).strip().rstrip(".?!")


class TrainedBackend(Backend):
    name = "trained"

    def __init__(self, checkpoint: str | Path, tokenizer: str | Path | None = None, *,
                 device: str = "cpu"):
        import torch

        from townsquare.train.model import GPT, GPTConfig
        from townsquare.train.tokenizer import PostTokenizer
        ck_path = Path(checkpoint)
        if not ck_path.is_file():
            raise BackendError(f"no checkpoint at {ck_path} (train one: python -m "
                               f"townsquare.train.trainer DATA_DIR OUT_DIR)")
        ck = torch.load(ck_path, map_location=device, weights_only=False)
        tok_path = Path(tokenizer) if tokenizer else Path(ck["train_config"]["data_dir"]) / "tokenizer.json"
        if not tok_path.is_file():
            raise BackendError(f"no tokenizer at {tok_path}; pass tokenizer=")
        self.tok = PostTokenizer.load(tok_path)
        self.net = GPT(GPTConfig(**ck["model_config"])).to(device).eval()
        self.net.load_state_dict(ck["model"])
        self.device = device
        self._name = f"townsquare-gpt-{ck['step']}"

    @property
    def model(self) -> str:
        return self._name

    def _generate(self, messages: list[ChatMessage], cfg: GenerationConfig) -> Generation:
        import torch
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        start = topic_of(last)
        ids = [self.tok.bos_id, *self.tok.encode(start)]
        g = torch.Generator(device=self.device).manual_seed(cfg.seed)
        x = torch.tensor([ids], dtype=torch.long, device=self.device)           # (1, T)
        out = self.net.generate(x, cfg.max_tokens, temperature=cfg.temperature, top_k=50,
                                stop=self.tok.eos_id, generator=g)
        new = out[0, len(ids):].tolist()
        if self.tok.eos_id in new:
            new = new[:new.index(self.tok.eos_id)]
        text = (start + self.tok.decode(new)).strip()
        return Generation(text=text, model=self._name, prompt_tokens=len(ids),
                          completion_tokens=len(new))

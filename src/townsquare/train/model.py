"""A GPT-style decoder in plain PyTorch: the model townsquare trains on its own posts.

    >>> import torch
    >>> cfg = GPTConfig(vocab_size=300, block_size=32, n_layer=2, n_head=2, n_embd=32)
    >>> m = GPT(cfg)
    >>> x = torch.randint(0, 300, (4, 16))
    >>> logits, loss = m(x, x)
    >>> tuple(logits.shape), loss.item() > 0
    ((4, 16, 300), True)

Issue 7 builds the rest around it (the governed corpus, the trainer with DDP and exact resume,
``townsquare train``); today the model and the tokenizer (``train.tokenizer``) exist, tested.

The architecture is GPT-2's (pre-LayerNorm blocks, GELU MLP of width 4x, learned positions) as
nanoGPT writes it, with:

- attention through ``torch.nn.functional.scaled_dot_product_attention`` (``is_causal=True``),
  which picks the flash or memory-efficient kernel on a GPU;
- the token embedding tied to the output projection (Press & Wolf, 2017): one matrix of
  vocab x n_embd instead of two, a large share of a small model's parameters;
- GPT-2's initialization: normal(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer)
  so the residual stream's variance does not grow with depth;
- ``bias=False`` by default (LayerNorm and Linear): a little faster, no worse (nanoGPT's note).

``estimate_mfu`` is nanoGPT's: FLOPs per token from PaLM's appendix B (6N + 12 L H Q T), against
the peak of the hardware the caller names.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 8192
    block_size: int = 128          # tokens of context; posts are short
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = False

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)   # q, k, v at once
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.n_head, self.n_embd, self.dropout = cfg.n_head, cfg.n_embd, cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)                      # 3 x (B, T, C)
        h = self.n_head
        q = q.view(B, T, h, C // h).transpose(1, 2)                             # (B, h, T, d)
        k = k.view(B, T, h, C // h).transpose(1, 2)                             # (B, h, T, d)
        v = v.view(B, T, h, C // h).transpose(1, 2)                             # (B, h, T, d)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)                      # (B, h, T, d)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                        # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))                 # (B, T, C)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))                                         # (B, T, C)
        return x + self.mlp(self.ln_2(x))                                       # (B, T, C)


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer)),
            ln_f=nn.LayerNorm(cfg.n_embd, bias=cfg.bias),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight                       # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):   # residual projections: GPT-2's scaled init
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters; the position table is left out by default (as in nanoGPT), the tied token
        table is counted once, in the output projection."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens exceeds block_size {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)                                # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)                                            # (B, T, C)
        if targets is None:
            return self.lm_head(x[:, [-1], :]), None                            # (B, 1, V)
        logits = self.lm_head(x)                                                # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1),
                               ignore_index=-1)
        return logits, loss

    def configure_optimizer(self, weight_decay: float, lr: float, betas: tuple[float, float],
                            device_type: str) -> torch.optim.AdamW:
        """AdamW with decay on matrices only (embeddings and weights), not on norms and biases;
        the fused kernel on a GPU."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device_type == "cuda")

    def estimate_mfu(self, tokens_per_s: float, peak_flops: float) -> float:
        """Model FLOPs utilization: achieved training FLOP/s over ``peak_flops`` (PaLM, app. B)."""
        cfg = self.config
        L, H, Q, T = cfg.n_layer, cfg.n_head, cfg.n_embd // cfg.n_head, cfg.block_size
        flops_per_token = 6 * self.num_params() + 12 * L * H * Q * T
        return flops_per_token * tokens_per_s / peak_flops

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
                 top_k: int | None = None, stop: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Extend ``idx`` (B, T) by sampling; greedy when ``temperature`` is 0."""
        for _ in range(max_new_tokens):
            cond = idx[:, -self.config.block_size:]                             # (B, <=block)
            logits, _ = self(cond)
            logits = logits[:, -1, :]                                           # (B, V)
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)                       # (B, 1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("inf")
                probs = F.softmax(logits, dim=-1)                               # (B, V)
                nxt = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat((idx, nxt), dim=1)
            if stop is not None and bool((nxt == stop).all()):
                break
        return idx

"""The training loop: one process or DDP, warmup + cosine, accumulation, clipping, exact resume.

    >>> import dataclasses
    >>> print(dataclasses.replace(TrainConfig(), data_dir="d", out_dir="o").lr)
    0.001

Run (after the token shards exist, ``train.data.write_shards``):

    python -m townsquare.train.trainer DATA_DIR OUT_DIR [--max-iters N] [--max-minutes M]
    torchrun --nproc_per_node 2 -m townsquare.train.trainer DATA_DIR OUT_DIR   # DDP
    torchrun --nproc_per_node 8 -m townsquare.train.trainer DATA_DIR OUT_DIR --parallel fsdp

What a step does: ``grad_accum`` micro-batches (each this rank's slice of the step's global
batch, ``train.data.TokenData``), loss scaled by 1/grad_accum so the gradient is the global
batch's mean; under DDP the gradients are all-reduced (averaged) on the last micro-batch only
(``no_sync`` before), so N ranks compute exactly what one process does with the same global
batch. Then clipping to ``grad_clip``, the learning rate of the schedule (linear warmup, cosine
decay to ``min_lr``), AdamW. bf16 autocast on a GPU; float32 on the CPU (CPU autocast is slower
for these sizes).

Checkpoints (``ckpt.pt``, written atomically every ``ckpt_interval`` steps and at the end) hold
the model, the optimizer, the step, both configs and the torch RNG state; batches depend only
on (seed, step), so a resumed run continues exactly where it stopped: the same losses as an
uninterrupted run (``tests/train/test_trainer.py`` checks it, and DDP against one process).
The log is JSON Lines (``log.jsonl``: step, loss, lr, tokens/s, and eval loss and perplexity
every ``eval_interval``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from townsquare.settings import DistEnv, dist_env
from townsquare.train.data import TokenData
from townsquare.train.model import GPT, GPTConfig


@dataclass
class TrainConfig:
    data_dir: str = ""
    out_dir: str = ""
    batch_size: int = 32            # global, in sequences per step (all ranks, all micro-batches)
    grad_accum: int = 1
    max_iters: int = 2000
    max_minutes: float | None = None
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_interval: int = 200
    eval_iters: int = 20
    ckpt_interval: int = 200
    log_interval: int = 10
    seed: int = 1337
    device: str = "auto"            # auto: cuda when available, else cpu
    compile: bool = False
    parallel: str = "ddp"           # several processes: "ddp" (replicas) or "fsdp" (shards)
    model: GPTConfig = field(default_factory=GPTConfig)

    def __post_init__(self):
        for name in ("batch_size", "grad_accum", "max_iters", "eval_iters", "eval_interval",
                     "ckpt_interval", "log_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by grad_accum "
                             f"{self.grad_accum}")
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"min_lr must be in [0, lr], got {self.min_lr}")
        if self.parallel not in ("ddp", "fsdp"):
            raise ValueError(f"parallel must be ddp or fsdp, got {self.parallel!r}")
        if isinstance(self.model, dict):
            self.model = GPTConfig(**self.model)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``min_lr`` at ``max_iters``."""
    if step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / (cfg.warmup_iters + 1)
    ratio = min(1.0, (step - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)


class Trainer:
    """Train ``cfg.model`` on ``cfg.data_dir``; ``env`` is this process's rank among torchrun's
    (default: what torchrun's environment says, ``settings.dist_env``)."""

    def __init__(self, cfg: TrainConfig, env: DistEnv | None = None):
        self.cfg = cfg
        env = env or dist_env()
        self.rank, self.world = env.rank, env.world_size
        self.distributed = self.world > 1
        self.fsdp = self.distributed and cfg.parallel == "fsdp"
        self.ddp = self.distributed and not self.fsdp
        dev = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        if self.distributed:
            import torch.distributed as dist
            if not dist.is_initialized():
                dist.init_process_group("nccl" if dev == "cuda" else "gloo")
            if dev == "cuda":
                dev = f"cuda:{env.local_rank}"
                torch.cuda.set_device(dev)
        self.device = dev
        if cfg.batch_size % (cfg.grad_accum * self.world):
            raise ValueError(f"batch_size {cfg.batch_size} must divide into grad_accum "
                             f"({cfg.grad_accum}) x world size ({self.world})")
        torch.manual_seed(cfg.seed)
        self.train_data = TokenData(Path(cfg.data_dir) / "train.bin", cfg.model.block_size,
                                    seed=cfg.seed)
        self.val_data = TokenData(Path(cfg.data_dir) / "val.bin", cfg.model.block_size,
                                  seed=cfg.seed + 1)
        self.model = GPT(cfg.model).to(dev)
        self.step = 0
        self.out = Path(cfg.out_dir)
        self.ckpt_path = self.out / "ckpt.pt"
        ck = (torch.load(self.ckpt_path, map_location=dev, weights_only=False)
              if self.ckpt_path.exists() else None)
        if ck is not None:                  # into the whole model, before any sharding
            self.model.load_state_dict(ck["model"])
        if self.fsdp:
            self._shard()
        self.opt = self.model.configure_optimizer(cfg.weight_decay, cfg.lr, cfg.betas,
                                                  "cuda" if dev.startswith("cuda") else "cpu")
        if ck is not None:
            self._load(ck)
        self.net = self.model
        if cfg.compile:
            self.net = torch.compile(self.model)
        if self.ddp:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.net = DDP(self.net, device_ids=[dev] if dev.startswith("cuda") else None)
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if dev.startswith("cuda")
                         else nullcontext())

    def _shard(self) -> None:
        """FSDP (``fully_shard``, FSDP2): each block's parameters, gradients and optimizer state
        are split across the ranks and gathered only while that block runs, so a model that
        does not fit one GPU's memory trains on several. The embeddings and the tied output
        projection form the root unit (a tied pair must live in one unit)."""
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh("cuda" if self.device.startswith("cuda") else "cpu",
                                (self.world,))
        for block in self.model.transformer.h:
            fully_shard(block, mesh=mesh)
        fully_shard(self.model, mesh=mesh)

    # --- checkpoints -------------------------------------------------------------------------------
    def _load(self, ck: dict) -> None:
        if self.fsdp:                       # the full optimizer state, scattered to the shards
            from torch.distributed.checkpoint.state_dict import (StateDictOptions,
                                                                 set_optimizer_state_dict)
            set_optimizer_state_dict(self.model, self.opt, ck["optimizer"],
                                     options=StateDictOptions(full_state_dict=True))
        else:
            self.opt.load_state_dict(ck["optimizer"])
        self.step = ck["step"]
        torch.set_rng_state(ck["rng"])

    def _state(self) -> tuple[dict, dict]:
        """Model and optimizer state as one process would have them (FSDP gathers the shards:
        every rank must call this, rank 0 writes)."""
        if not self.fsdp:
            return self.model.state_dict(), self.opt.state_dict()
        from torch.distributed.checkpoint.state_dict import (StateDictOptions,
                                                             get_model_state_dict,
                                                             get_optimizer_state_dict)
        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return (get_model_state_dict(self.model, options=opts),
                get_optimizer_state_dict(self.model, self.opt, options=opts))

    def save(self) -> None:
        model, opt = self._state()
        if not self.rank:
            self.out.mkdir(parents=True, exist_ok=True)
            tmp = self.ckpt_path.with_suffix(".tmp")
            torch.save({"model": model, "optimizer": opt,
                        "step": self.step, "rng": torch.get_rng_state(),
                        "train_config": asdict(self.cfg), "model_config": asdict(self.cfg.model)},
                       tmp)
            os.replace(tmp, self.ckpt_path)
        if self.distributed:
            # Every rank waits for rank 0's file: a rank that resumes (a new Trainer, or a
            # restart) must read this checkpoint, not the previous one, or the ranks start at
            # different steps and their collectives no longer match (seen: a gloo abort).
            import torch.distributed as dist
            dist.barrier()

    # --- loop ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> float:
        self.model.eval()
        losses = []
        per = max(1, self.cfg.batch_size // self.cfg.grad_accum)
        for i in range(self.cfg.eval_iters):
            x, y = self.val_data.batch(i, per, device=self.device)
            with self.autocast:
                _, loss = self.model(x, y)
            losses.append(loss.item())
        self.model.train()
        return sum(losses) / len(losses)

    def train_step(self) -> float:
        cfg = self.cfg
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, cfg)
        micro = cfg.batch_size // cfg.grad_accum
        total = 0.0
        for k in range(cfg.grad_accum):
            # micro-batch k of step s is the slice of the step's global batch for (k, rank)
            x, y = self.train_data.batch(self.step * cfg.grad_accum + k, micro,
                                         rank=self.rank, world=self.world, device=self.device)
            sync = (not self.distributed) or k == cfg.grad_accum - 1
            if self.fsdp:                # reduce-scatter the gradients on the last micro-batch
                self.model.set_requires_gradient_sync(sync)
            ctx = self.net.no_sync() if (self.ddp and not sync) else nullcontext()
            with ctx, self.autocast:
                _, loss = self.net(x, y)
                (loss / cfg.grad_accum).backward()
            total += loss.item() / cfg.grad_accum
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        if self.distributed:             # report the global mean loss, as one process would
            import torch.distributed as dist
            t = torch.tensor([total], device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.AVG if self.device.startswith("cuda")
                            else dist.ReduceOp.SUM)
            total = t.item() / (1 if self.device.startswith("cuda") else self.world)
        return total

    def run(self, progress=None) -> list[dict]:
        cfg = self.cfg
        log: list[dict] = []
        logf = open(self.out / "log.jsonl", "a") if not self.rank and self._mk() else None
        t0 = time.perf_counter()
        tokens_per_step = cfg.batch_size * cfg.model.block_size
        try:
            while self.step < cfg.max_iters:
                if cfg.max_minutes is not None and time.perf_counter() - t0 > 60 * cfg.max_minutes:
                    break
                ts = time.perf_counter()
                loss = self.train_step()
                rec = {"step": self.step, "loss": round(loss, 6), "lr": lr_at(self.step - 1, cfg),
                       "tokens_per_s": round(tokens_per_step / (time.perf_counter() - ts), 1)}
                if self.step % cfg.eval_interval == 0 or self.step == cfg.max_iters:
                    vl = self.evaluate()
                    rec.update(val_loss=round(vl, 6), val_ppl=round(math.exp(vl), 3))
                log.append(rec)
                if logf and (self.step % cfg.log_interval == 0 or "val_loss" in rec):
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
                if self.step % cfg.ckpt_interval == 0:
                    self.save()
                if progress:
                    progress(rec)
            self.save()
        finally:
            if logf:
                logf.close()
        if not self.rank:
            plot_loss(self.out / "log.jsonl", self.out / "loss.png")
        return log

    def _mk(self) -> bool:
        self.out.mkdir(parents=True, exist_ok=True)
        return True


def plot_loss(log_path: Path, png_path: Path) -> bool:
    """The loss curve (training loss per logged step, validation loss where measured) as a PNG;
    False when matplotlib is missing or there is nothing to plot."""
    try:
        import matplotlib
        matplotlib.use("Agg")                    # no screen needed
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if not log_path.exists():
        return False
    recs = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
    if not recs:
        return False
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([r["step"] for r in recs], [r["loss"] for r in recs], label="train loss", lw=1)
    val = [r for r in recs if "val_loss" in r]
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train townsquare's GPT on token shards.")
    ap.add_argument("data_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--max-iters", type=int, default=TrainConfig.max_iters)
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--grad-accum", type=int, default=TrainConfig.grad_accum)
    ap.add_argument("--parallel", choices=("ddp", "fsdp"), default=None,
                    help="several processes: replicate (ddp, default) or shard (fsdp)")
    ap.add_argument("--config", type=Path, help="JSON file with TrainConfig fields (model: {...})")
    args = ap.parse_args(argv)
    extra = json.loads(args.config.read_text()) if args.config else {}
    cfg = TrainConfig(**{**extra, "data_dir": args.data_dir, "out_dir": args.out_dir,
                         "max_iters": args.max_iters, "max_minutes": args.max_minutes,
                         "batch_size": args.batch_size, "grad_accum": args.grad_accum,
                         **({"parallel": args.parallel} if args.parallel else {})})
    meta = json.loads((Path(args.data_dir) / "meta.json").read_text())
    if cfg.model.vocab_size < meta["vocab_size"]:
        cfg.model.vocab_size = meta["vocab_size"]
    tr = Trainer(cfg)
    if tr.rank == 0:
        print(f"model: {cfg.model}\n{tr.model.num_params():,} parameters; resuming at step "
              f"{tr.step}" if tr.step else f"model: {cfg.model}", file=sys.stderr)
    tr.run(progress=(lambda r: print(json.dumps(r), file=sys.stderr))
           if tr.rank == 0 else None)
    if tr.distributed:
        import torch.distributed as dist
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

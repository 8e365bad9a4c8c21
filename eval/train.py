"""Train townsquare's GPT on the shared tweet corpus for at most 20 minutes on this machine, and
compare its validation perplexity with a bigram baseline on the same held-out latest posts.

What it does (every step the product's own code):

1. **Corpus**: ``train.corpus.CorpusBuilder`` over the store ``eval/search.py`` builds (all
   184,551 posts of ``../shared/data``): opt-outs, deletions and PII removed, exact and near
   duplicates dropped, quality filtered; manifest kept.
2. **Tokenizer**: byte-level BPE (``train.tokenizer``, ``--vocab`` tokens) trained on the
   training part only (the posts before the validation cut), so validation words are not in
   the merges by construction.
3. **Shards**: ``train.data.write_shards``; validation = the latest 5% of the posts by time.
4. **Baseline**: an interpolated bigram model over the same tokens, P(b|a) = l * c(a,b)/c(a) +
   (1 - l) * P(b), P(b) add-one smoothed unigrams, l chosen on the last 5% of the training
   tokens: the strongest simple count model, in the same run.
5. **Model**: ``train.model.GPT`` trained by ``train.trainer.Trainer`` (one process, CPU), for
   ``--minutes`` (default 18, so the whole script stays within 20 minutes of training); the
   cosine schedule's length is set from a measured throughput probe.
6. **Evaluation**: both models' perplexity on every token of the validation shard (contiguous
   windows, not samples): exp of the mean next-token cross-entropy.

Run
---
    python eval/search.py           # once: builds the store
    python eval/train.py --write-results

Results: ``eval/results/train.md``, ``train.json`` and ``train_loss.png`` (the loss curve).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as ev  # noqa: E402


PEAK_FLOPS = 2 * 3.0e9 * 64


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bigram_perplexity(train: np.ndarray, val: np.ndarray, vocab: int) -> tuple[float, float]:
    """Interpolated bigram perplexity on ``val``; returns (perplexity, lambda)."""
    cut = int(len(train) * 0.95)
    fit, held = train[:cut].astype(np.int64), train[cut:].astype(np.int64)

    def model(tokens):
        uni = np.bincount(tokens, minlength=vocab).astype(np.float64) + 1.0
        uni /= uni.sum()
        pairs = tokens[:-1] * vocab + tokens[1:]
        keys, counts = np.unique(pairs, return_counts=True)
        ctx = np.bincount(tokens[:-1], minlength=vocab).astype(np.float64)
        return uni, keys, counts, ctx

    def nll(m, tokens, lam):
        uni, keys, counts, ctx = m
        pairs = tokens[:-1] * vocab + tokens[1:]
        idx = np.searchsorted(keys, pairs)
        idx = np.minimum(idx, len(keys) - 1)
        c_ab = np.where(keys[idx] == pairs, counts[idx], 0).astype(np.float64)
        c_a = ctx[tokens[:-1]]
        p_bi = np.divide(c_ab, c_a, out=np.zeros_like(c_ab), where=c_a > 0)
        p = lam * p_bi + (1 - lam) * uni[tokens[1:]]
        return float(-np.log(p).mean())

    m = model(fit)
    lam = min((0.3, 0.5, 0.7, 0.8, 0.9, 0.95), key=lambda lam_: nll(m, held, lam_))
    full = model(train.astype(np.int64))
    return math.exp(nll(full, val.astype(np.int64), lam)), lam


@torch.no_grad()
def model_perplexity(model, val: np.ndarray, block: int, batch: int = 64) -> float:
    """exp(mean cross-entropy) over every token of ``val`` in contiguous windows."""
    model.eval()
    n = (len(val) - 1) // block
    total, count = 0.0, 0
    for s in range(0, n, batch):
        rows = range(s, min(n, s + batch))
        x = torch.from_numpy(np.stack([val[r * block:(r + 1) * block] for r in rows]).astype(np.int64))
        y = torch.from_numpy(np.stack([val[r * block + 1:(r + 1) * block + 1] for r in rows]).astype(np.int64))
        logits, _ = model(x, y)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1),
                                                 reduction="sum")
        total += loss.item()
        count += y.numel()
    return math.exp(total / count)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ev.WORK)
    ap.add_argument("--minutes", type=float, default=18.0)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    from townsquare.store import open_store
    from townsquare.train.corpus import CorpusBuilder
    from townsquare.train.data import write_shards
    from townsquare.train.model import GPTConfig
    from townsquare.train.tokenizer import train_tokenizer
    from townsquare.train.trainer import Trainer, TrainConfig

    torch.set_num_threads(2)
    store = open_store(args.work / "home")
    root = args.work / "train"
    if root.exists():
        shutil.rmtree(root)
    t = time.perf_counter()
    manifest = CorpusBuilder(store).run(root / "corpus")
    m = manifest.to_dict()
    log(f"corpus: {json.dumps(m.get('counts', {}))} in {time.perf_counter() - t:.0f} s")
    posts = [json.loads(x) for x in (root / "corpus" / "corpus.jsonl").read_text().splitlines()]
    posts.sort(key=lambda p: (int(p["created_at"]), p["id"]))
    n_val = max(1, int(round(len(posts) * 0.05)))
    t = time.perf_counter()
    tok = train_tokenizer([p["text"] for p in posts[:-n_val]], vocab_size=args.vocab)
    meta = write_shards(posts, tok, root / "data", val_share=0.05)
    log(f"tokenizer + shards in {time.perf_counter() - t:.0f} s: {meta}")
    dtype = np.dtype(meta["dtype"])
    train_tokens = np.fromfile(root / "data" / "train.bin", dtype=dtype)
    val_tokens = np.fromfile(root / "data" / "val.bin", dtype=dtype)
    bigram_ppl, lam = bigram_perplexity(train_tokens, val_tokens, tok.vocab_size)
    log(f"bigram baseline: perplexity {bigram_ppl:.1f} (lambda {lam})")

    model_cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=4, n_head=4,
                          n_embd=256, dropout=0.0)
    base = dict(data_dir=str(root / "data"), batch_size=64, grad_accum=1, lr=2e-3,
                min_lr=2e-4, warmup_iters=100, eval_interval=250, eval_iters=20,
                ckpt_interval=500, log_interval=10, model=model_cfg)
    probe = Trainer(TrainConfig(**base, out_dir=str(root / "probe"), max_iters=15))
    t = time.perf_counter()
    probe.run()
    per_step = (time.perf_counter() - t) / 15
    max_iters = max(200, int(args.minutes * 60 / per_step * 0.95))
    log(f"probe: {per_step:.3f} s/step -> schedule of {max_iters} steps")
    tr = Trainer(TrainConfig(**base, out_dir=str(root / "run"), max_iters=max_iters,
                             max_minutes=args.minutes))
    t = time.perf_counter()
    run_log = tr.run(progress=lambda r: log(json.dumps(r)) if r["step"] % 200 == 0 else None)
    secs = time.perf_counter() - t
    tokens = tr.step * 64 * 64
    ppl = model_perplexity(tr.model, val_tokens, 64)
    # nominal fp32 peak of this machine: 2 cores x ~3 GHz x 64 FLOP/cycle (two AVX-512 FMA
    # units x 16 lanes x 2); an estimate, so the MFU is too (bench/train.py measures it properly)
    peak = PEAK_FLOPS
    res = {"corpus": m.get("counts", {}), "posts_train": meta["train_posts"],
           "posts_val": meta["val_posts"], "tokens_train": meta["train_tokens"],
           "tokens_val": meta["val_tokens"], "vocab": tok.vocab_size,
           "model": model_cfg.to_dict(), "params": tr.model.num_params(),
           "steps": tr.step, "train_seconds": round(secs, 1),
           "tokens_per_s": round(tokens / secs, 1),
           "mfu_vs_nominal_cpu_peak": round(tr.model.estimate_mfu(tokens / secs, peak), 4),
           "val_perplexity": round(ppl, 2), "bigram_val_perplexity": round(bigram_ppl, 2),
           "bigram_lambda": lam, "final_train_loss": run_log[-1]["loss"] if run_log else None}
    meta_out = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "command": "python eval/train.py --write-results"}
    text = render(res, meta_out)
    print(text)
    if args.write_results:
        ev.RESULTS.mkdir(parents=True, exist_ok=True)
        (ev.RESULTS / "train.json").write_text(json.dumps({**meta_out, **res}, indent=2) + "\n")
        (ev.RESULTS / "train.md").write_text("# Training on the posts\n\nCommand: `python "
                                             "eval/train.py --write-results` (see its "
                                             "docstring).\n\n" + text + "\n")
        if (root / "run" / "loss.png").exists():
            shutil.copy(root / "run" / "loss.png", ev.RESULTS / "train_loss.png")
    return 0


def render(r: dict, meta: dict) -> str:
    better = r["val_perplexity"] < r["bigram_val_perplexity"]
    return "\n".join([
        f"{meta['date']}: corpus {r['posts_train']:,} training posts ({r['tokens_train']:,} "
        f"tokens), {r['posts_val']:,} latest posts held out ({r['tokens_val']:,} tokens); "
        f"byte-level BPE, {r['vocab']:,} tokens.", "",
        "| model | validation perplexity |", "|---|---:|",
        f"| interpolated bigram (baseline, lambda {r['bigram_lambda']}) | {r['bigram_val_perplexity']:,.2f} |",
        f"| townsquare GPT ({r['params']:,} parameters, {r['steps']:,} steps, "
        f"{r['train_seconds'] / 60:.1f} min) | {r['val_perplexity']:,.2f} |", "",
        f"- GPT vs bigram: {r['val_perplexity'] / r['bigram_val_perplexity']:.2f}x the baseline's "
        f"perplexity ({'below' if better else 'NOT below'} it).",
        f"- Training throughput: {r['tokens_per_s']:,.0f} tokens/s on 2 CPU cores; MFU "
        f"{r['mfu_vs_nominal_cpu_peak']:.1%} of a nominal {PEAK_FLOPS / 1e9:.0f} GFLOP/s fp32 peak "
        f"(2 cores x ~3 GHz x 64 FLOP/cycle).",
        f"- Corpus filters: {r['corpus']}.",
        "- Loss curve: `eval/results/train_loss.png`.",
    ])


if __name__ == "__main__":
    sys.exit(main())

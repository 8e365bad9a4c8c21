"""Training throughput: townsquare's Trainer against a plain nanoGPT-style loop, same model, same
batch, same machine, in one run; tokens/s and MFU.

What it measures
----------------
Both sides train the same ``train.model.GPT`` (``--preset``: ``cpu`` = the 5.2M-parameter model of
``eval/train.py``; ``gpu`` = a 124M GPT-2-small shape, block 1024) on the same token shard
(random tokens written to a temporary folder: throughput does not depend on the text), with the
same global batch, AdamW settings and gradient clipping:

``townsquare``  ``train.trainer.Trainer.train_step``: stateless (seed, step) batches from the
                memmap, schedule, accumulation, clipping, bf16 autocast and ``torch.compile`` on
                a GPU when asked.
``reference``   the loop nanoGPT's ``train.py`` runs, written out here: random offsets with
                ``torch.randint``, slices of the memmap, forward, backward, clip, step.

Each side runs ``--warmup`` steps, then ``--steps`` timed steps; the two alternate for
``--rounds`` rounds and the best round of each is reported (the machine is shared), with the
ratio townsquare / reference (target >= 1.0). MFU = model FLOPs per token (PaLM appendix B, as
nanoGPT's ``estimate_mfu``) x tokens/s / peak, the peak being ``--peak-flops`` (default: a nominal
384 GFLOP/s fp32 for this 2-core CPU; 989 TFLOP/s dense bf16 for an H200).

Run
---
    python bench/train.py --write-results                      # CPU, this machine
    python bench/train.py --preset gpu --device cuda --compile # the prepared GPU run (H200)

Results: ``bench/results/train.json`` and ``bench/results/train.md`` (CPU); the GPU run writes
``train_gpu.*`` when ``--write-results`` is given.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PRESETS = {
    "cpu": dict(model=dict(vocab_size=8192, block_size=64, n_layer=4, n_head=4, n_embd=256),
                batch_size=64, peak=2 * 3.0e9 * 64),
    "gpu": dict(model=dict(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_embd=768),
                batch_size=32, peak=989e12),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def reference_loop(model, tokens: np.ndarray, block: int, batch: int, steps: int, device: str,
                   autocast, opt) -> float:
    """nanoGPT's loop; returns seconds for ``steps`` steps."""
    def get_batch():
        ix = torch.randint(len(tokens) - block - 1, (batch,))
        x = torch.stack([torch.from_numpy(tokens[i:i + block].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(tokens[i + 1:i + 1 + block].astype(np.int64)) for i in ix])
        return x.to(device), y.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        x, y = get_batch()
        with autocast:
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    loss.item()
    sync()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peak-flops", type=float, default=None)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    from townsquare.train.model import GPT, GPTConfig
    from townsquare.train.trainer import TrainConfig, Trainer

    preset = PRESETS[args.preset]
    peak = args.peak_flops or preset["peak"]
    mcfg = GPTConfig(**preset["model"])
    B, T = preset["batch_size"], mcfg.block_size
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rng = np.random.default_rng(0)
        tokens = rng.integers(0, mcfg.vocab_size, size=max(2_000_000, 50 * B * T), dtype=np.uint16)
        for name in ("train", "val"):
            tokens.tofile(d / f"{name}.bin")
        (d / "meta.json").write_text(json.dumps({"dtype": "uint16", "vocab_size": mcfg.vocab_size}))
        cfg = TrainConfig(data_dir=str(d), out_dir=str(d / "out"), batch_size=B, grad_accum=1,
                          max_iters=10**9, warmup_iters=10, device=args.device,
                          compile=args.compile, model=replace(mcfg))
        ours = Trainer(cfg)
        torch.manual_seed(0)
        ref_model = GPT(replace(mcfg)).to(args.device)
        ref_net = torch.compile(ref_model) if args.compile else ref_model
        ref_opt = ref_model.configure_optimizer(0.1, 1e-3, (0.9, 0.95),
                                                "cuda" if args.device.startswith("cuda") else "cpu")
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if args.device.startswith("cuda")
                    else nullcontext())
        mm = np.memmap(d / "train.bin", dtype=np.uint16, mode="r")
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        for _ in range(args.warmup):
            ours.train_step()
        reference_loop(ref_net, mm, T, B, args.warmup, args.device, autocast, ref_opt)
        ours_tps, ref_tps = [], []
        for r in range(args.rounds):
            sync()
            t = time.perf_counter()
            for _ in range(args.steps):
                ours.train_step()
            sync()
            ours_tps.append(args.steps * B * T / (time.perf_counter() - t))
            secs = reference_loop(ref_net, mm, T, B, args.steps, args.device, autocast, ref_opt)
            ref_tps.append(args.steps * B * T / secs)
            log(f"round {r + 1}: townsquare {ours_tps[-1]:,.0f} tokens/s, reference "
                f"{ref_tps[-1]:,.0f}")
        n_params = ours.model.num_params()
        best_o, best_r = max(ours_tps), max(ref_tps)
        res = {"preset": args.preset, "device": args.device, "compile": args.compile,
               "model": mcfg.to_dict(), "params": n_params, "batch_size": B,
               "tokens_per_step": B * T, "peak_flops": peak,
               "townsquare_tokens_per_s": round(best_o, 1), "reference_tokens_per_s": round(best_r, 1),
               "ratio": round(best_o / best_r, 3),
               "townsquare_mfu": round(ours.model.estimate_mfu(best_o, peak), 4),
               "reference_mfu": round(ours.model.estimate_mfu(best_r, peak), 4),
               "rounds": {"townsquare": [round(x, 1) for x in ours_tps],
                          "reference": [round(x, 1) for x in ref_tps]}}
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                       f"{torch.get_num_threads()} threads"}
    text = render(res, meta)
    print(text)
    if args.write_results:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = "train" if args.preset == "cpu" else "train_gpu"
        (RESULTS / f"{stem}.json").write_text(json.dumps({**meta, **res}, indent=2) + "\n")
        (RESULTS / f"{stem}.md").write_text(
            "# Training throughput\n\nCommand: `python bench/train.py"
            + ("" if args.preset == "cpu" else " --preset gpu --device cuda --compile")
            + " --write-results` (see its docstring).\n\n" + text + "\n")
    return 0


def render(r: dict, meta: dict) -> str:
    return "\n".join([
        f"{meta['date']}, {meta['machine']}; preset {r['preset']} ({r['params']:,} parameters, "
        f"{r['tokens_per_step']:,} tokens per step), device {r['device']}"
        f"{', torch.compile' if r['compile'] else ''}.", "",
        "| loop | tokens/s (best round) | MFU |", "|---|---:|---:|",
        f"| townsquare Trainer | {r['townsquare_tokens_per_s']:,.0f} | {r['townsquare_mfu']:.1%} |",
        f"| nanoGPT-style reference | {r['reference_tokens_per_s']:,.0f} | {r['reference_mfu']:.1%} |",
        "",
        f"- townsquare / reference: {r['ratio']}x (target >= 1.0: "
        f"{'met' if r['ratio'] >= 1.0 else 'NOT met'}).",
        f"- MFU against a peak of {r['peak_flops'] / 1e9:,.0f} GFLOP/s"
        + (" (nominal: 2 cores x ~3 GHz x 64 fp32 FLOP/cycle)." if r["device"] == "cpu" else "."),
        f"- Rounds (tokens/s): townsquare {r['rounds']['townsquare']}, reference "
        f"{r['rounds']['reference']}.",
    ])


if __name__ == "__main__":
    sys.exit(main())

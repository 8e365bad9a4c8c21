from __future__ import annotations

import dataclasses
import json
import os
import socket

import pytest
import torch

from townsquare.train.data import TokenData, write_shards
from townsquare.train.model import GPTConfig
from townsquare.train.tokenizer import train_tokenizer
from townsquare.train.trainer import TrainConfig, Trainer, lr_at

MODEL = GPTConfig(vocab_size=300, block_size=16, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    words = ["flood", "bridge", "river", "rescue", "storm", "power", "school", "road", "help"]
    posts = [{"id": str(i), "created_at": i,
              "text": " ".join(words[(i * k) % len(words)] for k in range(1, 9))} for i in range(400)]
    tok = train_tokenizer([p["text"] for p in posts], vocab_size=300)
    write_shards(posts, tok, d, val_share=0.1)
    return d


def _cfg(shards, out, **kw):
    base = dict(data_dir=str(shards), out_dir=str(out), batch_size=8, grad_accum=2, max_iters=6,
                lr=3e-3, min_lr=3e-4, warmup_iters=2, eval_interval=3, eval_iters=2,
                ckpt_interval=3, log_interval=1, model=dataclasses.replace(MODEL))
    base.update(kw)
    return TrainConfig(**base)


def test_training_lowers_the_loss_and_logs(shards, tmp_path):
    log = Trainer(_cfg(shards, tmp_path, max_iters=40, eval_interval=40)).run()
    assert log[-1]["loss"] < 0.7 * log[0]["loss"]
    assert "val_ppl" in log[-1] and log[-1]["val_ppl"] > 1
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 40 and (tmp_path / "ckpt.pt").exists()
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(shards, tmp_path):
    straight = Trainer(_cfg(shards, tmp_path / "a")).run()
    first = Trainer(_cfg(shards, tmp_path / "b", max_iters=3)).run()
    resumed = Trainer(_cfg(shards, tmp_path / "b"))                 # picks up ckpt.pt at step 3
    assert resumed.step == 3
    rest = resumed.run()
    assert [r["loss"] for r in first + rest] == pytest.approx([r["loss"] for r in straight], abs=1e-6)
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def _ddp_worker(rank, world, port, cfg_dict, out):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    cfg = TrainConfig(**cfg_dict)
    tr = Trainer(cfg)
    log = tr.run()
    if rank == 0:
        (out / "losses.json").write_text(json.dumps([r["loss"] for r in log]))
    import torch.distributed as dist
    dist.destroy_process_group()


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_cpu_processes_match_one_process(shards, tmp_path, parallel):
    """DDP (replicas) and FSDP (shards) on 2 processes with gloo: the same losses and the same
    final parameters as one process with the same global batch."""
    torch.set_num_threads(1)
    one = Trainer(_cfg(shards, tmp_path / "one")).run()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = dataclasses.replace(_cfg(shards, tmp_path / "two"), parallel=parallel)
    cfg_dict = {**dataclasses.asdict(cfg), "model": dataclasses.asdict(cfg.model)}
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, cfg_dict, tmp_path), nprocs=2)
    two = json.loads((tmp_path / "losses.json").read_text())
    assert two == pytest.approx([r["loss"] for r in one], abs=1e-5)
    a = torch.load(tmp_path / "one" / "ckpt.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "two" / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_schedule_warms_up_then_decays_to_min_lr():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup_iters=10, max_iters=110)
    assert lr_at(0, cfg) < lr_at(9, cfg) < 1.0
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(110, cfg) == pytest.approx(0.1) and lr_at(500, cfg) == pytest.approx(0.1)


def test_batches_are_a_function_of_the_step_and_ranks_split_them(shards):
    d = TokenData(shards / "train.bin", 16)
    x, _ = d.batch(5, 8)
    x0, _ = d.batch(5, 8, rank=0, world=2)
    x1, _ = d.batch(5, 8, rank=1, world=2)
    assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(d.batch(5, 8)[0], x)
    with pytest.raises(ValueError, match="not divisible by world size 3"):
        d.batch(0, 8, rank=0, world=3)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="grad_accum"):
        TrainConfig(batch_size=8, grad_accum=3)
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=1e-3, min_lr=1e-2)


def test_a_trained_checkpoint_serves_as_a_generation_backend(shards, tmp_path):
    from townsquare.llm import get_backend
    from townsquare.llm.base import BackendError, GenerationConfig
    Trainer(_cfg(shards, tmp_path, max_iters=30)).run()
    assert (shards / "tokenizer.json").exists()             # saved with the shards
    b = get_backend("trained", model=str(tmp_path / "ckpt.pt"))
    g1 = b.generate("Compose a post about flood", GenerationConfig(max_tokens=12, seed=1))
    g2 = b.generate("Compose a post about flood", GenerationConfig(max_tokens=12, seed=1))
    assert g1.text.startswith("flood") and g1.text == g2.text and g1.model.startswith("townsquare-gpt-")
    assert 0 < g1.completion_tokens <= 12
    with pytest.raises(BackendError, match="no checkpoint"):
        get_backend("trained", model=str(tmp_path / "missing.pt"))


def _fsdp_resume_worker(rank, world, port, cfg_dict, out):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as dist
    half = {**cfg_dict, "max_iters": cfg_dict["max_iters"] // 2}
    Trainer(TrainConfig(**half)).run()                      # stops halfway, checkpointed
    log = Trainer(TrainConfig(**cfg_dict)).run()             # resumes from the checkpoint
    if rank == 0:
        (out / "resumed.json").write_text(json.dumps([r["loss"] for r in log]))
    dist.destroy_process_group()


def test_fsdp_resume_continues_the_same_curve(shards, tmp_path):
    torch.set_num_threads(1)
    full = Trainer(_cfg(shards, tmp_path / "one")).run()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = dataclasses.replace(_cfg(shards, tmp_path / "fsdp"), parallel="fsdp")
    cfg_dict = {**dataclasses.asdict(cfg), "model": dataclasses.asdict(cfg.model)}
    torch.multiprocessing.spawn(_fsdp_resume_worker, args=(2, port, cfg_dict, tmp_path), nprocs=2)
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    second_half = [r["loss"] for r in full][len(full) - len(resumed):]
    assert resumed == pytest.approx(second_half, abs=1e-5)


def test_parallel_must_be_ddp_or_fsdp():
    with pytest.raises(ValueError, match="ddp or fsdp"):
        TrainConfig(parallel="zero3")

from __future__ import annotations

import pytest
import torch

from townsquare.train.model import GPT, GPTConfig

TINY = dict(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    m = GPT(GPTConfig(**TINY))
    x = torch.randint(0, 64, (8, 16))
    y = torch.roll(x, -1, dims=1)
    opt = m.configure_optimizer(0.1, 3e-3, (0.9, 0.95), "cpu")
    _, first = m(x, y)
    for _ in range(30):
        _, loss = m(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first.item()
    assert abs(first.item() - torch.log(torch.tensor(64.0)).item()) < 0.5   # starts near uniform


def test_embedding_is_tied_to_the_output_and_counted_once():
    m = GPT(GPTConfig(**TINY))
    assert m.transformer.wte.weight.data_ptr() == m.lm_head.weight.data_ptr()
    total = sum(p.numel() for p in m.parameters())
    assert m.num_params(non_embedding=False) == total
    assert m.num_params() == total - 16 * 32


def test_attention_is_causal():
    torch.manual_seed(0)
    m = GPT(GPTConfig(**TINY)).eval()
    x = torch.randint(0, 64, (1, 10))
    y = x.clone()
    y[0, 7:] = (y[0, 7:] + 1) % 64                          # change only the future
    lx, _ = m(x, x)
    ly, _ = m(y, y)
    assert torch.allclose(lx[0, :7], ly[0, :7], atol=1e-6)
    assert not torch.allclose(lx[0, 7:], ly[0, 7:])


def test_generation_is_greedy_at_zero_temperature_and_seeded_otherwise():
    m = GPT(GPTConfig(**TINY)).eval()
    start = torch.zeros((1, 1), dtype=torch.long)
    a = m.generate(start, 8, temperature=0)
    assert a.shape == (1, 9) and torch.equal(a, m.generate(start, 8, temperature=0))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(m.generate(start, 8, temperature=1.0, top_k=5, generator=g1),
                       m.generate(start, 8, temperature=1.0, top_k=5, generator=g2))


def test_mfu_follows_the_palm_formula():
    m = GPT(GPTConfig(**TINY))
    per_token = 6 * m.num_params() + 12 * 2 * 2 * 16 * 16
    assert m.estimate_mfu(1000.0, per_token * 1000.0) == pytest.approx(1.0)


def test_bad_configs_and_long_inputs_are_rejected():
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(n_embd=30, n_head=4)
    m = GPT(GPTConfig(**TINY))
    with pytest.raises(ValueError, match="exceeds block_size 16"):
        m(torch.zeros((1, 17), dtype=torch.long))

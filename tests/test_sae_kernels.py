"""Sparse TopK autograd and the native primitives against dense brute force (float64 where it matters)."""

from __future__ import annotations

import pytest
import torch

from monosemantic.sae.kernels import sparse_decode, topk_encode

pytestmark = pytest.mark.usefixtures("one_thread")


def _dense_loss(x, b_dec, W_enc, b_enc, W_dec, k, dead, k_aux, alpha):
    pre = (x - b_dec) @ W_enc + b_enc
    a = torch.relu(pre)
    v, i = a.topk(k, dim=1)
    f = torch.zeros_like(a).scatter(1, i, v)
    x_hat = f @ W_dec + b_dec
    loss = ((x - x_hat) ** 2).sum(-1).mean()
    if dead is not None:
        e = (x - x_hat).detach()
        z = torch.where(dead[None], a, torch.full_like(a, -torch.inf))
        av, ai = z.topk(k_aux, dim=1)
        fa = torch.zeros_like(a).scatter(1, ai, av)
        loss = loss + alpha * ((e - fa @ W_dec) ** 2).sum(-1).mean()
    return loss


def _sparse_loss(x, b_dec, W_enc, b_enc, W_dec, k, dead, k_aux, alpha, bf16=False):
    v, i, av, ai = topk_encode(x, b_dec, W_enc, b_enc, k, dead_mask=dead, k_aux=k_aux, bf16=bf16)
    x_hat = sparse_decode(i, v, W_dec) + b_dec
    loss = ((x - x_hat) ** 2).sum(-1).mean()
    if dead is not None:
        e = (x - x_hat).detach()
        loss = loss + alpha * ((e - sparse_decode(ai, av, W_dec)) ** 2).sum(-1).mean()
    return loss


def _params(d, F, dtype, seed=0, bias_shift=0.0):
    g = torch.Generator().manual_seed(seed)
    ps = [
        torch.randn(d, generator=g, dtype=dtype) * 0.1,
        torch.randn(d, F, generator=g, dtype=dtype),
        torch.randn(F, generator=g, dtype=dtype) * 0.5 + bias_shift,
        torch.randn(F, d, generator=g, dtype=dtype),
    ]
    return [p.requires_grad_() for p in ps]


@pytest.mark.parametrize("with_aux", [False, True])
@pytest.mark.parametrize("bias_shift", [0.0, -3.0])  # -3: most rows keep fewer than k positive values
def test_sparse_grads_equal_dense_autograd_float64(with_aux, bias_shift):
    d, F, k, B = 12, 40, 5, 30
    x = torch.randn(B, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ps = _params(d, F, torch.float64, bias_shift=bias_shift)
    dead = (torch.arange(F) % 3 == 0) if with_aux else None
    args = (k, dead, 4, 0.25)
    ls, ld = _sparse_loss(x, *ps, *args), _dense_loss(x, *ps, *args)
    assert float(ls.detach()) == pytest.approx(float(ld.detach()), rel=1e-12)
    for gs, gd in zip(torch.autograd.grad(ls, ps), torch.autograd.grad(ld, ps), strict=True):
        torch.testing.assert_close(gs, gd, rtol=1e-10, atol=1e-12)
    if bias_shift:
        v, *_ = topk_encode(x, *ps[:3], k)
        assert bool((v == 0).any()), "the test should cover rows whose kept values include zeros"


def test_native_float32_matches_float64_reference():
    d, F, k, B = 24, 96, 6, 50
    x64 = torch.randn(B, d, dtype=torch.float64)
    ps64 = _params(d, F, torch.float64, seed=3)
    ps32 = [p.detach().float().requires_grad_() for p in ps64]
    dead = torch.arange(F) % 4 == 1
    g64 = torch.autograd.grad(_dense_loss(x64, *ps64, k, dead, 8, 0.3), ps64)
    g32 = torch.autograd.grad(_sparse_loss(x64.float(), *ps32, k, dead, 8, 0.3), ps32)
    for a, b in zip(g32, g64, strict=True):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4)


def test_bf16_selection_keeps_exact_float32_values():
    d, F, k, B = 32, 128, 8, 64
    x = torch.randn(B, d)
    b_dec, W_enc, b_enc, _ = (p.detach() for p in _params(d, F, torch.float32, seed=5))
    v, i, _, _ = topk_encode(x, b_dec, W_enc, b_enc, k, bf16=True)
    exact = ((x - b_dec) @ W_enc + b_enc).gather(1, i).clamp_min(0)
    torch.testing.assert_close(v, exact, rtol=1e-5, atol=1e-5)

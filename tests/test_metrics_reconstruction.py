"""Reconstruction metrics against direct formulas, and CE recovered on a tiny random Llama."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monosemantic.errors import UserError
from monosemantic.metrics import (
    ce_recovered,
    cosine_similarity,
    dead_fraction,
    dense_fraction,
    explained_variance,
    fvu,
    l0,
    mse,
)


def pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(50, 6)) * [1, 2, 3, 0.5, 1, 4] + 3).astype(np.float32)
    return x, (x + rng.normal(size=x.shape) * 0.3).astype(np.float32)


def test_tensor_metrics_match_formulas() -> None:
    x, xh = pair()
    x64, xh64 = x.astype(np.float64), xh.astype(np.float64)
    assert mse(torch.from_numpy(x), torch.from_numpy(xh)) == pytest.approx(np.mean((x64 - xh64) ** 2), rel=1e-12)
    want_fvu = np.var(x64 - xh64, axis=0).sum() / np.var(x64, axis=0).sum()
    assert fvu(x, xh) == pytest.approx(want_fvu, rel=1e-12)
    assert explained_variance(x, xh) == pytest.approx(1 - want_fvu, rel=1e-12)
    cos = np.sum(x64 * xh64, 1) / np.linalg.norm(x64, axis=1) / np.linalg.norm(xh64, axis=1)
    assert cosine_similarity(x, xh) == pytest.approx(cos.mean(), rel=1e-12)
    assert cosine_similarity(x, xh) == pytest.approx(F.cosine_similarity(torch.tensor(x64), torch.tensor(xh64)).mean())
    assert fvu(x, x) == 0.0


def test_sparsity_metrics() -> None:
    z = np.zeros((20, 5), dtype=np.float32)
    z[:, 0] = 1.0  # fires always: dense
    z[:3, 1] = 2.0  # 15%: dense at 0.1, not at 0.2
    z[0, 2] = 0.5  # 5%
    # latents 3 and 4 never fire: dead
    assert l0(z) == pytest.approx((20 + 3 + 1) / 20)
    assert dead_fraction(z) == pytest.approx(2 / 5)
    assert dense_fraction(z) == pytest.approx(2 / 5)
    assert dense_fraction(z, threshold=0.2) == pytest.approx(1 / 5)


def test_bad_shapes() -> None:
    x, xh = pair()
    with pytest.raises(UserError, match="shape"):
        mse(x, xh[:-1])
    with pytest.raises(UserError, match="zero variance"):
        fvu(np.ones((4, 3)), np.zeros((4, 3)))
    with pytest.raises(UserError, match="empty"):
        l0(np.zeros((0, 3)))


@pytest.fixture(scope="module")
def tiny_llama() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    return LlamaForCausalLM(cfg).eval()


def reference_ce(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> float:
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask.long()).logits[:, :-1]
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), ids[:, 1:].reshape(-1), reduction="none")
    valid = (mask[:, 1:] & mask[:, :-1]).reshape(-1)
    return float(nll[valid].mean())


def test_ce_recovered_identity_and_zero(tiny_llama: torch.nn.Module) -> None:
    ids = torch.randint(0, 64, (5, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[1, 8:] = False  # right padding
    layer = tiny_llama.model.layers[0]
    ident = ce_recovered(tiny_llama, ids, layer, lambda h: h, attention_mask=mask, batch_size=2)
    assert ident["spliced_ce"] == ident["clean_ce"] and ident["ce_recovered"] == 1.0 and ident["kl"] == 0.0
    assert ident["clean_ce"] == pytest.approx(reference_ce(tiny_llama, ids, mask), rel=1e-6)
    assert ident["n_tokens"] == 5 * 11 - 4
    zero = ce_recovered(tiny_llama, ids, "model.layers.0", torch.zeros_like, attention_mask=mask)
    assert zero["spliced_ce"] == zero["zero_ce"] and zero["ce_recovered"] == 0.0
    assert zero["zero_ce"] != zero["clean_ce"] and zero["kl"] > 0
    assert zero["clean_ce"] == pytest.approx(ident["clean_ce"], rel=1e-9)  # the hook is gone between calls


def test_ce_recovered_tuple_output_and_partial_reconstruction(tiny_llama: torch.nn.Module) -> None:
    ids = torch.randint(0, 64, (3, 10), generator=torch.Generator().manual_seed(2))
    attn = tiny_llama.model.layers[1].self_attn  # returns a tuple (output, weights)
    ident = ce_recovered(tiny_llama, ids, attn, lambda h: h)
    assert ident["ce_recovered"] == 1.0
    half = ce_recovered(tiny_llama, ids, attn, lambda h: 0.5 * h)
    want = (half["zero_ce"] - half["spliced_ce"]) / (half["zero_ce"] - half["clean_ce"])
    assert half["ce_recovered"] == pytest.approx(want) and not math.isclose(half["spliced_ce"], half["clean_ce"])
    assert all(p.grad is None for p in tiny_llama.parameters())
    with pytest.raises(UserError, match="shape"):
        ce_recovered(tiny_llama, ids, attn, lambda h: h[..., :4])

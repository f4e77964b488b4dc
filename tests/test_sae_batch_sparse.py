"""Sparse BatchTopK / Matryoshka training (triplet kernels) against dense brute force, in float64 where it matters."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from monosemantic.sae import SAE, SAEConfig, native, ops, train
from monosemantic.sae.architectures.batchtopk import BatchTopKOptions
from monosemantic.sae.batch_kernels import batch_topk_select
from monosemantic.sae.losses import AuxK, MatryoshkaReconstruction, Reconstruction
from monosemantic.sae.trainconfig import train_config
from monosemantic.sae.types import StepContext
from monosemantic.store import write_store

D, F, B = 10, 40, 24


pytestmark = pytest.mark.usefixtures("one_thread")


def _sae(arch: str, dtype: torch.dtype, k: float, bias_shift: float, seed: int = 0) -> SAE:
    groups = [5, 10, 25] if arch == "matryoshka" else None
    sae = SAE.create(SAEConfig(d_in=D, d_sae=F, architecture=arch, k=k, group_sizes=groups)).to(dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec):
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.5)
        sae.b_enc.add_(bias_shift)
    return sae


def _inputs(sae: SAE, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, D, generator=g, dtype=sae.W_dec.dtype) * 2
    with torch.no_grad():  # rows next to b_dec lose every comparison: they keep no positive entry at all
        x[::3] = x[::3] * 0.01 + sae.b_dec
    return x


def _brute_force(sae: SAE, x: torch.Tensor, k: float, dead: torch.Tensor | None, k_aux: int, kind: str | None):
    """Dense float64 reference written from methods.md §A.3, §A.4, §A.7 (AuxK with residual-variance norm)."""
    W_enc, b_enc, W_dec, b_dec = sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec
    acts = torch.relu((x - b_dec) @ W_enc + b_enc)
    n = int(k * x.shape[0])
    v, i = acts.flatten().topk(n)
    f = torch.zeros_like(acts).flatten().scatter(0, i, v).view_as(acts)
    if kind is None:
        x_hat = f @ W_dec + b_dec
        loss = ((x - x_hat) ** 2).sum(-1).mean()
    else:
        losses, x_hat = [], b_dec
        for end in sae.cfg.group_ends:
            x_hat = b_dec + f[:, :end] @ W_dec[:end]
            losses.append(((x - x_hat) ** 2).sum(-1).mean())
        loss = sum(losses) / (len(losses) ** 2 if kind == "dl_weighted_mean" else 1)
    if dead is not None:
        e = (x - x_hat).detach()
        z = torch.where(dead[None], acts, torch.full_like(acts, -torch.inf))
        av, ai = z.topk(min(k_aux, int(dead.sum())), dim=1)
        fa = torch.zeros_like(acts).scatter(1, ai, av)
        raw = ((e - fa @ W_dec) ** 2).sum(-1).mean()
        loss = loss + 0.25 * raw / (e - e.mean(0)).pow(2).sum(-1).mean()
    return loss, f


def _ours(sae: SAE, x: torch.Tensor, mode: str, dead: torch.Tensor | None, k_aux: int, kind: str | None):
    opts = BatchTopKOptions(batch_sparse=mode, k_aux=max(k_aux, 1))
    ctx = StepContext(step=0, total_steps=1, dead_mask=dead if k_aux else None, options=opts)
    out = sae.train_forward(x, ctx)
    terms = [Reconstruction() if kind is None else MatryoshkaReconstruction(kind), AuxK(0.25)]
    return sum(t(sae, out, ctx) for t in terms), out


CASES = [  # (bias shift, k): -4 with k = 6 keeps more entries than there are positive ones, so some kept values are 0
    (0.0, 3.0), (-4.0, 6.0), (0.0, 2.5),
]


@pytest.mark.parametrize("kind", [None, "sum", "dl_weighted_mean"])
@pytest.mark.parametrize("with_aux", [False, True])
@pytest.mark.parametrize(("bias_shift", "k"), CASES)
def test_sparse_equals_dense_float64(kind, with_aux, bias_shift, k):
    arch = "batchtopk" if kind is None else "matryoshka"
    sae = _sae(arch, torch.float64, k, bias_shift)
    x = _inputs(sae)
    dead = (torch.arange(F) % 3 == 0) if with_aux else None
    params = [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec]
    ref, f = _brute_force(sae, x, k, dead, 4, kind)
    g_ref = torch.autograd.grad(ref, params)
    for mode in ("sparse", "dense"):
        loss, out = _ours(sae, x, mode, dead, 4, kind)
        assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-12), mode
        for name, a, b in zip(("W_enc", "b_enc", "W_dec", "b_dec"), torch.autograd.grad(loss, params), g_ref,
                              strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"{mode} {name}")
        assert bool(torch.equal(out.fired(F), (f > 0).any(0))), mode
        assert float(out.l0()) == pytest.approx(float((f > 0).sum(1).double().mean()))
    _, out = _ours(sae, x, "sparse", dead, 4, kind)
    assert out.acts is None and out.vals is not None and out.vals.numel() == int(k * B)
    assert bool((f[::3] == 0).all()), "the test should cover rows with no kept entry"
    if bias_shift:
        assert bool((out.vals == 0).any()), "the test should cover kept values of exactly 0"
    if kind is not None:  # every prefix reconstruction, not just their loss
        assert out.prefix_recons is not None
        for end, r in zip(sae.cfg.group_ends, out.prefix_recons, strict=True):
            torch.testing.assert_close(r, f[:, :end] @ sae.W_dec[:end] + sae.b_dec, rtol=1e-12, atol=1e-12)


def test_threshold_update_is_the_same_from_triplets():
    sae_d, sae_s = _sae("batchtopk", torch.float64, 3.0, 0.0), _sae("batchtopk", torch.float64, 3.0, 0.0)
    x = _inputs(sae_d)
    opts = {"threshold_update": "ema_saelens"}
    for sae, mode in ((sae_d, "dense"), (sae_s, "sparse")):
        ctx = StepContext(step=5, total_steps=10, options=BatchTopKOptions(**opts, batch_sparse=mode))
        with torch.no_grad():
            sae.after_step(sae.train_forward(x, ctx), ctx)
    assert float(sae_s.threshold[0]) > 0
    assert torch.equal(sae_d.threshold, sae_s.threshold)


def test_native_float32_and_bf16_match_float64_reference():
    sae64 = _sae("matryoshka", torch.float64, 3.0, 0.0, seed=4)
    x64 = _inputs(sae64, seed=5)
    dead = torch.arange(F) % 4 == 1
    params64 = [sae64.W_enc, sae64.b_enc, sae64.W_dec, sae64.b_dec]
    g64 = torch.autograd.grad(_brute_force(sae64, x64, 3.0, dead, 5, "sum")[0], params64)
    for bf16 in (False, True):
        sae32 = copy.deepcopy(sae64).float()
        ctx = StepContext(step=0, total_steps=1, dead_mask=dead, bf16=bf16,
                          options=BatchTopKOptions(batch_sparse="sparse", k_aux=5))
        out = sae32.train_forward(x64.float(), ctx)
        loss = MatryoshkaReconstruction("sum")(sae32, out, ctx) + AuxK(0.25)(sae32, out, ctx)
        g32 = torch.autograd.grad(loss, [sae32.W_enc, sae32.b_enc, sae32.W_dec, sae32.b_dec])
        for a, b in zip(g32, g64, strict=True):
            torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("hot", "n"), [([3], 80), ([3, 9], 80), ([], 133)])  # 133 > 16 rows x 8 candidates
def test_selection_takes_whole_rows_when_one_row_holds_many_of_the_top(hot, n):
    g = torch.Generator().manual_seed(0)
    pre = torch.randn(16, 300, generator=g)
    pre[hot] += 10  # these rows alone hold more than the 8 candidates a row starts with
    bias = torch.randn(300, generator=g) * 0.1
    rows, cols, vals = batch_topk_select(pre, bias, n, 8)
    want = (pre + bias).flatten().topk(n).indices
    assert sorted((rows * 300 + cols).tolist()) == sorted(want.tolist())
    assert torch.equal(vals, (pre + bias)[rows, cols])
    assert bool((rows.diff() >= 0).all())


@pytest.mark.skipif(not native.available(), reason="no C compiler: the torch fallback is what runs")
def test_triplet_primitives_match_brute_force():
    n, R, Fn, d = 70, 9, 30, 13
    g = torch.Generator().manual_seed(2)
    orow, col = torch.randint(0, R, (n,), generator=g), torch.randint(0, Fn, (n,), generator=g)
    w, W, X = torch.randn(n, generator=g), torch.randn(Fn, d, generator=g), torch.randn(R, d, generator=g)
    w[::7] = 0
    gs, gsc = torch.zeros(R, d), torch.zeros(Fn, d)
    for s in range(n):
        gs[orow[s]] += w[s] * W[col[s]]
        gsc[col[s]] += w[s] * X[orow[s]]
    torch.testing.assert_close(ops.tri_gather_sum(orow, col, w, W, R), gs)
    torch.testing.assert_close(ops.tri_scatter_rows(orow, col, w, X, Fn), gsc)
    torch.testing.assert_close(ops.tri_gather_dot(orow, col, W, X), (X[orow] * W[col]).sum(1))


@pytest.mark.parametrize("arch", ["batchtopk", "matryoshka"])
def test_sparse_training_runs_resumes_exactly_and_tracks_dense(tmp_path, arch):
    rng = np.random.default_rng(0)
    dic = rng.standard_normal((48, 16))
    dic /= np.linalg.norm(dic, axis=1, keepdims=True)
    x = ((rng.random((6000, 48)) < 0.06) * rng.exponential(1.0, (6000, 48))) @ dic + 0.3
    store = tmp_path / "store"
    write_store(store, {"h": x.astype(np.float32)}, item_index=np.arange(len(x)) // 6)
    kw = dict(acts=store, arch=arch, d_sae=[64], k=[4], tokens="20K", batch_size=256, lr=4e-3, progress=False,
              threads=1, checkpoint_every=4, log_every=5, threshold_update="ema_saelens", dead_tokens=1000)
    if arch == "matryoshka":
        kw["group_fraction"] = [0.25, 0.75]
    full = train(train_config(dict(out=tmp_path / "full", batch_sparse="sparse", **kw)))[0]
    cut = train_config(dict(out=tmp_path / "cut", batch_sparse="sparse", **kw))
    train(cut, stop_after=10)
    cut = replace(cut, resume=True)
    resumed = train(cut)[0]
    dense = train(train_config(dict(out=tmp_path / "dense", batch_sparse="dense", **kw)))[0]
    a, b = SAE.load(full), SAE.load(resumed)
    for name in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    # training-mode FVU of the last batches: float32 rounding differs between the paths, the learning must not
    fa, fc = (json.loads((f / "train_log.jsonl").read_text().splitlines()[-1])["fvu"] for f in (full, dense))
    assert fa < 0.5 and abs(fa - fc) < 0.05, (fa, fc)

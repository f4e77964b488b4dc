"""The sparse primitives as torch operators: native CPU kernels against their forced torch versions and brute force,
argument checks, shape-only (meta) execution, and a warning-free build of the C source."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
import torch

from monosemantic.sae import native, ops

needs_native = pytest.mark.skipif(not native.available(), reason="no C compiler: only the torch versions exist")


pytestmark = pytest.mark.usefixtures("one_thread")


def _both(fn, *args):
    """(native result, forced torch result) of one operator call on the same arguments."""
    first = fn(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
    with ops.torch_fallback():
        second = fn(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
    return first, second


def test_every_primitive_is_a_registered_torch_operator():
    names = ["topk_rows", "gather_dot", "gather_sum", "scatter_rows", "project_rows_", "renorm_rows_",
             "tri_gather_sum", "tri_gather_dot", "tri_scatter_rows"]
    for name in names:
        op = getattr(torch.ops.monosemantic, name)
        assert "monosemantic::" + name in str(op.default._schema)


@needs_native
def test_topk_rows_native_equals_torch_including_ties_and_bf16():
    g = torch.Generator().manual_seed(0)
    for B, F, k in [(17, 200, 5), (9, 31, 7), (5, 16, 16), (40, 1000, 64), (8, 100, 1)]:
        pre, bias = torch.randn(B, F, generator=g), torch.randn(F, generator=g)
        (v, i), (vt, _) = _both(ops.topk_rows, pre, k, bias)
        assert torch.equal(v.sort(1).values, vt.sort(1).values)
        assert torch.equal((pre + bias).gather(1, i), v)
        assert bool((i.sort(1).values.diff(dim=1) > 0).all()), "indices must be distinct"
    ties = torch.randint(0, 3, (30, 90), generator=g).float()
    (v, i), (vt, _) = _both(ops.topk_rows, ties, 10)
    assert torch.equal(v.sort(1).values, vt.sort(1).values) and torch.equal(ties.gather(1, i), v)
    low = torch.randn(12, 300, generator=g).bfloat16()
    (v, _), (vt, _) = _both(ops.topk_rows, low, 9)
    assert v.dtype == vt.dtype == torch.float32
    assert torch.equal(v.sort(1).values, vt.sort(1).values)


@needs_native
def test_gather_scatter_and_triplet_ops_native_equal_torch_and_brute_force():
    g = torch.Generator().manual_seed(1)
    B, k, F, d = 33, 6, 50, 19
    idx = torch.randint(0, F, (B, k), generator=g)
    w, W, X = torch.randn(B, k, generator=g), torch.randn(F, d, generator=g), torch.randn(B, d, generator=g)
    brute_scatter = torch.zeros(F, d)
    for b in range(B):
        for s in range(k):
            brute_scatter[idx[b, s]] += w[b, s] * X[b]
    cases = [
        (ops.gather_dot, (idx, W, X), torch.einsum("bkd,bd->bk", W[idx], X)),
        (ops.gather_sum, (idx, w, W), (w[..., None] * W[idx]).sum(1)),
        (ops.scatter_rows, (idx, w, X, F), brute_scatter),
    ]
    n, R = 70, 11
    orow, col = torch.randint(0, R, (n,), generator=g), torch.randint(0, F, (n,), generator=g)
    val, XR = torch.randn(n, generator=g), torch.randn(R, d, generator=g)
    tri_sum, tri_scatter = torch.zeros(R, d), torch.zeros(F, d)
    for s in range(n):
        tri_sum[orow[s]] += val[s] * W[col[s]]
        tri_scatter[col[s]] += val[s] * XR[orow[s]]
    cases += [
        (ops.tri_gather_sum, (orow, col, val, W, R), tri_sum),
        (ops.tri_gather_dot, (orow, col, W, XR), (XR[orow] * W[col]).sum(1)),
        (ops.tri_scatter_rows, (orow, col, val, XR, F), tri_scatter),
    ]
    for fn, args, brute in cases:
        got, fallback = _both(fn, *args)
        torch.testing.assert_close(got, fallback, msg=str(fn))
        torch.testing.assert_close(got, brute, msg=str(fn))


@needs_native
def test_in_place_decoder_ops_native_equal_torch():
    g = torch.Generator().manual_seed(2)
    W, G = torch.randn(40, 13, generator=g), torch.randn(40, 13, generator=g)
    g_native, g_torch = G.clone(), G.clone()
    ops.project_rows_(W, g_native)
    with ops.torch_fallback():
        ops.project_rows_(W, g_torch)
    torch.testing.assert_close(g_native, g_torch)
    unit = W / W.norm(dim=1, keepdim=True)
    assert float((g_native * unit).sum(1).abs().max()) < 1e-5, "the parallel component must be removed"
    w_native, w_torch = W.clone(), W.clone()
    ops.renorm_rows_(w_native)
    with ops.torch_fallback():
        ops.renorm_rows_(w_torch)
    torch.testing.assert_close(w_native, w_torch)
    torch.testing.assert_close(w_native.norm(dim=1), torch.ones(40))


@needs_native
def test_out_of_range_or_mistyped_indices_are_refused_before_the_kernel_runs():
    W, X = torch.randn(10, 4), torch.randn(3, 4)
    with pytest.raises(IndexError, match=r"outside \[0, 10\)"):
        ops.gather_sum(torch.tensor([[0, 10]]), torch.ones(1, 2), W)
    with pytest.raises(IndexError, match="outside"):
        ops.scatter_rows(torch.tensor([[-1, 2]]), torch.ones(1, 2), X[:1], 10)
    with pytest.raises(IndexError, match="rows"):
        ops.tri_gather_sum(torch.tensor([0, 5]), torch.tensor([1, 2]), torch.ones(2), W, 3)
    with pytest.raises(ValueError, match="int64"):
        ops.gather_dot(torch.tensor([[1, 2]], dtype=torch.int32), W, X[:1])
    with pytest.raises(ValueError, match="k=11"):
        ops.topk_rows(torch.randn(2, 10), 11)


def test_every_operator_runs_on_the_meta_device():
    meta = torch.device("meta")
    idx = torch.empty(5, 3, dtype=torch.int64, device=meta)
    vals, W, X = (torch.empty(*s, device=meta) for s in ((5, 3), (20, 7), (5, 7)))
    v, i = ops.topk_rows(torch.empty(5, 20, device=meta), 3, torch.empty(20, device=meta))
    assert (v.shape, i.dtype, v.device.type) == ((5, 3), torch.int64, "meta")
    assert ops.gather_dot(idx, W, X).shape == (5, 3)
    assert ops.gather_sum(idx, vals, W).shape == (5, 7)
    assert ops.scatter_rows(idx, vals, X, 20).shape == (20, 7)
    rows, cols, v1 = (torch.empty(9, dtype=torch.int64, device=meta), torch.empty(9, dtype=torch.int64, device=meta),
                      torch.empty(9, device=meta))
    assert ops.tri_gather_sum(rows, cols, v1, W, 5).shape == (5, 7)
    assert ops.tri_gather_dot(rows, cols, W, X).shape == (9,)
    assert ops.tri_scatter_rows(rows, cols, v1, X, 20).shape == (20, 7)
    ops.project_rows_(W, torch.empty(20, 7, device=meta))
    ops.renorm_rows_(W)


@pytest.mark.skipif(native.compiler() is None, reason="no C compiler")
def test_the_c_source_builds_without_a_warning(tmp_path):
    out = tmp_path / "sparse.so"
    warnings = native.compile_library(native.source(), out, native.compiler())  # type: ignore[arg-type]
    assert out.exists() and warnings == "", warnings
    assert shutil.which("gcc") is None or "-Wextra" in native._FLAGS


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed (GPU machines have it)")
def test_triton_decode_equals_embedding_bag_in_the_interpreter():
    # TRITON_INTERPRET runs the kernel on the CPU with numpy: the logic is checked without a GPU
    code = (
        "import torch; from monosemantic.sae import triton_decode as t\n"
        "g = torch.Generator().manual_seed(0)\n"
        "for B, k, F, d in [(7, 5, 40, 19), (3, 1, 8, 300), (16, 32, 512, 384)]:\n"
        "    i = torch.randint(0, F, (B, k), generator=g); v = torch.randn(B, k, generator=g)\n"
        "    W = torch.randn(F, d, generator=g)\n"
        "    ref = torch.nn.functional.embedding_bag(i, W, per_sample_weights=v, mode='sum')\n"
        "    assert torch.allclose(t.gather_sum(i, v, W), ref, atol=1e-5), (B, k, F, d)\n"
        "print('ok')\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]

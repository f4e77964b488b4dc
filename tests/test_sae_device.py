"""Device propagation without a GPU: every architecture builds, encodes, decodes and takes a training step on the
``meta`` device (a tensor made on the CPU by mistake would meet a meta tensor and fail), and the sync-free paths
written for accelerators give the CPU paths' losses and gradients."""

from __future__ import annotations

import pytest
import torch

from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.sae import SAE, SAEConfig, StepContext
from monosemantic.sae.kernels import sync_free_paths
from monosemantic.sae.losses import loss_terms
from monosemantic.sae.registry import get_architecture, registered_options

D, F = 12, 64


def _cfg(arch: str) -> SAEConfig:
    k = 4 if get_architecture(arch).sparsity_param == "k" else None
    groups = [16, 48] if arch == "matryoshka" else None
    return SAEConfig(d_in=D, d_sae=F, architecture=arch, k=k, group_sizes=groups)


ARCHS = ["relu", "topk", "batchtopk", "matryoshka", "jumprelu", "tied"]


def _options(arch: str, **kw):
    cls = registered_options()[arch]
    return cls(**{k: v for k, v in kw.items() if k in cls.__dataclass_fields__})


@pytest.mark.parametrize("arch", ARCHS)
def test_build_encode_decode_on_meta(arch):
    with torch.device("meta"):
        sae = SAE.create(_cfg(arch))
    assert {p.device.type for p in sae.parameters()} == {"meta"}
    assert {b.device.type for b in sae.buffers()} <= {"meta"}
    x = torch.empty(7, D, device="meta")
    f = sae.encode(x)
    assert f.shape == (7, F) and f.device.type == "meta"
    x_hat = sae.decode(f)
    assert x_hat.shape == (7, D) and x_hat.device.type == "meta"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("batch_sparse", ["sparse", "dense"])
def test_training_step_on_meta(arch, batch_sparse):
    sae = SAE.create(_cfg(arch))
    sae.init_for_training(_options(arch))
    sae = sae.to("meta")
    opts = _options(arch, batch_sparse=batch_sparse, k_aux=6)
    x = torch.empty(32, D, device="meta")
    dead = torch.empty(F, dtype=torch.bool, device="meta")
    ctx = StepContext(step=3, total_steps=10, dead_mask=dead, bf16=True, options=opts)
    out = sae.train_forward(x, ctx)
    loss = sum(term(sae, out, ctx) for term in loss_terms(sae, "sum_mse", opts, 0.1))
    loss.backward()
    for name, p in sae.named_parameters():
        assert p.grad is None or p.grad.device.type == "meta", name
    assert out.fired(F).device.type == "meta"
    sae.after_step(out, ctx)


def _step_grads(sae: SAE, x: torch.Tensor, ctx: StepContext, opts) -> tuple[float, dict[str, torch.Tensor]]:
    sae.zero_grad(set_to_none=True)
    out = sae.train_forward(x, ctx)
    loss = sum(term(sae, out, ctx) for term in loss_terms(sae, "sum_mse", opts, None))
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in sae.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "matryoshka"])
@pytest.mark.parametrize("bf16", [False, True])
def test_sync_free_paths_equal_the_cpu_paths(arch, bf16):
    torch.manual_seed(0)
    sae = SAE.create(_cfg(arch))
    sae.init_for_training(_options(arch), torch.Generator().manual_seed(0))
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3)
    x = torch.randn(40, D)
    dead = torch.zeros(F, dtype=torch.bool)
    dead[::5] = True  # 13 dead latents, more than k_aux: the dead top-k differs from the overall top-k
    opts = _options(arch, batch_sparse="sparse", k_aux=6)
    ctx = StepContext(step=0, total_steps=1, dead_mask=dead, bf16=bf16, options=opts)
    cpu_loss, cpu_grads = _step_grads(sae, x, ctx, opts)
    with sync_free_paths():
        free_loss, free_grads = _step_grads(sae, x, ctx, opts)
    assert free_loss == pytest.approx(cpu_loss, rel=1e-5)
    assert cpu_grads.keys() == free_grads.keys()
    for name in cpu_grads:
        torch.testing.assert_close(free_grads[name], cpu_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_sync_free_auxk_with_no_dead_latent_adds_nothing():
    sae = SAE.create(_cfg("topk"))
    sae.init_for_training(_options("topk"), torch.Generator().manual_seed(0))
    opts = _options("topk", k_aux=6)
    x = torch.randn(16, D)
    ctx = StepContext(step=0, total_steps=1, dead_mask=torch.zeros(F, dtype=torch.bool), options=opts)
    with sync_free_paths():
        out = sae.train_forward(x, ctx)
        aux = loss_terms(sae, "sum_mse", opts, None)[1](sae, out, ctx)
    assert float(aux.detach()) == 0.0


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == (torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available()
                                      else torch.device("cpu"))
    with pytest.raises(UserError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available here"):
            resolve_device("cuda:1")

"""Architectures: inference semantics, files (SAELens layout, imports), input-scale folding, pseudo-derivatives."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from monosemantic.errors import UserError
from monosemantic.sae import SAE, SAEConfig, registered_architectures
from monosemantic.sae.architectures.batchtopk import batch_topk
from monosemantic.sae.architectures.matryoshka import group_sizes_from_fractions

D, F = 8, 24


def _sae(arch: str, seed: int = 0, **kw) -> SAE:
    kw.setdefault("k", 4 if arch in ("topk", "batchtopk", "matryoshka") else None)
    if arch == "matryoshka":
        kw.setdefault("group_sizes", [6, 18])
    sae = SAE.create(SAEConfig(d_in=D, d_sae=F, architecture=arch, metadata={"model_name": "m"}, **kw))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec):
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        if hasattr(sae, "log_threshold"):
            sae.log_threshold.copy_(torch.rand(F, generator=g).log())
        elif sae.has_threshold:
            sae.threshold.fill_(0.3)
    return sae


ARCHS = ["relu", "topk", "batchtopk", "matryoshka", "jumprelu"]


def test_registry_lists_every_architecture():
    assert set(ARCHS) <= set(registered_architectures())


@pytest.mark.parametrize("arch", ARCHS)
def test_encode_matches_brute_force(arch):
    sae = _sae(arch)
    x = torch.randn(16, D)
    with torch.no_grad():
        pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
        f = sae.encode(x)
    for b in range(16):
        for j in range(F):
            p = float(pre[b, j])
            if arch == "relu":
                want = max(p, 0.0)
            elif arch == "topk":
                kth = float(pre[b].sort(descending=True).values[3])
                want = max(p, 0.0) if p >= kth else 0.0
            else:
                th = float(sae.threshold[j].detach()) if arch == "jumprelu" else 0.3
                want = p if (p > th and p > 0) else 0.0
            assert float(f[b, j]) == pytest.approx(want, abs=1e-6)
    torch.testing.assert_close(sae(x), f @ sae.W_dec + sae.b_dec)


@pytest.mark.parametrize("arch", ARCHS)
def test_save_load_roundtrip_encodes_identically(arch, tmp_path):
    sae = _sae(arch)
    folder = sae.save(tmp_path / "sae")
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["metadata"]["sae_lens_version"] >= "6"
    assert cfg["metadata"]["monosemantic"]["architecture"] == arch
    assert cfg["architecture"] == {"relu": "standard", "topk": "topk"}.get(arch, "jumprelu")
    back = SAE.load(folder)
    assert type(back) is type(sae) and back.cfg.k == sae.cfg.k and back.cfg.group_sizes == sae.cfg.group_sizes
    x = torch.randn(32, D)
    torch.testing.assert_close(back.encode(x), sae.encode(x), rtol=0, atol=1e-6)
    with pytest.raises(UserError, match="already exists"):
        sae.save(folder)


def test_save_is_atomic_and_leaves_no_temporary(tmp_path):
    sae = _sae("topk")
    sae.save(tmp_path / "a")
    sae.save(tmp_path / "a", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("how", ["weights", "biases"])
def test_fold_input_scale_is_exact(arch, how):
    """Training on x·s then folding must give the raw-input SAE: same latents (up to 1/s for biases)."""
    sae = _sae(arch).double()
    s = 0.37
    x = torch.randn(20, D, dtype=torch.float64) * 3
    f_train, xh_train = sae.encode(x * s), sae(x * s)
    sae.fold_input_scale(s, how)
    f_raw = sae.encode(x)
    torch.testing.assert_close(f_raw, f_train if how == "weights" else f_train / s)
    torch.testing.assert_close(sae(x), xh_train / s)


def test_batch_topk_keeps_k_times_batch():
    acts = torch.rand(10, 30)
    f = batch_topk(acts, 2.5)
    assert int((f > 0).sum()) == 25
    assert float(f[f > 0].min()) >= float(acts.flatten().sort(descending=True).values[24])


def test_matryoshka_group_sizes_and_bad_splits():
    assert group_sizes_from_fractions([0.25, 0.25, 0.5], 100) == [25, 25, 50]
    assert group_sizes_from_fractions([0.002, 0.009, 0.035, 0.189, 0.765], 1536) == [3, 13, 53, 290, 1177]
    with pytest.raises(UserError, match="sum to 1"):
        group_sizes_from_fractions([0.5, 0.4], 100)
    with pytest.raises(UserError, match="empty group"):
        group_sizes_from_fractions([0.001, 0.999], 100)


def test_matryoshka_prefix_reconstructions_sum_groups():
    from monosemantic.sae.types import StepContext

    sae = _sae("matryoshka")
    x = torch.randn(10, D)
    out = sae.train_forward(x, StepContext(step=0, total_steps=1))
    f = out.acts
    prefix = out.prefix_recons
    assert prefix is not None
    torch.testing.assert_close(prefix[0], f[:, :6] @ sae.W_dec[:6] + sae.b_dec)
    torch.testing.assert_close(prefix[1], f @ sae.W_dec + sae.b_dec)


def test_jumprelu_pseudo_derivatives_follow_the_rectangle_kernel():
    from monosemantic.sae.architectures.jumprelu import _JumpReLU, _Step

    eps = 0.1
    pre = torch.tensor([[0.50, 0.96, 1.04, 2.0]], dtype=torch.float64, requires_grad=True)
    theta = torch.full((4,), 1.0, dtype=torch.float64, requires_grad=True)
    f = _JumpReLU.apply(pre, theta, eps)
    assert f.tolist() == [[0.0, 0.0, 1.04, 2.0]]
    gp, gt = torch.autograd.grad(f.sum(), (pre, theta))
    assert gp.tolist() == [[0.0, 0.0, 1.0, 1.0]]
    # ∂f/∂θ = −(θ/ε)·K((pre−θ)/ε): only entries within ε/2 of θ contribute
    assert gt.tolist() == pytest.approx([0.0, -10.0, -10.0, 0.0])
    h = _Step.apply(pre, theta, eps)
    gp2, gt2 = torch.autograd.grad(h.sum(), (pre, theta), allow_unused=True)
    assert gp2 is None or float(gp2.abs().sum()) == 0.0
    assert gt2.tolist() == pytest.approx([0.0, -10.0, -10.0, 0.0])


def test_invalid_configs_name_the_problem():
    with pytest.raises(UserError, match="k"):
        SAE.create(SAEConfig(d_in=D, d_sae=F, architecture="topk", k=None)).validate(
            SAEConfig(d_in=D, d_sae=F, architecture="topk", k=F + 1)
        )
    with pytest.raises(UserError, match="unknown SAE architecture"):
        SAE.create(SAEConfig(d_in=D, d_sae=F, architecture="nope"))


def test_loads_sparsify_and_dictionary_learning_layouts(tmp_path):
    """Key names from ecosystem.md §4.2; compare with a brute-force encode of the same weights."""
    g = torch.Generator().manual_seed(1)
    enc, b_enc, W_dec, b_dec = (torch.randn(F, D, generator=g), torch.randn(F, generator=g),
                                torch.randn(F, D, generator=g), torch.randn(D, generator=g))
    x = torch.randn(6, D, generator=g)
    pre = (x - b_dec) @ enc.T + b_enc
    v, i = pre.topk(3, dim=1)
    want = torch.zeros_like(pre).scatter(1, i, v.relu())

    sp = tmp_path / "sparsify"
    sp.mkdir()
    save_file({"encoder.weight": enc, "encoder.bias": b_enc, "W_dec": W_dec, "b_dec": b_dec},
              str(sp / "sae.safetensors"))
    (sp / "cfg.json").write_text(json.dumps({"activation": "topk", "k": 3, "d_in": D, "num_latents": F}))
    torch.testing.assert_close(SAE.load(sp).encode(x), want)

    dl = tmp_path / "dl"
    dl.mkdir()
    torch.save({"encoder.weight": enc, "encoder.bias": b_enc, "decoder.weight": W_dec.T.contiguous(),
                "b_dec": b_dec, "k": torch.tensor(3), "threshold": torch.tensor(-1.0)}, dl / "ae.pt")
    (dl / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoderTopK", "k": 3}}))
    loaded = SAE.load(dl)
    torch.testing.assert_close(loaded.encode(x), want)
    torch.testing.assert_close(loaded.W_dec, W_dec)

    jr = tmp_path / "dl_jump"
    jr.mkdir()
    th = torch.rand(F, generator=g)
    torch.save({"W_enc": enc.T.contiguous(), "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec, "threshold": th},
               jr / "ae.pt")
    want_j = pre.relu() * (pre > th)
    torch.testing.assert_close(SAE.load(jr).encode(x), want_j, rtol=1e-5, atol=1e-6)


def test_load_rejects_non_sae_folders(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        SAE.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not an SAE folder"):
        SAE.load(tmp_path / "empty")
    bad = tmp_path / "bad"
    _sae("topk").save(bad)
    (bad / "sae_weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read"):
        SAE.load(bad)


def test_registering_a_name_twice_is_an_error_and_create_validates():
    from monosemantic.sae import register
    from monosemantic.sae.architectures.topk import TopKSAE

    with pytest.raises(ValueError, match="'topk' is registered twice"):
        register("topk")(type("AnotherTopK", (TopKSAE,), {}))
    assert registered_architectures()["topk"] is TopKSAE
    with pytest.raises(UserError, match="group sizes"):
        SAE.create(SAEConfig(d_in=D, d_sae=F, architecture="matryoshka", k=4, group_sizes=[6, 6]))


def test_the_trainer_knows_no_architecture_by_name():
    import inspect

    from monosemantic.sae import trainer

    source = inspect.getsource(trainer)
    assert "hasattr(" not in source
    for name in ARCHS:
        assert f'"{name}"' not in source, name

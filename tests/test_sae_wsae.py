"""Weighted reconstruction (WSAE) and the tied no-bias theory SAE, both from Cui et al. (arXiv 2506.15963)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from monosemantic.errors import UserError
from monosemantic.sae import SAE, train, train_config
from monosemantic.sae.losses import MatryoshkaReconstruction, Reconstruction
from monosemantic.sae.recipe import dimension_weights
from monosemantic.sae.types import StepContext, StepOutput
from monosemantic.store import write_store

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    dic = rng.standard_normal((40, 12))
    dic /= np.linalg.norm(dic, axis=1, keepdims=True)
    codes = (rng.random((6000, 40)) < 0.08) * rng.exponential(1.0, (6000, 40))
    # dimensions of very different variance, so the weights matter
    x = (codes @ dic) * np.linspace(0.2, 3.0, 12) + 0.01 * rng.standard_normal((6000, 12))
    path = tmp_path_factory.mktemp("wsae") / "store"
    write_store(path, {"h": x.astype(np.float32)}, item_index=np.arange(6000) // 6)
    return path


def _cfg(store: Path, out: Path, **kw):
    base = dict(acts=store, out=out, arch="topk", d_sae=[48], k=[4], tokens="30K", batch_size=256, lr=4e-3,
                progress=False, threads=1, checkpoint_every=0, device="cpu")
    base.update(kw)
    return train_config(base)


def test_dimension_weights_are_normalised_variance_to_the_alpha():
    x = torch.tensor([[0.0, 1.0, 5.0], [2.0, 3.0, 5.0], [4.0, 2.0, 5.0]])
    var = torch.tensor([np.var([0, 2, 4]), np.var([1, 3, 2]), 0.0], dtype=torch.float64)
    torch.testing.assert_close(dimension_weights(x, 1.0, "max").double(), var / var.max())
    torch.testing.assert_close(dimension_weights(x, 0.5, "mean").double(), (var / var.mean()).sqrt())
    assert torch.equal(dimension_weights(x, 0.0), torch.ones(3))


def test_weighted_reconstruction_terms_match_brute_force():
    x, x_hat = torch.randn(5, 3), torch.randn(5, 3)
    w = torch.tensor([0.5, 1.0, 2.0])
    ctx = StepContext(step=0, total_steps=1)
    out = StepOutput(x=x, x_hat=x_hat, prefix_recons=[x_hat * 0.5, x_hat])
    brute = sum(float(w[d] * (x[b, d] - x_hat[b, d]) ** 2) for b in range(5) for d in range(3)) / 5
    assert float(Reconstruction(weight=w)(None, out, ctx)) == pytest.approx(brute, rel=1e-5)  # type: ignore[arg-type]
    half = sum(float(w[d] * (x[b, d] - 0.5 * x_hat[b, d]) ** 2) for b in range(5) for d in range(3)) / 5
    got = float(MatryoshkaReconstruction(weight=w)(None, out, ctx))  # type: ignore[arg-type]
    assert got == pytest.approx(brute + half, rel=1e-5)


def test_alpha_zero_is_the_plain_sae_and_alpha_one_records_gamma(store, tmp_path):
    plain = SAE.load(train(_cfg(store, tmp_path / "plain"))[0])
    flat = SAE.load(train(_cfg(store, tmp_path / "a0", rec_weights="variance", rec_alpha=0.0))[0])
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        assert torch.equal(getattr(plain, name), getattr(flat, name)), name
    folder = train(_cfg(store, tmp_path / "a1", rec_weights="variance", rec_alpha=1.0))[0]
    meta = json.loads((folder / "cfg.json").read_text())["metadata"]["monosemantic"]
    gamma = torch.tensor(meta["rec_weights"])
    assert gamma.shape == (12,) and float(gamma.max()) == pytest.approx(1.0)
    assert float(gamma.min()) < 0.2, "the low-variance dimensions must be damped"
    assert meta["train"]["rec_weights"] == "variance"
    weighted = SAE.load(folder)
    assert not torch.equal(weighted.W_dec, plain.W_dec)


def test_weighted_training_resumes_exactly(store, tmp_path):
    full = SAE.load(train(_cfg(store, tmp_path / "full", rec_weights="variance", checkpoint_every=20))[0])
    cut = _cfg(store, tmp_path / "cut", rec_weights="variance", checkpoint_every=20)
    train(cut, stop_after=50)
    cut = replace(cut, resume=True)
    resumed = SAE.load(train(cut)[0])
    assert torch.equal(full.W_dec, resumed.W_dec) and torch.equal(full.b_enc, resumed.b_enc)


def test_tied_theory_sae_trains_without_biases_and_saves_an_exact_standard_sae(store, tmp_path):
    folder = train(_cfg(store, tmp_path / "tied", arch="tied", k=[], tokens="60K"))[0]
    assert folder.name == "tied"
    sae = SAE.load(folder)
    assert json.loads((folder / "cfg.json").read_text())["architecture"] == "standard"
    assert float(sae.b_enc.abs().max()) == 0.0 and float(sae.b_dec.abs().max()) == 0.0
    # the saved encoder is the tied decoder, rescaled by the folded input scale
    ratio = (sae.W_enc.t() / sae.W_dec).detach()
    finite = ratio[sae.W_dec.abs() > 1e-6]
    assert float(finite.std() / finite.mean()) < 1e-4
    ev = json.loads((folder / "eval.json").read_text())
    assert ev["fvu"] < 0.5


def test_tied_takes_no_sparsity_setting_and_wsae_refuses_a_negative_alpha(store, tmp_path):
    with pytest.raises(UserError, match="--k does not apply to tied"):
        train(_cfg(store, tmp_path / "o", arch="tied"))
    with pytest.raises(UserError, match="--rec-alpha must be at least 0"):
        train(_cfg(store, tmp_path / "o", rec_weights="variance", rec_alpha=-1.0))

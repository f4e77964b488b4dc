"""The concept latents of an SAE (monosemantic.steer.concepts): a G-SAE's tied latents with their logits as detectors,
a vanilla SAE's FMS roots with the sign that steers towards the concept, and per-item averaging of grouped rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from monosemantic.errors import UserError
from monosemantic.sae import SAE, SAEConfig
from monosemantic.steer.concepts import ConceptSAE, GroupedRows, encode_rows, score_concepts

D, N = 8, 400


def _labelled(seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Rows whose first dimension is low for the concept (−3 against 0) and whose second follows a second concept."""
    rng = np.random.default_rng(seed)
    y = (rng.random((N, 2)) < 0.5).astype(np.int64)
    x = rng.normal(0, 0.3, (N, D))
    x[:, 0] += -3.0 * y[:, 0]
    x[:, 1] += 3.0 * y[:, 1]
    return torch.tensor(x, dtype=torch.float32), y


def _vanilla() -> SAE:
    """A ReLU SAE whose latent 2 reads relu(x_0 + 2): it fires where concept 0 is absent; latent 5 reads x_1; the
    others read noise."""
    sae = SAE.create(SAEConfig(d_in=D, d_sae=12, architecture="relu", metadata={"hook_name": "h"}))
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(D, 12, generator=torch.Generator().manual_seed(0)))
        sae.W_enc[:2] = 0  # the other latents read only the noise dimensions
        sae.W_enc[:, 2] = 0
        sae.W_enc[0, 2] = 1.0
        sae.W_enc[:, 5] = 0
        sae.W_enc[1, 5] = 1.0
        sae.b_enc.zero_()
        sae.b_enc[2] = 2.0
        sae.b_dec.zero_()
    return sae


def test_a_vanilla_sae_steers_its_fms_roots_with_the_sign_of_their_auroc(one_thread) -> None:
    x, y = _labelled()
    sae = _vanilla()
    assert not isinstance(sae, ConceptSAE)
    got = score_concepts(sae, x, y, seed=0)
    assert got.root == [2, 5] and got.latents == [2, 5] and got.root_is_reserved is None
    assert got.signs == [-1.0, 1.0]  # latent 2 marks the concept's absence, so it is steered with −α
    f = encode_rows(sae, x)
    assert got.auroc == [pytest.approx(roc_auc_score(y[:, c], f[:, j].numpy())) for c, j in enumerate((2, 5))]
    assert got.auroc[0] < 0.5 < got.auroc[1] and got.auroc_mean == pytest.approx(np.mean(got.auroc))
    assert got.fms1 == got.best_latent_fms1 and 0.9 < got.fms1 <= 1.0 and 0.0 <= got.fms5 <= 1.0
    assert list(got.to_json())[:4] == ["fms@1", "fms@5", "fms@1_per_concept", "fms@5_per_concept"]


def test_a_gsae_names_its_concept_latents_and_detects_with_their_logits(one_thread) -> None:
    x, y = _labelled(1)
    meta = {"hook_name": "h", "monosemantic": {"gsae": {"concepts": ["a", "b"]}}}
    sae = SAE.create(SAEConfig(d_in=D, d_sae=12, architecture="gsae", k=4, metadata=meta))
    sae.init_weights(torch.Generator().manual_seed(0))
    assert isinstance(sae, ConceptSAE) and sae.concept_latents() == [0, 1]
    got = score_concepts(sae, x, y, seed=0)
    assert got.latents == [0, 1] and got.signs == [1.0, 1.0]  # tied latents steer as they are, whatever their AUROC
    assert got.root_is_reserved == [r == c for c, r in enumerate(got.root)]
    logits = sae.concept_logits(x).detach()
    assert got.auroc == [pytest.approx(roc_auc_score(y[:, c], logits[:, c].numpy()), abs=1e-6) for c in range(2)]


def test_grouped_rows_are_averaged_per_item_after_encoding() -> None:
    x, _ = _labelled()
    sae = _vanilla()
    group = torch.arange(N) // 4
    got = encode_rows(sae, GroupedRows(x, group, N // 4))
    f = encode_rows(sae, x)
    torch.testing.assert_close(got, f.reshape(N // 4, 4, -1).mean(1))


def test_a_vanilla_sae_with_no_separating_latent_is_one_line() -> None:
    x, y = _labelled()
    sae = SAE.create(SAEConfig(d_in=D, d_sae=4, architecture="relu", metadata={"hook_name": "h"}))
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.b_enc.fill_(1.0)  # every latent constant on every row
    with pytest.raises(UserError, match="no latent of the vanilla SAE separates concept 0"):
        score_concepts(sae, x, y, seed=0)

"""MedSAE label metrics against numpy / plain-loop implementations of spec D.2, D.3 and D.5."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monosemantic.errors import UserError
from monosemantic.metrics import best_unit_per_class, correlation_entropy, label_correlation, precision_recall_f1


def data(seed: int = 0, n: int = 80, k: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    acts = np.maximum(rng.normal(size=(n, k)), 0).astype(np.float32)
    acts[:, 0] += 2.0 * (labels == 2)
    acts[:, 3] = 0.7  # constant unit
    acts[:, 4] = 0.0  # dead unit
    return acts, labels


def test_label_correlation_matches_corrcoef() -> None:
    acts, labels = data()
    got = label_correlation(torch.from_numpy(acts), torch.from_numpy(labels), chunk_size=13)
    onehot = np.eye(4)[labels]
    with np.errstate(invalid="ignore", divide="ignore"):
        full = np.corrcoef(np.concatenate([acts.T.astype(np.float64), onehot.T]))
    want = np.nan_to_num(full[: acts.shape[1], acts.shape[1]:], nan=0.0)  # constant column -> 0
    assert got.shape == (9, 4) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    assert (got[3] == 0).all() and (got[4] == 0).all()


def test_label_correlation_binary_columns_and_constant_label() -> None:
    acts, labels = data(1)
    y = np.stack([labels == 0, labels >= 2, np.zeros_like(labels, dtype=bool)], axis=1)
    got = label_correlation(acts, y)
    for j in range(acts.shape[1]):
        for c in range(2):
            if acts[:, j].max() > acts[:, j].min():
                assert got[j, c].item() == pytest.approx(np.corrcoef(acts[:, j], y[:, c])[0, 1], abs=1e-12)
    assert (got[:, 2] == 0).all()


def test_entropy_matches_direct_formula() -> None:
    rng = np.random.default_rng(2)
    corr = rng.uniform(-1, 1, size=(6, 5))
    corr[2] = 0.0
    got = correlation_entropy(torch.from_numpy(corr))
    for j in range(6):
        total = sum(abs(v) for v in corr[j]) + 1e-8
        h = -sum((abs(v) / total) * math.log(abs(v) / total + 1e-10) for v in corr[j])
        assert got[j].item() == pytest.approx(h, abs=1e-12)


def test_best_unit_per_class_matches_loop() -> None:
    rng = np.random.default_rng(3)
    corr = rng.uniform(-0.5, 0.5, size=(12, 4))
    corr[5, 1] = 0.15  # the largest in class 1 only if unit 5 were alive: it is not
    corr[5] = np.clip(corr[5], -0.15, 0.15)
    corr[:, 1] = np.minimum(corr[:, 1], 0.1)
    corr[5, 1] = 0.15
    got = best_unit_per_class(torch.from_numpy(corr), alive_threshold=0.2)
    ent = correlation_entropy(torch.from_numpy(corr)).numpy()
    alive = [j for j in range(12) if max(abs(v) for v in corr[j]) > 0.2]
    assert 5 not in alive and got.alive.tolist() == [j in alive for j in range(12)]
    scores, entropies = [], []
    for c in range(4):
        best = max(alive, key=lambda j: (corr[j, c], -j))
        assert got.indices[c].item() == best
        scores.append(corr[best, c])
        entropies.append(ent[best])
    assert got.corr_mean == pytest.approx(np.mean(scores)) and got.entropy_mean == pytest.approx(
        np.mean(entropies))
    none = best_unit_per_class(torch.full((3, 2), 0.1))
    assert none.n_missing == 2 and (none.indices == -1).all() and math.isnan(none.corr_mean)


def prf_loop(acts: np.ndarray, y: np.ndarray, top_fraction: float, l0_min: float, l0_max: float) -> dict:
    k, c = acts.shape[1], y.shape[1]
    out = {key: np.zeros((k, c)) for key in ("precision", "recall", "f1")}
    out["valid"] = np.zeros(k, dtype=bool)
    for j in range(k):
        pos = sorted(v for v in acts[:, j].astype(np.float64) if v > 1e-7)
        if pos:
            kth = max(1, math.floor((1 - top_fraction) * len(pos)))
            fired = acts[:, j].astype(np.float64) > pos[kth - 1]
        else:
            fired = np.zeros(len(acts), dtype=bool)
        l0 = int(fired.sum()) // top_fraction
        out["valid"][j] = l0_min < l0 < l0_max
        for ci in range(c):
            tp = int((fired & (y[:, ci] == 1)).sum())
            p = tp / fired.sum() if fired.sum() else 0.0
            r = tp / y[:, ci].sum() if y[:, ci].sum() else 0.0
            out["precision"][j, ci], out["recall"][j, ci] = p, r
            out["f1"][j, ci] = 2 * p * r / (p + r) if p + r else 0.0
    return out


@pytest.mark.parametrize("top_fraction", [0.3, 0.5])
def test_precision_recall_f1_matches_loop(top_fraction: float) -> None:
    acts, labels = data(4, n=120, k=10)
    acts[:, 5] = np.round(acts[:, 5] * 2) / 2  # ties at the threshold
    acts[:7, 6] = 1.0
    acts[7:, 6] = 0.0  # very few fires
    got = precision_recall_f1(acts, labels, top_fraction=top_fraction, l0_min=5, l0_max=60, chunk_units=3)
    want = prf_loop(acts, np.eye(4)[labels], top_fraction, 5, 60)
    for key in ("precision", "recall", "f1"):
        np.testing.assert_allclose(getattr(got, key).numpy(), want[key], atol=1e-12)
    assert got.valid.tolist() == want["valid"].tolist()
    assert math.isinf(got.threshold[4].item()) and got.fires[4].item() == 0


def test_label_errors() -> None:
    acts, labels = data()
    with pytest.raises(UserError, match="single class"):
        label_correlation(acts, np.full(len(acts), 2))
    with pytest.raises(UserError, match="items"):
        label_correlation(acts, labels[:-1])
    with pytest.raises(UserError, match="empty"):
        precision_recall_f1(np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(UserError, match="class ids"):
        label_correlation(acts, labels - 1)

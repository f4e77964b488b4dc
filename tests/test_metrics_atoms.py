"""Atoms metrics (AIP, coherence, uniqueness, q*, R², angle histograms) against dense numpy loops."""

from __future__ import annotations

import math
import warnings
from itertools import combinations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import torch

from monosemantic.errors import UserError
from monosemantic.metrics import (
    SingularMomentWarning,
    aip,
    aip_metric,
    angle_histograms,
    coherence,
    explained_variance,
    pairwise_angles,
    q_star,
    r2,
    sample_coherence,
    unique_fraction,
    whiten,
)


def loop_metric(acts: np.ndarray, ridge: float) -> np.ndarray:
    h = acts.shape[1]
    m = sum(np.outer(r, r) for r in acts) / len(acts)
    return np.linalg.inv(m + ridge * np.trace(m) / h * np.eye(h))


def loop_aip(u: np.ndarray, v: np.ndarray, s: np.ndarray) -> float:
    return float(u @ s @ v / math.sqrt((u @ s @ u) * (v @ s @ v)))


@pytest.fixture
def acts() -> np.ndarray:
    rng = np.random.default_rng(0)
    # anisotropic, with a common offset: the representation shift the AIP corrects
    return rng.standard_normal((400, 8)) @ rng.standard_normal((8, 8)) + 3.0 * rng.standard_normal(8)


def test_aip_metric_and_whiten_match_loops(acts: np.ndarray) -> None:
    s = aip_metric(torch.from_numpy(acts).float(), ridge=1e-4)
    np.testing.assert_allclose(s.numpy(), loop_metric(acts.astype(np.float32).astype(np.float64), 1e-4), rtol=1e-7)
    np.testing.assert_allclose(aip_metric(acts, ridge=0).numpy(), loop_metric(acts, 0.0), rtol=1e-7)
    w = np.real(scipy.linalg.sqrtm(s.numpy()))
    white = whiten(acts, s).numpy()
    for i in range(0, 400, 37):
        np.testing.assert_allclose(white[i], w @ acts[i], rtol=1e-8, atol=1e-10)
    exact = whiten(acts, aip_metric(acts, ridge=0.0)).numpy()
    np.testing.assert_allclose(exact.T @ exact / len(exact), np.eye(8), atol=1e-9)  # whitened second moment: I
    assert whiten(torch.from_numpy(acts).float(), s).dtype == torch.float32


def test_singular_second_moment_warns_and_ridge_zero_fails(acts: np.ndarray) -> None:
    low = acts.copy()
    low[:, 3] = 2 * low[:, 1]  # rank 7 of 8
    with pytest.warns(SingularMomentWarning, match="rank 7 of 8"):
        s = aip_metric(low)
    np.testing.assert_allclose(s.numpy(), loop_metric(low, 1e-4), rtol=1e-6)
    with pytest.raises(UserError, match=r"singular \(rank 7 of 8\); give ridge > 0"):
        aip_metric(low, ridge=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aip_metric(acts)  # full rank: silent
    with pytest.warns(SingularMomentWarning):
        aip_metric(acts[:5])  # fewer samples than dimensions
    with pytest.raises(UserError, match="all zero"):
        aip_metric(np.zeros((4, 3)))
    with pytest.raises(UserError, match="ridge must be"):
        aip_metric(acts, ridge=-1.0)


def test_aip_vectors_and_matrices(acts: np.ndarray) -> None:
    s = aip_metric(acts).numpy()
    rng = np.random.default_rng(1)
    u, v = rng.standard_normal((3, 8)), rng.standard_normal((4, 8))
    assert aip(u[0], v[0], s) == pytest.approx(loop_aip(u[0], v[0], s))
    mat = aip(u, v, s)
    assert mat.shape == (3, 4)
    for a in range(3):
        for b in range(4):
            assert mat[a, b] == pytest.approx(loop_aip(u[a], v[b], s))
    cos = u[0] @ v[0] / (np.linalg.norm(u[0]) * np.linalg.norm(v[0]))
    assert aip(u[0], v[0]) == pytest.approx(cos)
    assert aip(u[0], v[0], s) != pytest.approx(cos, abs=1e-3)  # the metric matters
    assert math.isnan(aip(np.zeros(8), v[0], s))
    with pytest.raises(UserError, match="symmetric"):
        aip(u[0], v[0], s + np.triu(np.ones((8, 8)), 1))
    with pytest.raises(UserError, match="must be \\[H, H\\]"):
        aip(u[0], v[0], np.eye(7))


def loop_coherence(d: np.ndarray, s: np.ndarray | None) -> float:
    s = np.eye(d.shape[0]) if s is None else s
    return max(abs(loop_aip(d[:, a], d[:, b], s)) for a, b in combinations(range(d.shape[1]), 2))


def test_coherence_matches_loop(acts: np.ndarray) -> None:
    s = aip_metric(acts).numpy()
    d = np.random.default_rng(2).standard_normal((8, 23))
    for metric in (None, s):
        assert coherence(d, metric, block=5) == pytest.approx(loop_coherence(d, metric), abs=1e-12)
    assert coherence(np.eye(6)) == 0.0  # neurons are Euclidean-orthogonal ...
    assert coherence(np.eye(8), s) > 0.05  # ... but not under the AIP
    dup = np.eye(5)[:, [0, 1, 2, 2]]
    assert coherence(dup) == pytest.approx(1.0)
    with pytest.raises(UserError, match="at least two atoms"):
        coherence(np.ones((3, 1)))


def random_codes(n_samples: int, n_atoms: int, ks: list[int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = np.zeros((n_samples, n_atoms))
    for i in range(n_samples):
        k = ks[i % len(ks)]
        codes[i, rng.choice(n_atoms, k, replace=False)] = rng.random(k) + 0.05
    return codes


def loop_sample_mu(codes: np.ndarray, d: np.ndarray, s: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    s = np.eye(d.shape[0]) if s is None else s
    mus, ks = [], []
    for row in codes:
        t = np.flatnonzero(row)
        ks.append(len(t))
        mus.append(max((abs(loop_aip(d[:, a], d[:, b], s)) for a, b in combinations(t, 2)), default=0.0))
    return np.array(mus), np.array(ks)


KS = [0, 1, 2, 3, 4, 5, 8, 9, 17, 33]  # crosses every K-bucket boundary of the kernel


@pytest.mark.parametrize("whitened", [False, True])
def test_sample_coherence_and_unique_fraction_match_loops(acts: np.ndarray, whitened: bool) -> None:
    h, n = 8, 300  # three atom blocks of the kernel
    s = aip_metric(acts).numpy() if whitened else None
    d = np.random.default_rng(3).standard_normal((h, n))
    codes = random_codes(120, n, KS, seed=4)
    mu_loop, k_loop = loop_sample_mu(codes, d, s)
    mu, k = sample_coherence(torch.from_numpy(codes), d, s)
    np.testing.assert_array_equal(k.numpy(), k_loop)
    np.testing.assert_allclose(mu.numpy(), mu_loop, atol=1e-6)
    unique_loop = np.mean([m * (2 * kk - 1) < 1 for m, kk in zip(mu_loop, k_loop, strict=True)])
    assert unique_fraction(codes, d, s) == pytest.approx(unique_loop)
    assert 0 < unique_loop < 1
    mu_all = loop_coherence(d, s)
    assert unique_fraction(codes, d, s, pairs="all") == pytest.approx(np.mean(mu_all * (2 * k_loop - 1) < 1))


def test_code_formats_agree() -> None:
    d = np.random.default_rng(5).standard_normal((6, 40))
    codes = random_codes(30, 40, [0, 2, 5, 7], seed=6)
    ref = sample_coherence(codes, d)[0]
    idx = np.full((30, 9), -1)
    val = np.zeros((30, 9))
    for i, row in enumerate(codes):
        t = np.flatnonzero(row)
        idx[i, : len(t)], val[i, : len(t)] = t, row[t]
    idx[:, -1], val[:, -1] = 0, 0.0  # a TopK slot holding a zero value is not active
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch calls its sparse CSR support beta
        csr_tensor = torch.from_numpy(codes).to_sparse_csr()
    forms = [torch.from_numpy(codes).to_sparse(), csr_tensor, sp.csr_matrix(codes),
             (torch.from_numpy(idx), torch.from_numpy(val)), codes.astype(np.float32)]
    for form in forms:
        assert torch.equal(sample_coherence(form, d)[0], ref)
    with pytest.raises(UserError, match="41 atom columns but the dictionary has 40"):
        unique_fraction(np.zeros((3, 41)), d)
    with pytest.raises(UserError, match="pairs='pairwise' is not valid"):
        unique_fraction(codes, d, pairs="pairwise")


def test_uniqueness_bound_exactly() -> None:
    # orthonormal atoms are unique at any K; a co-active duplicate never is; the bound μ(2K - 1) < 1 is strict
    eye = np.eye(10)
    codes = np.zeros((4, 11))
    codes[0, :10] = 1.0
    codes[1, [3, 10]] = 1.0  # atom 10 duplicates atom 3
    codes[2, [0, 1]] = 1.0
    d = np.concatenate([eye, eye[:, [3]]], axis=1)
    mu, k = sample_coherence(codes, d)
    assert mu.tolist() == [0.0, 1.0, 0.0, 0.0] and k.tolist() == [10, 2, 2, 0]
    assert unique_fraction(codes, d) == 0.75
    # two atoms at cos exactly 1/3 with K = 2: 1/3 < 1/3 is false, and fp32 alone could decide either way
    tilt = np.array([[1.0, 1 / 3], [0.0, math.sqrt(8) / 3]])
    assert sample_coherence(np.ones((1, 2)), tilt)[0].item() == pytest.approx(1 / 3, abs=1e-15)
    assert unique_fraction(np.ones((1, 2)), tilt) == 0.0
    assert unique_fraction(np.ones((1, 2)), tilt @ np.diag([1.0, 1.0 - 1e-9])) == 0.0


def loop_q_star(mu: np.ndarray, k: np.ndarray) -> float:
    n = len(mu)
    best = 0.0
    for j in range(1, n + 1):
        q = j / n
        mq = np.quantile(mu, q, method="inverted_cdf")
        kq = np.quantile(k, q, method="inverted_cdf")
        if mq * (2 * kq - 1) < 1:
            best = q
        else:
            break
    return best


def test_q_star_matches_loop(acts: np.ndarray) -> None:
    s = aip_metric(acts).numpy()
    d = np.random.default_rng(7).standard_normal((8, 120))
    codes = random_codes(90, 120, [0, 1, 2, 2, 3, 4, 6], seed=8)
    for metric in (None, s):
        mu, k = loop_sample_mu(codes, d, metric)
        expect = loop_q_star(mu, k)
        assert 0 < expect < 1
        assert q_star(codes, d, metric) == pytest.approx(expect)
    d2 = np.random.default_rng(9).standard_normal((40, 30))  # nearly orthogonal atoms, so "all" has a nonzero q*
    codes2 = random_codes(60, 30, [1, 2, 2, 3], seed=10)
    _, k2 = loop_sample_mu(codes2, d2, None)
    pair_vals = np.array([abs(loop_aip(d2[:, a], d2[:, b], np.eye(40))) for a, b in combinations(range(30), 2)])
    expect_all = 0.0
    for j in range(1, 61):
        q = j / 60
        if np.quantile(pair_vals, q, method="inverted_cdf") * (2 * np.quantile(k2, q, method="inverted_cdf") - 1) < 1:
            expect_all = q
        else:
            break
    assert 0 < expect_all < 1
    assert q_star(codes2, d2, pairs="all") == pytest.approx(expect_all)


def test_r2_matches_loop_and_differs_from_fve(acts: np.ndarray) -> None:
    rng = np.random.default_rng(11)
    recon = acts + 0.3 * rng.standard_normal(acts.shape)
    mean = acts.mean(0)
    expect = 1 - sum(np.sum((a - b) ** 2) for a, b in zip(acts, recon, strict=True)) / sum(
        np.sum((a - mean) ** 2) for a in acts
    )
    assert r2(acts, recon) == pytest.approx(expect)
    s = aip_metric(acts).numpy()
    w = np.real(scipy.linalg.sqrtm(s))
    assert r2(acts, recon, s) == pytest.approx(r2(acts @ w, recon @ w))
    shifted = acts + 1.0  # a constant offset: FVE forgives it, R² does not
    assert explained_variance(acts, shifted) == pytest.approx(1.0)
    assert r2(acts, shifted) < 0.99
    assert r2(acts, acts) == 1.0
    with pytest.raises(UserError, match="must match"):
        r2(acts, acts[:, :4])


def test_angle_histograms(acts: np.ndarray) -> None:
    small = acts[:30]
    ang = pairwise_angles(small).numpy()
    expect = [
        math.degrees(math.acos(np.clip(small[a] @ small[b] / np.linalg.norm(small[a]) / np.linalg.norm(small[b]),
                                       -1, 1)))
        for a, b in combinations(range(30), 2)
    ]
    np.testing.assert_allclose(np.sort(ang), np.sort(expect), atol=1e-9)
    s = aip_metric(acts)
    hist = angle_histograms(acts, s, bins=36)
    assert len(hist.edges) == 37 and sum(hist.euclidean) == sum(hist.aip) == hist.n_pairs == 400 * 399 // 2
    # the offset makes Euclidean angles acute; under the AIP they centre near 90°
    assert hist.euclidean_mean < 75 and abs(hist.aip_mean - 90) < abs(hist.euclidean_mean - 90) / 3
    sampled = pairwise_angles(acts, max_pairs=1000, seed=1)
    assert len(sampled) == 1000 and torch.equal(sampled, pairwise_angles(acts, max_pairs=1000, seed=1))
    with pytest.raises(UserError, match="give S"):
        angle_histograms(acts, None)

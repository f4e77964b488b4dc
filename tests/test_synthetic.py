"""Synthetic superposition (generator, store) and recovery metrics against brute-force loops."""

from __future__ import annotations

from itertools import combinations, permutations
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from monosemantic.errors import StoreError, UserError
from monosemantic.metrics import decoder_recovery, gt_per_latent, recovery
from monosemantic.store import ActivationStore
from monosemantic.synthetic import load_ground_truth, make_superposition, superposition_store, write_superposition

FAST_TOY = {"toy_steps": 300, "toy_batch": 256}


@pytest.mark.parametrize("geometry", ["digon", "simplex", "random", "toy"])
def test_shapes_unit_columns_and_mixing(geometry: str) -> None:
    opts = FAST_TOY if geometry == "toy" else {}
    x, codes, w_p = make_superposition(12, 6, 0.8, 500, geometry=geometry, seed=3, **opts)
    assert x.shape == (500, 6) and codes.shape == (500, 12) and w_p.shape == (6, 12)
    assert x.dtype == codes.dtype == w_p.dtype == torch.float32
    np.testing.assert_allclose(np.linalg.norm(w_p.numpy(), axis=0), 1.0, atol=1e-6)
    c, w = codes.double().numpy(), w_p.double().numpy()
    for i in range(0, 500, 97):  # X is the mixture, sample by sample
        np.testing.assert_allclose(x[i].numpy(), sum(c[i, j] * w[:, j] for j in range(12)), atol=1e-6)
    again = make_superposition(12, 6, 0.8, 500, geometry=geometry, seed=3, **opts)
    assert all(torch.equal(a, b) for a, b in zip((x, codes, w_p), again, strict=True))
    other = make_superposition(12, 6, 0.8, 500, geometry=geometry, seed=4, **opts)
    assert not torch.equal(codes, other[1])


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.95])
def test_sparsity_and_magnitudes(sparsity: float) -> None:
    n_cells = 20_000 * 10
    for magnitude in ("uniform", "const1", "exp"):
        _, codes, _ = make_superposition(10, 4, sparsity, 20_000, magnitude=magnitude, seed=1)
        active = codes[codes != 0]
        zero_frac = 1 - active.numel() / n_cells
        sd = (sparsity * (1 - sparsity) / n_cells) ** 0.5
        assert abs(zero_frac - sparsity) <= 5 * sd + 1e-12
        assert bool((codes >= 0).all())
        if magnitude == "uniform":
            assert float(active.max()) <= 1.0 and abs(float(active.mean()) - 0.5) < 0.02
        elif magnitude == "const1":
            assert bool((active == 1).all())
        else:
            assert abs(float(active.mean()) - 1.0) < 0.05


def test_same_seed_same_codes_across_geometries_and_sizes() -> None:
    a = make_superposition(8, 4, 0.7, 50, geometry="digon", seed=5)[1]
    b = make_superposition(8, 4, 0.7, 50, geometry="random", seed=5)[1]
    assert torch.equal(a, b)
    x_big, c_big, _ = make_superposition(8, 4, 0.7, 40_000, seed=5)  # more than one generation chunk
    x_small, c_small, _ = make_superposition(8, 4, 0.7, 50, seed=5)
    assert torch.equal(c_big[:50], c_small) and torch.equal(x_big[:50], x_small)


def test_digon_is_plus_minus_axes() -> None:
    w = make_superposition(7, 4, 0.5, 10, geometry="digon")[2].numpy()
    for i in range(7):
        expect = np.zeros(4)
        expect[i % 4] = 1.0 if i < 4 else -1.0
        np.testing.assert_array_equal(w[:, i], expect)
    gram = w.T @ w
    assert (gram[~np.eye(7, dtype=bool)] <= 0).all()  # non-positive interference


def test_simplex_blocks() -> None:
    # 6 features in 4 dims: a tetrahedron (4 vectors, 3 dims, cos -1/3) and a digon (2 vectors, 1 dim)
    w = make_superposition(6, 4, 0.5, 10, geometry="simplex")[2].double().numpy()
    gram = w.T @ w
    for a, b in combinations(range(6), 2):
        same = (a < 4) == (b < 4)
        expect = (-1 / 3 if a < 4 else -1.0) if same else 0.0
        assert gram[a, b] == pytest.approx(expect, abs=1e-6), (a, b)
    # a single simplex when the features fit: 5 in 4 dims, cos -1/4
    g5 = make_superposition(5, 4, 0.5, 10, geometry="simplex")[2].double().numpy()
    off = (g5.T @ g5)[~np.eye(5, dtype=bool)]
    np.testing.assert_allclose(off, -0.25, atol=1e-6)


def test_toy_geometry_learns_antipodal_pairs() -> None:
    # Elhage et al.: at high sparsity with n = 2d the toy model stores features as antipodal pairs, orthogonal
    # across pairs; random directions in 4 dims interfere much more
    w = make_superposition(8, 4, 0.95, 10, geometry="toy", seed=0, toy_steps=1500, toy_batch=256)[2].double()
    gram = (w.T @ w).numpy()
    np.fill_diagonal(gram, 0.0)
    assert gram.max() < 0.2
    assert (gram.min(1) < -0.9).all()


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((4, 8, 0.5, 10), {}, "n_dims=8 exceeds n_features=4"),
        ((8, 4, 1.0, 10), {}, r"sparsity must lie in \[0, 1\)"),
        ((8, 4, -0.1, 10), {}, r"sparsity must lie in \[0, 1\)"),
        ((8, 4, float("nan"), 10), {}, r"sparsity must lie in \[0, 1\)"),
        ((8, 4, "x", 10), {}, "sparsity must be a number"),
        ((8, 4, 0.5, 0), {}, "n_samples must be a positive"),
        ((0, 4, 0.5, 10), {}, "n_features must be a positive"),
        ((8, -1, 0.5, 10), {}, "n_dims must be a positive"),
        ((8, 4, 0.5, True), {}, "n_samples must be a positive"),
        ((8, 4, 0.5, 10), {"geometry": "hexagon"}, "unknown geometry 'hexagon'"),
        ((8, 4, 0.5, 10), {"magnitude": "gauss"}, "unknown magnitude 'gauss'"),
        ((9, 4, 0.5, 10), {"geometry": "digon"}, "at most 2\\*n_dims"),
        ((9, 4, 0.5, 10), {"geometry": "simplex"}, "at most 2\\*n_dims"),
        ((8, 4, 0.5, 10), {"seed": -1}, "seed must be"),
    ],
)
def test_bad_input_is_one_line(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(UserError, match=match) as err:
        make_superposition(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_store_round_trip(tmp_path: Path) -> None:
    x, codes, w_p = make_superposition(10, 5, 0.9, 300, seed=2)
    store = write_superposition(tmp_path / "s", x, codes, w_p, params={"seed": 2}, shard_rows=128)
    back = ActivationStore.open(tmp_path / "s", verify=True)
    assert back.n_rows == back.n_items == 300 and back.hooks == ["x_p"] and back.width("x_p") == 5
    assert len(back.manifest.shards) == 3
    assert torch.equal(back.rows("x_p"), x)
    assert torch.equal(back.rows(None, 17, 211), store.rows(None, 17, 211))
    np.testing.assert_array_equal(back.labels, (codes != 0).numpy().astype(np.int64))
    assert back.label_names == [f"gt{i}" for i in range(10)]
    gt = load_ground_truth(back)
    assert torch.equal(gt.codes, codes) and torch.equal(gt.w_p, w_p) and gt.params == {"seed": 2}
    with pytest.raises(StoreError, match="already holds a finished store"):
        write_superposition(tmp_path / "s", x, codes, w_p)


def test_store_argmax_labels_and_generator_wrapper(tmp_path: Path) -> None:
    store = superposition_store(tmp_path / "a", 6, 3, 0.9, 200, geometry="digon", labels="argmax", seed=1)
    _, codes, _ = make_superposition(6, 3, 0.9, 200, geometry="digon", seed=1)
    c = codes.numpy()
    expect = [int(np.argmax(r)) if (r != 0).any() else 6 for r in c]
    assert store.labels.tolist() == expect and 6 in expect
    assert store.label_names[-1] == "none"
    assert load_ground_truth(tmp_path / "a").params["geometry"] == "digon"
    none = superposition_store(tmp_path / "n", 6, 3, 0.9, 20, labels="none")
    assert none.labels is None
    with pytest.raises(UserError, match="unknown labels mode"):
        superposition_store(tmp_path / "b", 6, 3, 0.9, 20, labels="first")
    with pytest.raises(StoreError, match=r"no ground_truth\.npz"):
        load_ground_truth(tmp_path / "missing")


# ---------------------------------------------------------------- recovery, against loops


def loop_cos(w_dec: np.ndarray, w_p: np.ndarray) -> np.ndarray:
    out = np.zeros((w_dec.shape[0], w_p.shape[1]))
    for j in range(w_dec.shape[0]):
        for i in range(w_p.shape[1]):
            a, b = w_dec[j], w_p[:, i]
            na, nb = np.sqrt(a @ a), np.sqrt(b @ b)
            out[j, i] = abs(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0
    return out


def loop_mcc(cos: np.ndarray) -> float:
    f, n = cos.shape
    if f >= n:  # every feature gets a distinct latent
        best = max(sum(cos[p[i], i] for i in range(n)) for p in permutations(range(f), n))
        return best / n
    best = max(sum(cos[j, p[j]] for j in range(f)) for p in permutations(range(n), f))
    return best / f


@pytest.mark.parametrize(("f", "n"), [(6, 5), (4, 6), (5, 5)])
def test_decoder_recovery_matches_loops(f: int, n: int) -> None:
    rng = np.random.default_rng(f * 10 + n)
    w_p = rng.standard_normal((4, n))
    w_p /= np.linalg.norm(w_p, axis=0)
    w_dec = rng.standard_normal((f, 4))
    w_dec[0] = 0.0  # a dead, all-zero decoder row points nowhere
    cos = loop_cos(w_dec, w_p)
    res = decoder_recovery(torch.from_numpy(w_dec), torch.from_numpy(w_p))
    assert res.mmcs_gt == pytest.approx(np.mean([cos[:, i].max() for i in range(n)]))
    assert res.mmcs_sae == pytest.approx(np.mean([cos[j].max() for j in range(f)]))
    for tau in (0.9, 0.99):
        assert res.frac_recovered[tau] == pytest.approx(np.mean([cos[:, i].max() >= tau for i in range(n)]))
    assert res.mcc == pytest.approx(loop_mcc(cos))
    assert res.uniqueness == pytest.approx(len({int(np.argmax(cos[j])) for j in range(f)}) / f)


def test_perfect_and_junk_decoders() -> None:
    _, _, w_p = make_superposition(16, 8, 0.9, 10, seed=0)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    signs = torch.where(torch.arange(16) % 2 == 0, 1.0, -1.0)[:, None]
    w_dec = (w_p.T[perm] * signs) * 3.0  # permuted, sign-flipped, rescaled: still the same features
    res = decoder_recovery(w_dec, w_p)
    for key in ("mmcs_gt", "mmcs_sae", "mcc", "uniqueness"):
        assert getattr(res, key) == pytest.approx(1.0, abs=1e-6), key
    assert res.frac_recovered == {0.9: 1.0, 0.99: 1.0}
    assert sorted(zip(res.matching.latent, res.matching.feature, strict=True)) == sorted(
        (j, int(perm[j])) for j in range(16)
    )
    junk = torch.cat([w_dec, torch.randn(16, 8, generator=torch.Generator().manual_seed(1))])
    res2 = decoder_recovery(junk, w_p)
    assert res2.mmcs_gt == pytest.approx(1.0, abs=1e-6) and res2.mmcs_sae < 0.95
    assert res2.uniqueness <= 0.5 + 1e-9  # 32 latents can name at most 16 distinct features
    broken = decoder_recovery(torch.randn(16, 8, generator=torch.Generator().manual_seed(2)), w_p)
    assert broken.mmcs_gt < 0.9 and broken.frac_recovered[0.99] < 0.5


def test_recovery_with_latents_against_loops() -> None:
    rng = np.random.default_rng(7)
    n, f, d, big_n = 5, 6, 4, 200
    w_p = rng.standard_normal((d, n))
    w_p /= np.linalg.norm(w_p, axis=0)
    w_enc = rng.standard_normal((d, f))
    w_dec = rng.standard_normal((f, d))
    b = rng.standard_normal(f) * 0.1
    codes = np.where(rng.random((big_n, n)) < 0.3, rng.random((big_n, n)), 0.0)
    x = codes @ w_p.T
    latents = np.maximum(x @ w_enc + b, 0.0)
    latents[:, 2] = 0.0  # a dead latent
    x_hat = latents @ w_dec

    def encode(t: torch.Tensor) -> torch.Tensor:
        return torch.relu(t.double() @ torch.from_numpy(w_enc) + torch.from_numpy(b))

    res = recovery(torch.from_numpy(w_dec), torch.from_numpy(w_p), latents=torch.from_numpy(latents),
                   codes=torch.from_numpy(codes), x=torch.from_numpy(x), x_hat=torch.from_numpy(x_hat), encode=encode)
    pairs = list(zip(res.matching.latent, res.matching.feature, strict=True))
    assert len(pairs) == n
    expect = {}
    for scale in ("decoder_norm", "none"):
        lgt = 0.0
        for s in range(big_n):
            pred = np.zeros(n)
            for j, i in pairs:  # a latent's magnitude along its unit direction, or the raw latent
                pred[i] = latents[s, j] * (np.linalg.norm(w_dec[j]) if scale == "decoder_norm" else 1.0)
            lgt += sum((codes[s, i] - pred[i]) ** 2 for i in range(n))
        expect[scale] = lgt / big_n
        got = recovery(torch.from_numpy(w_dec), torch.from_numpy(w_p), latents=torch.from_numpy(latents),
                       codes=torch.from_numpy(codes), l_gt_scale=scale).l_gt
        assert got == pytest.approx(expect[scale]), scale
    assert res.l_gt == pytest.approx(expect["decoder_norm"]) != pytest.approx(expect["none"])
    assert res.l0 == pytest.approx(np.mean([(latents[s] != 0).sum() for s in range(big_n)]))
    assert res.dead_fraction == pytest.approx(np.mean([not latents[:, j].any() for j in range(f)]))
    assert res.dead_fraction >= 1 / f
    var_x = sum(np.var(x[:, k]) for k in range(d))
    var_r = sum(np.var(x[:, k] - x_hat[:, k]) for k in range(d))
    assert res.fve == pytest.approx(1 - var_r / var_x)
    precs, recs = [], []
    for j, i in pairs:
        fires, act = latents[:, j] != 0, codes[:, i] != 0
        if fires.sum():
            precs.append((fires & act).sum() / fires.sum())
        recs.append((fires & act).sum() / act.sum())
    assert res.precision == pytest.approx(np.mean(precs)) and res.recall == pytest.approx(np.mean(recs))
    resp = np.maximum(w_p.T @ w_enc + b, 0.0)  # [n, f]: latent j's response to feature i alone
    counts = []
    for j in range(f):
        peak = max(resp[i, j] for i in range(n))
        if peak > 0:
            counts.append(sum(resp[i, j] > 0.1 * peak for i in range(n)))
    assert res.gt_per_latent == pytest.approx(np.mean(counts)) and res.n_responsive == len(counts)
    assert gt_per_latent(resp).gt_per_latent == pytest.approx(np.mean(counts))


def test_recovery_bad_input() -> None:
    w_p = torch.randn(4, 6)
    with pytest.raises(UserError, match="same n_dims"):
        recovery(torch.randn(8, 5), w_p)
    with pytest.raises(UserError, match="the SAE width must match"):
        recovery(torch.randn(8, 4), w_p, latents=torch.randn(10, 7))
    with pytest.raises(UserError, match="the SAE width must match"):
        recovery(torch.randn(8, 4), w_p, responses=torch.randn(6, 9))
    with pytest.raises(UserError, match="give both x and x_hat"):
        recovery(torch.randn(8, 4), w_p, x=torch.randn(3, 4))
    with pytest.raises(UserError, match="need the SAE latents"):
        recovery(torch.randn(8, 4), w_p, codes=torch.randn(3, 6))


def test_ideal_digon_sae_shrinks_only_under_low_sparsity() -> None:
    # the paper's shrinking failure: the tied SAE W_m = W_pᵀ recovers digon codes exactly only when at most
    # one feature of each antipodal pair is active, which extreme sparsity makes almost certain
    def l_gt_at(sparsity: float) -> float:
        x, codes, w_p = make_superposition(8, 4, sparsity, 2000, geometry="digon", seed=0)
        latents = torch.relu(x @ w_p)
        return recovery(w_p.T, w_p, latents=latents, codes=codes).l_gt

    assert l_gt_at(0.99) < 1e-3 < 0.05 < l_gt_at(0.0)


def test_sparse_codes_store_is_compact(tmp_path: Path) -> None:
    x, codes, w_p = make_superposition(50, 10, 0.99, 1000, seed=0)
    write_superposition(tmp_path / "c", x, codes, w_p, labels="none")
    with np.load(tmp_path / "c" / "ground_truth.npz") as z:
        csr = sp.csr_matrix((z["values"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    np.testing.assert_array_equal(csr.toarray(), codes.numpy())
    assert csr.nnz == int((codes != 0).sum()) < codes.numel() // 20


def test_write_bad_shapes_and_toy_options(tmp_path: Path) -> None:
    x, codes, w_p = make_superposition(6, 3, 0.5, 20)
    with pytest.raises(UserError, match="shapes do not fit"):
        write_superposition(tmp_path / "w", x, codes[:, :5], w_p)
    with pytest.raises(UserError, match="toy_importance must lie in"):
        make_superposition(6, 3, 0.5, 20, geometry="toy", toy_importance=0.0)
    with pytest.raises(UserError, match="toy_steps must be a positive"):
        make_superposition(6, 3, 0.5, 20, geometry="toy", toy_steps=0)
    assert not (tmp_path / "w").exists()

"""compare: pairing and similarity scores against small brute-force implementations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.stats import spearmanr

from monosemantic.compare import (
    CrossMoments,
    Pairing,
    TopKActs,
    linear_cka,
    pair_features,
    permutation_test,
    procrustes_residual,
    random_subset_baseline,
    rsa,
    svcca,
)
from monosemantic.compare.filters import apply_filters, junk_filter, low_corr_filter, shared_token_filter
from monosemantic.errors import UserError


def dense_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The reference computation: z-score columns (eps 1e-8 in the std), then Z_Aᵀ Z_B / T."""
    za = (a - a.mean(0)) / (a.std(0) + 1e-8)
    zb = (b - b.mean(0)) / (b.std(0) + 1e-8)
    return za.T @ zb / len(a)


def topk_acts(t: int, f: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((t, f))
    np.put_along_axis(x, rng.random((t, f)).argsort(1)[:, :k], rng.exponential(size=(t, k)), axis=1)
    return x


def correlated_pair(t: int = 400, f: int = 24, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    a = topk_acts(t, f, k, 0)
    perm = np.random.default_rng(1).permutation(f)
    b = a[:, perm] * (1 + 0.1 * np.random.default_rng(2).random((t, f)))  # B feature j ≈ A feature perm[j]
    return a, b


def test_many_to_one_matches_dense_argmax() -> None:
    a, b = correlated_pair()
    c = dense_corr(a, b)
    p = pair_features(a, b, chunk_rows=64)
    assert np.array_equal(p.a_index, c.argmax(0))
    np.testing.assert_allclose(p.corr, c.max(0), atol=1e-9)
    assert p.n_tokens == len(a) and p.n_pairs == b.shape[1]


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("form", ["dense", "topk", "sparse_csr"])
def test_sparse_pairing_equals_dense(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    a = topk_acts(300, 120, 4, 3)
    b = topk_acts(300, 90, 3, 4)
    b[:, :10] += a[:, :10]  # some real structure
    a, b = a[:, :40], b[:, :30]  # few enough nonzeros for the sparse path even as dense arrays
    import monosemantic.compare.pairing as P

    def no_dense(_x: object) -> None:
        raise AssertionError("the sparse path formed a dense chunk")

    monkeypatch.setattr(P, "as_dense", no_dense)
    c = dense_corr(a, b)
    if form == "topk":
        ta = TopKActs.from_dense(torch.from_numpy(a), 10)  # more slots than nonzeros: zero padding adds nothing
        tb = TopKActs.from_dense(torch.from_numpy(b), 13)
        args = (ta, tb)
    elif form == "sparse_csr":
        args = (torch.from_numpy(a).to_sparse_csr(), torch.from_numpy(b).to_sparse_csr())
    else:
        args = (a, b)
    mom = CrossMoments(40, 30)
    for lo in range(0, 300, 70):
        mom.add(*(x.slice(lo, lo + 70) if isinstance(x, TopKActs) else
                  (x[lo:lo + 70] if not isinstance(x, torch.Tensor) else
                   torch.from_numpy(a if x.shape[1] == 40 else b)[lo:lo + 70].to_sparse_csr()) for x in args))
    np.testing.assert_allclose(mom.correlation().numpy(), c, atol=1e-9)
    p = pair_features(*args, chunk_rows=50)
    assert np.array_equal(p.a_index, c.argmax(0))


def test_threaded_sparse_accumulation() -> None:
    a = topk_acts(40000, 60, 4, 7)
    b = topk_acts(40000, 50, 4, 8)
    b[:, :20] += a[:, 10:30]
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # 160,000 nonzeros: the scatter is split over two threads by rows
    try:
        mom = CrossMoments(60, 50)
        mom.add(TopKActs.from_dense(torch.from_numpy(a), 4), TopKActs.from_dense(torch.from_numpy(b), 8))
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(mom.correlation().numpy(), dense_corr(a, b), atol=1e-9)


def test_dense_path_with_large_means_is_precise() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6)) + 1e4  # neurons with large means: raw moments would cancel catastrophically
    b = a[:, ::-1] * 2 + rng.normal(size=(500, 6)) * 0.1 - 3e4
    np.testing.assert_allclose(moments_from(a, b).correlation().numpy(), dense_corr(a, b), atol=1e-6)


def moments_from(a: np.ndarray, b: np.ndarray) -> CrossMoments:
    m = CrossMoments(a.shape[1], b.shape[1])
    for lo in range(0, len(a), 128):
        m.add(a[lo:lo + 128], b[lo:lo + 128])
    return m


def test_one_to_one_modes_and_hungarian() -> None:
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(5)
    a = rng.random((200, 6))
    b = np.c_[a[:, 0], a[:, 0] + 0.5 * rng.random(200), a[:, 1], rng.random((200, 2))]
    c = dense_corr(a, b)
    m2o = pair_features(a, b)
    first = pair_features(a, b, "one_to_one_first")
    best = pair_features(a, b, "one_to_one_best")
    assert m2o.a_index[0] == m2o.a_index[1] == 0
    assert first.a_index[0] == 0 and first.a_index[1] == -1 and np.isnan(first.corr[1])
    winner = int(np.argmax(c[0, :2]))
    assert best.a_index[winner] == 0 and best.a_index[1 - winner] == -1
    for p in (first, best):
        a_used = p.a_index[p.kept]
        assert len(set(a_used.tolist())) == len(a_used)
    h = pair_features(a, b, "hungarian")
    rows, cols = linear_sum_assignment(-c)
    assert np.isclose(np.nansum(h.corr), c[rows, cols].sum())
    assert h.n_pairs == 5 and len(set(h.a_index[h.kept].tolist())) == 5


def test_pairing_bad_input() -> None:
    with pytest.raises(UserError, match="same tokens"):
        pair_features(np.zeros((5, 3)), np.zeros((6, 3)))
    with pytest.raises(UserError, match="unknown pairing"):
        pair_features(np.zeros((5, 3)), np.zeros((5, 3)), "greedy")
    with pytest.raises(UserError, match="2-D"):
        pair_features(np.zeros(5), np.zeros((5, 3)))


# --------------------------------------------------------------------------------------------- scores


def textbook_cca(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Canonical correlations: singular values of Q_xᵀ Q_y for orthonormal bases of the centred data."""
    qx, _ = np.linalg.qr(x - x.mean(0))
    qy, _ = np.linalg.qr(y - y.mean(0))
    return np.linalg.svd(qx.T @ qy, compute_uv=False)


def textbook_svcca(x: np.ndarray, y: np.ndarray, k_rule: str) -> float:
    def reduce(m: np.ndarray) -> np.ndarray:
        mc = m - m.mean(0)
        u, s, _ = np.linalg.svd(mc, full_matrices=False)
        if k_rule == "k1":
            k = 1
        else:
            frac = np.cumsum(s**2) / np.sum(s**2)
            k = int(np.argmax(frac >= 0.99)) + 1
        return u[:, :k] * s[:k]

    return float(textbook_cca(reduce(x), reduce(y)).mean())


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_svcca_against_textbook_cca() -> None:
    x = unit_rows(60, 8, 0)
    low_rank = np.random.default_rng(1).normal(size=(60, 3)) @ np.random.default_rng(2).normal(size=(3, 12))
    y = np.c_[x[:, :4] @ np.random.default_rng(3).normal(size=(4, 5)), low_rank[:, :5]]
    for mode, rule in (("variance_99", "v99"), ("reference_k1", "k1")):
        assert svcca(x, y, mode) == pytest.approx(textbook_svcca(x, y, rule), abs=1e-6)
    # k = 1: |Pearson| between the first-PC projections
    pcx = (x - x.mean(0)) @ np.linalg.svd(x - x.mean(0))[2][0]
    pcy = (y - y.mean(0)) @ np.linalg.svd(y - y.mean(0))[2][0]
    assert svcca(x, y, "reference_k1") == pytest.approx(abs(np.corrcoef(pcx, pcy)[0, 1]), abs=1e-9)
    # the same space under a rotation and a change of width is perfectly similar
    rot = np.linalg.qr(np.random.default_rng(4).normal(size=(8, 8)))[0]
    assert svcca(x, np.c_[x @ rot, np.zeros((60, 3))]) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(UserError, match="unknown SVCCA mode"):
        svcca(x, y, "all")


def test_rsa_against_scipy_spearman() -> None:
    x, y = unit_rows(30, 5, 0), unit_rows(30, 7, 1)
    y[:, :5] += 2 * x
    iu = np.triu_indices(30, 1)
    expected = spearmanr(np.corrcoef(x)[iu], np.corrcoef(y)[iu]).statistic
    assert rsa(x, y) == pytest.approx(expected, abs=1e-9)


def test_linear_cka_and_procrustes() -> None:
    x = unit_rows(40, 6, 0)
    y = np.random.default_rng(1).normal(size=(40, 9))
    xc, yc = x - x.mean(0), y - y.mean(0)
    hsic = lambda k, l: np.trace(k @ l)  # noqa: E731  (CKA through centred Gram matrices)
    kx, ky = xc @ xc.T, yc @ yc.T
    assert linear_cka(x, y) == pytest.approx(hsic(kx, ky) / np.sqrt(hsic(kx, kx) * hsic(ky, ky)), abs=1e-9)
    xp = np.c_[xc / np.linalg.norm(xc), np.zeros((40, 3))]
    yp = yc / np.linalg.norm(yc)
    r, _ = orthogonal_procrustes(yp, xp)
    assert procrustes_residual(x, y) == pytest.approx(np.linalg.norm(xp - yp @ r) ** 2, abs=1e-9)
    rot = np.linalg.qr(np.random.default_rng(2).normal(size=(6, 6)))[0]
    assert procrustes_residual(x, 3 * x @ rot) == pytest.approx(0, abs=1e-9)
    assert linear_cka(x, 3 * x @ rot) == pytest.approx(1, abs=1e-9)


@pytest.mark.parametrize("score", ["svcca", "svcca:reference_k1", "rsa", "cka"])
def test_permutation_test_matches_brute_force(score: str) -> None:
    from monosemantic.compare.similarity import SCORES

    x = unit_rows(25, 6, 0)
    y = x @ np.random.default_rng(1).normal(size=(6, 6)) + 0.5 * unit_rows(25, 6, 2)
    obs, null_mean, p = permutation_test(x, y, score, n_perm=50, seed=3)
    rng = np.random.default_rng(3)
    fn = SCORES[score]
    null = np.array([fn(x, y[rng.permutation(25)]) for _ in range(50)])
    assert obs == pytest.approx(fn(x, y), abs=1e-9)
    assert null_mean == pytest.approx(null.mean(), abs=1e-5 if score.startswith("svcca") else 1e-9)
    assert p == pytest.approx(((null >= obs).sum() + 1) / 51)
    assert p < 0.1


def test_svcca_bf16_null_keeps_the_float32_p_value() -> None:
    """bf16 products for the shuffles: every shuffle near the observation is redone in float32, so p is exact;
    a weak pairing puts the observation inside the null, where that recheck matters."""
    from monosemantic.compare.similarity import SvccaNull

    x = unit_rows(400, 40, 0)
    y = unit_rows(400, 33, 1)  # unrelated to x
    exact = permutation_test(x, y, "svcca", n_perm=200, seed=4, null_dtype="float32")
    fast = permutation_test(x, y, "svcca", n_perm=200, seed=4, null_dtype="bfloat16")
    assert 0.05 < exact[2] < 0.95  # the observation sits inside the null
    assert fast[0] == exact[0] and fast[2] == exact[2]
    assert fast[1] == pytest.approx(exact[1], abs=1e-4)
    # auto keeps float32 for small products; the recheck margin comes from a measured error
    from monosemantic.compare.similarity import svcca_prepare

    qx, qy = svcca_prepare(x, "variance_99"), svcca_prepare(y, "variance_99")
    assert SvccaNull(qx, qy).dtype == "float32"
    fast_null = SvccaNull(qx, qy, "bfloat16")
    rng = np.random.default_rng(4)
    fast_null(np.stack([rng.permutation(400) for _ in range(5)]), exact[0])
    assert 0 < fast_null.margin < 1e-2
    with pytest.raises(UserError, match="null dtype"):
        permutation_test(x, y, "svcca", n_perm=5, null_dtype="float16")


def test_permutation_p_value_formula_and_distance() -> None:
    x = unit_rows(10, 3, 0)
    obs, _, p = permutation_test(x, x, lambda _a, _b: 0.0, n_perm=9)
    assert obs == 0 and p == 1.0  # every null ties the observation: (9 + 1) / (9 + 1)
    _, _, p = permutation_test(x, x @ np.eye(3)[::-1], "procrustes", n_perm=19)
    assert p == pytest.approx(1 / 20)  # a distance: nulls are larger, so none counts
    with pytest.raises(UserError, match="at least 3"):
        permutation_test(x[:2], x[:2])
    with pytest.raises(UserError, match="n_perm"):
        permutation_test(x, x, n_perm=0)


def test_random_subset_baseline() -> None:
    xa, yb = unit_rows(50, 5, 0), unit_rows(40, 6, 1)
    mean, std = random_subset_baseline(xa, yb, 10, "svcca:reference_k1", n_draws=20)
    assert 0 <= mean <= 1 and std >= 0
    partners = np.arange(40)
    m2, _ = random_subset_baseline(xa[:40], xa[:40], 10, "rsa", n_draws=5, partners=partners, kind="max_corr")
    assert m2 == pytest.approx(1.0)
    with pytest.raises(UserError, match="random subset"):
        random_subset_baseline(xa, yb, 2)
    # many-to-one pairing can keep more pairs than A has features: A's rows are then drawn with replacement
    m3, _ = random_subset_baseline(xa[:20], yb, 30, "rsa", n_draws=3)
    assert -1 <= m3 <= 1
    with pytest.raises(UserError, match="B's count"):
        random_subset_baseline(xa, yb, 41)


# --------------------------------------------------------------------------------------------- filters


def test_filters_in_order() -> None:
    p = Pairing(np.array([0, 1, 1, 2]), np.array([0.9, 0.5, 0.6, 0.05]), "many_to_one", 100)
    top_a = [["cat", " dog"], ["sun", "moon"], ["the", "a"]]
    top_b = [["dog", "x"], ["moon", "\n"], ["sun", "y"], ["the", "b"]]
    assert junk_filter(p, top_a, top_b).kept.tolist() == [True, False, True, True]
    assert shared_token_filter(p, top_a, top_b).kept.tolist() == [True, True, True, True]
    assert low_corr_filter(p, 0.1).kept.tolist() == [True, True, True, False]
    out, counts = apply_filters(p, top_a, top_b, one_to_one_how="first")
    assert out.kept.tolist() == [True, False, True, False]
    assert counts == {"paired": 4, "after_junk": 3, "after_shared_tokens": 3, "after_one_to_one": 3, "kept": 2}
    top_b[0] = ["cow"]
    assert not shared_token_filter(p, top_a, top_b).kept[0]


# --------------------------------------------------------------------------------------------- concepts


def test_concept_membership_needs_keyword_token_and_whole_word_context() -> None:
    from monosemantic.compare import CONCEPTS, members

    tops = [[" day", "x"], ["Days"], [" King"], ["moon"]]
    ctxs = [["the day was", "x"], ["three Days later"], ["the King, said"], ["honeymoon trip"]]
    assert members(tops, ctxs, CONCEPTS["Time"]).tolist() == [0]  # "Days" is no keyword
    assert members(tops, ctxs, CONCEPTS["People/Roles"]).tolist() == [2]  # case-insensitive, "," stripped
    assert members(tops, ctxs, CONCEPTS["Nature"]).tolist() == []  # "moon" only inside "honeymoon"
    assert len(CONCEPTS) == 8 and len(CONCEPTS["MonthNames"]) == 12


def test_concept_files(tmp_path: Path) -> None:
    from monosemantic.compare import load_concepts

    root = tmp_path
    (root / "c.json").write_text('{"Colours": ["red", "blue", "red"]}')
    assert load_concepts(root / "c.json") == {"Colours": ("red", "blue")}
    (root / "c.toml").write_text("Colours = [\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_concepts(root / "c.toml")
    (root / "e.toml").write_text("Colours = []")
    with pytest.raises(UserError, match="'Colours' is empty"):
        load_concepts(root / "e.toml")
    (root / "n.toml").write_text("")
    with pytest.raises(UserError, match="no concept sets"):
        load_concepts(root / "n.toml")
    with pytest.raises(UserError, match="does not exist"):
        load_concepts(root / "missing.toml")


def test_sparse_candidate_hungarian_equals_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    import monosemantic.compare.pairing as P

    rng = np.random.default_rng(9)
    a = rng.random((300, 12))
    b = a[:, :10] + rng.random((300, 10))
    dense = pair_features(a, b, "hungarian")
    monkeypatch.setattr(P, "DENSE_HUNGARIAN_MAX", 0)  # the top-16 candidate graph holds every A feature here
    sparse = pair_features(a, b, "hungarian")
    assert np.array_equal(dense.a_index, sparse.a_index)
    np.testing.assert_allclose(dense.corr, sparse.corr)


def test_decoder_matching_against_exhaustive_search() -> None:
    import itertools

    from monosemantic.compare import decoder_matching

    wa, wb = unit_rows(6, 4, 0), unit_rows(6, 4, 1)
    m = decoder_matching(wa, wb)
    cos = np.abs(wa @ wb.T)
    best = max(itertools.permutations(range(6)), key=lambda p: sum(cos[p[j], j] for j in range(6)))
    assert m.a_index.tolist() == list(best)
    assert m.mean_abs_cos == pytest.approx(np.mean([cos[best[j], j] for j in range(6)]), abs=1e-12)
    # a permuted, rescaled and sign-flipped copy is recovered exactly, far above chance
    w = unit_rows(300, 16, 2)
    perm = np.random.default_rng(3).permutation(300)
    m = decoder_matching(w, -3.0 * w[perm])
    assert (m.a_index == perm).all() and m.mean_abs_cos == pytest.approx(1.0)
    assert m.random_mean < 0.8  # chance in 16 dimensions
    with pytest.raises(UserError, match="one width"):
        decoder_matching(w, unit_rows(300, 12, 4))


def test_decoder_matching_candidate_graph_equals_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    import monosemantic.compare.matching as matching

    w = unit_rows(200, 8, 5)
    noisy = w[np.random.default_rng(6).permutation(200)] + 0.05 * unit_rows(200, 8, 7)
    dense = matching.decoder_matching(w, noisy)
    monkeypatch.setattr(matching, "DENSE_MAX", 10)
    graph = matching.decoder_matching(w, noisy)
    assert (graph.a_index == dense.a_index).all()
    assert graph.mean_abs_cos == pytest.approx(dense.mean_abs_cos, abs=1e-12)

"""FMS against a brute force built from scikit-learn trees (one stump refit per removal, spec C.2/C.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.tree import DecisionTreeClassifier

from monosemantic.errors import UserError
from monosemantic.metrics import fms, fms_split
from monosemantic.metrics.stumps import best_column_splits, pick_root, sklearn_rand_state


def walk_accuracy(clf: DecisionTreeClassifier, x: np.ndarray, y: np.ndarray, depth: int, pure_above: bool) -> float:
    """Accuracy of the tree cut at `depth` by walking each sample down from the root."""
    t = clf.tree_
    hits = []
    for row, label in zip(x, y, strict=True):
        node, d = 0, 0
        while t.children_left[node] >= 0 and d < depth:
            go_left = row[t.feature[node]] <= t.threshold[node]
            node = t.children_left[node] if go_left else t.children_right[node]
            d += 1
        if pure_above and t.children_left[node] < 0 and d < depth:
            hits.append(True)  # the reference's get_tree_stats counts leaves above the cut as correct
        else:
            hits.append(bool(clf.classes_[t.value[node, 0].argmax()]) == label)
    return float(np.mean(hits))


def brute_fms(x: np.ndarray, y: np.ndarray, ps: tuple[int, ...], holdout: bool, seed: int, compat: str) -> dict:
    tr, te = fms_split(len(x), seed) if holdout else (np.arange(len(x)), np.arange(len(x)))
    out: dict = {"acc0": [], "root": [], "global": [], "fms": {p: [] for p in ps}, "local": {p: [] for p in ps}}
    for c in range(y.shape[1]):
        yc = y[:, c]
        zeroed = x[tr].copy()
        accs, roots = [], []
        for _ in range(max(ps) + 1):
            stump = DecisionTreeClassifier(criterion="gini", max_depth=1, random_state=seed).fit(zeroed, yc[tr])
            accs.append(float(np.mean(stump.predict(x[te]) == yc[te])))
            f = int(stump.tree_.feature[0])
            roots.append(f if f >= 0 else -1)
            if f >= 0:
                zeroed[:, f] = 0.0
        full = DecisionTreeClassifier(criterion="gini", random_state=seed).fit(x[tr], yc[tr])
        d = full.get_depth()
        if compat == "paper":
            cum = [walk_accuracy(full, x[te], yc[te], i, False) for i in range(1, d + 1)]
        else:
            cum = [walk_accuracy(full, x[te], yc[te], i, True) for i in [0, *range(2, d + 1)]]
        glob = 1.0 - sum(a - accs[0] for a in cum) / d if d else 1.0
        if compat == "paper":
            glob = min(max(glob, 0.0), 1.0)
        out["acc0"].append(accs[0])
        out["root"].append(roots[0])
        out["global"].append(glob)
        for p in ps:
            loc = 2 * (accs[0] - accs[p])
            if compat == "paper":
                loc = min(max(loc, 0.0), 1.0)
            out["local"][p].append(loc)
            out["fms"][p].append(accs[0] * (loc + glob) / 2)
    return out


def random_latents(rng: np.random.Generator, n: int, k: int, integer: bool) -> np.ndarray:
    x = rng.random((n, k)) * (rng.random((n, k)) < 0.4)
    return (np.round(x * 3) if integer else x).astype(np.float32)


@pytest.mark.parametrize("compat", ["paper", "reference_code"])
@pytest.mark.parametrize("holdout", [True, False])
@pytest.mark.parametrize("integer", [False, True])  # integer values: many exact ties between latents
def test_fms_matches_sklearn_brute_force(compat: str, holdout: bool, integer: bool) -> None:
    rng = np.random.default_rng([compat == "paper", holdout, integer])
    for trial in range(3):
        n, k = int(rng.integers(30, 90)), int(rng.integers(3, 25))
        x = random_latents(rng, n, k, integer)
        labels = rng.integers(0, 3, n)
        x[:, 1] += (labels == 1) * 0.7  # planted signal for class 1
        got = fms(torch.from_numpy(x), torch.from_numpy(labels), p=(1, 3), holdout=holdout, seed=trial,
                  compat=compat, balance=False)
        want = brute_fms(x, labels[:, None] == np.unique(labels)[None, :], (1, 3), holdout, trial, compat)
        assert got["concepts"] == [0, 1, 2]
        np.testing.assert_allclose(got["acc0"], want["acc0"], atol=1e-12)
        np.testing.assert_array_equal(got["root"], want["root"])
        np.testing.assert_allclose(got["global"], want["global"], atol=1e-12)
        for p in (1, 3):
            np.testing.assert_allclose(got["local"][p], want["local"][p], atol=1e-12)
            np.testing.assert_allclose(got["fms"][p], want["fms"][p], atol=1e-12)
            assert got["fms_mean"][p] == pytest.approx(np.mean(want["fms"][p]), abs=1e-12)


def test_sparse_latents_take_the_csc_path_and_match() -> None:
    rng = np.random.default_rng(4)
    n, k = 150, 60
    x = (rng.random((n, k)) * (rng.random((n, k)) < 0.04)).astype(np.float32)  # below SPARSE_BELOW
    labels = rng.integers(0, 2, n)
    x[:, 3] += (labels == 1) * (rng.random(n) < 0.6)
    for compat in ("paper", "reference_code"):
        got = fms(x, labels, p=(1, 2), seed=3, compat=compat, balance=False)
        want = brute_fms(x, labels[:, None] == np.array([[0, 1]]), (1, 2), compat == "paper", 3, compat)
        np.testing.assert_allclose(got["global"], want["global"], atol=1e-12)
        np.testing.assert_allclose(got["fms"][2], want["fms"][2], atol=1e-12)


def test_planted_latent_is_the_root_and_binary_columns_work() -> None:
    rng = np.random.default_rng(5)
    n, k = 200, 40
    x = random_latents(rng, n, k, False)
    concept = rng.random(n) < 0.5
    x[:, 17] = concept * (1.0 + rng.random(n))  # a clean detector of the concept
    y = np.stack([concept, rng.random(n) < 0.3], axis=1)
    got = fms(x, y, p=1, seed=2, balance=False)
    want = brute_fms(x, y, (1,), True, 2, "paper")
    assert got["root"][0] == 17 and got["acc0"][0] == 1.0
    np.testing.assert_allclose(got["fms"][1], want["fms"][1], atol=1e-12)
    # the full tree cut at depth 1 is the stump: acc_cum_1 == acc_0
    assert all(rows[1] == a for rows, a in zip(got["acc_by_depth"], got["acc0"], strict=True) if len(rows) > 1)


@pytest.mark.parametrize("sparse", [False, True])  # sorted full columns / non-zero entries + a zero block
def test_stump_search_matches_sklearn_with_ties_and_zeroed_columns(sparse: bool) -> None:
    rng = np.random.default_rng(11)
    for trial in range(60):
        n, k = int(rng.integers(5, 50)), int(rng.integers(1, 30))
        if trial % 2:
            x = rng.integers(-1, 3, (n, k)).astype(np.float32)  # ties everywhere, negatives around the zeros
        else:
            x = (rng.normal(size=(n, k)) * (rng.random((n, k)) < 0.5)).astype(np.float32)
            x[0, 0] = 5e-8  # closer to 0 than FEATURE_THRESHOLD: not a split point
        x[:, :: max(1, k // 3)] = 1.0  # constant columns shift scikit-learn's draw order
        y = rng.random(n) < 0.5
        if y.all() or not y.any():
            continue
        zeroed = rng.choice(k, size=min(k, 2), replace=False)
        xz = x.copy()
        xz[:, zeroed] = 0.0
        clf = DecisionTreeClassifier(max_depth=1, random_state=trial).fit(xz, y)
        splits = best_column_splits(torch.from_numpy(x), torch.from_numpy(y[:, None]), sparse=sparse)
        unusable = splits.constant.copy()
        unusable[zeroed] = True
        col = pick_root(splits.proxy[0], unusable, sklearn_rand_state(trial))
        assert col == max(int(clf.tree_.feature[0]), -1)
        if col >= 0:
            assert splits.threshold[0, col] == clf.tree_.threshold[0]
            left, right = np.asarray(clf.classes_)[clf.tree_.value[[1, 2], 0].argmax(1)]
            assert (bool(left), bool(right)) == (splits.left_positive[0, col], splits.right_positive[0, col])


def toy_c3() -> tuple[np.ndarray, np.ndarray]:
    """Spec C.3 toy: majority 0.503, root split 0.888, depth 2 perfect (1000 items, in-sample)."""
    y = np.zeros(1000, dtype=bool)
    y[:497] = True
    x = np.zeros((1000, 2), dtype=np.float32)
    x[:609, 0] = 1.0  # 497 positives + 112 negatives on the right of the root split
    x[497:609, 1] = 1.0  # the 112 negatives among them
    return x, y[:, None]


def test_compat_modes_differ_on_the_c3_toy() -> None:
    x, y = toy_c3()
    paper = fms(x, y, p=(1, 2), holdout=False, compat="paper", balance=False)
    ref = fms(x, y, p=(1, 2), compat="reference_code", balance=False)
    assert ref["holdout"] is False and len(ref["test_rows"]) == 1000
    for r in (paper, ref):
        assert r["acc0"][0] == pytest.approx(0.888) and r["depth"][0] == 2 and r["root"][0] == 0
        assert r["local"][1][0] == pytest.approx(2 * (0.888 - 0.609))  # after zeroing latent 0, latent 1 gives 0.609
        assert r["local"][2][0] == pytest.approx(2 * (0.888 - 0.503))  # nothing left: majority class
    assert paper["global"][0] == pytest.approx(1 - (0.0 + 0.112) / 2)  # 0.944
    assert ref["global"][0] == pytest.approx(1 - ((0.503 - 0.888) + 0.112) / 2)  # 1.1365: depth-0 row, no clip
    assert ref["fms"][1][0] == pytest.approx(0.888 * (2 * (0.888 - 0.609) + 1.1365) / 2)
    assert paper.global_[0] == paper["global"][0] and paper.fms_mean[1] == paper["fms_mean"][1]


def test_paper_mode_clips_and_reference_does_not() -> None:
    rng = np.random.default_rng(8)
    x = rng.random((120, 30)).astype(np.float32)
    y = rng.random(120) < 0.5  # pure noise: holdout accuracies are near chance, local/global leave [0, 1]
    paper = fms(x, y[:, None], p=(1, 5), holdout=True, seed=1, compat="paper")
    ref = fms(x, y[:, None], p=(1, 5), holdout=True, seed=1, compat="reference_code")
    raw_local = 2 * (paper["acc0"] - paper["acc"][5])
    assert np.array_equal(paper["local"][5], np.clip(raw_local, 0, 1))
    assert np.array_equal(ref["local"][5], raw_local)
    assert 0.0 <= paper["global"][0] <= 1.0


def test_bad_input() -> None:
    x = np.random.default_rng(0).random((20, 4)).astype(np.float32)
    with pytest.raises(UserError, match="single class"):
        fms(x, np.zeros(20, dtype=np.int64))
    with pytest.raises(UserError, match="items"):
        fms(x, np.arange(19) % 2)
    with pytest.raises(UserError, match="single class"):
        fms(x, np.stack([np.arange(20) % 2, np.ones(20)], axis=1))
    with pytest.raises(UserError, match="positive"):
        fms(x, np.arange(20) % 2, p=0)
    with pytest.raises(UserError, match="compat"):
        fms(x, np.arange(20) % 2, compat="code")
    with pytest.raises(UserError, match="empty"):
        fms(np.zeros((0, 4)), np.zeros(0))


# ------------------------------------------------------------------------------------------------ balanced FMS


def test_balanced_subsets_hold_as_many_negatives_as_positives() -> None:
    rng = np.random.default_rng(20)
    counts = (30, 170, 400)  # a rare class, a middle one, and one that outnumbers the rest (400 > 200)
    labels = rng.permutation(np.repeat(np.arange(3), counts))
    n = len(labels)
    x = random_latents(rng, n, 12, False)
    for holdout in (True, False):
        got = fms(x, labels, p=1, holdout=holdout, seed=4)
        assert got["balance"] is True
        np.testing.assert_array_equal(got["n_rows"], [2 * min(c, n - c) for c in counts])  # [60, 340, 400]
        for c, (tr, te) in enumerate(zip(got["train_rows"], got["test_rows"], strict=True)):
            rows = np.union1d(tr, te)
            assert len(rows) == got["n_rows"][c] and len(np.unique(tr)) == len(tr)
            if holdout:
                assert not np.intersect1d(tr, te).size and len(te) == int(np.ceil(0.3 * len(rows)))
            else:
                assert np.array_equal(tr, te)
            positive = labels[rows] == c
            assert positive.sum() == (~positive).sum()
            # the smaller side is kept whole: every positive of the rare classes, every negative of class 2
            smaller = labels == c if counts[c] <= n - counts[c] else labels != c
            assert np.isin(np.flatnonzero(smaller), rows).all()


def test_balanced_binary_columns_and_brute_force_on_each_subset() -> None:
    """Balanced FMS is the unbalanced one on each concept's own subset: check it against sklearn trees there."""
    rng = np.random.default_rng(21)
    n, k = 160, 15
    x = random_latents(rng, n, k, True)  # integer values: ties between latents
    y = np.stack([rng.random(n) < 0.2, rng.random(n) < 0.7], axis=1)
    x[:, 2] += y[:, 0] * (rng.random(n) < 0.8)
    for compat in ("paper", "reference_code"):
        got = fms(x, y, p=(1, 3), holdout=True, seed=5, compat=compat)
        for c in range(2):
            rows = np.union1d(got["train_rows"][c], got["test_rows"][c])
            want = brute_fms(x[rows], y[rows][:, [c]], (1, 3), True, 5, compat)
            assert got["acc0"][c] == pytest.approx(want["acc0"][0], abs=1e-12)
            assert got["root"][c] == want["root"][0]
            assert got["global"][c] == pytest.approx(want["global"][0], abs=1e-12)
            for p in (1, 3):
                assert got["fms"][p][c] == pytest.approx(want["fms"][p][0], abs=1e-12)


def test_balanced_draw_is_reproducible_and_seeded() -> None:
    rng = np.random.default_rng(22)
    labels = rng.integers(0, 4, 300)
    x = random_latents(rng, 300, 20, False)
    a, b = fms(x, labels, p=(1, 2), seed=7), fms(x, labels, p=(1, 2), seed=7)
    for key in ("acc0", "root", "removed", "global", "depth", "n_rows"):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(a["fms"][2], b["fms"][2])
    for c in range(4):
        np.testing.assert_array_equal(a["train_rows"][c], b["train_rows"][c])
        np.testing.assert_array_equal(a["test_rows"][c], b["test_rows"][c])
    other = fms(x, labels, p=1, seed=8)
    assert any(not np.array_equal(np.union1d(a["train_rows"][c], a["test_rows"][c]),
                                  np.union1d(other["train_rows"][c], other["test_rows"][c])) for c in range(4))
    # the draw depends on the concept too: two concepts with identical labels get different negatives
    twin = np.stack([labels == 0, labels == 0], axis=1)
    r = fms(x, twin, p=1, holdout=False, seed=7)
    assert not np.array_equal(r["train_rows"][0], r["train_rows"][1])


def one_class_detector(per_class: int = 100, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """10 classes of 100 items; latent 0 is 1 exactly on class 0, latents 1 and 2 are 0 everywhere (constant)."""
    labels = np.repeat(np.arange(classes), per_class)
    x = np.zeros((len(labels), 3), dtype=np.float32)
    x[labels == 0, 0] = 1.0
    return x, labels


def test_a_perfect_detector_of_one_class_in_ten_scores_local_1_only_balanced() -> None:
    """In-sample, concept 0 (class 0 vs the 9 others): latent 0 splits it perfectly, so acc0 = 1 and the full tree
    is that one split (global = 1 - (acc_cum_1 - acc0)/1 = 1). Zeroing latent 0 leaves only constant latents, so
    the stump is a leaf that predicts the majority class:
      balanced   100 positives + 100 negatives, a tie, which goes to the negative class: acc = 0.5, local@1 = 1,
                 FMS@1 = 1 * (1 + 1) / 2 = 1;
      unbalanced 100 positives in 1000 items: acc = 0.9, local@1 = 2 * (1 - 0.9) = 0.2, FMS@1 = (0.2 + 1) / 2 = 0.6.
    """
    x, labels = one_class_detector()
    bal = fms(x, labels, p=1, holdout=False)
    unb = fms(x, labels, p=1, holdout=False, balance=False)
    assert bal["n_rows"][0] == 200 and unb["n_rows"][0] == 1000
    for r in (bal, unb):
        assert r["root"][0] == 0 and r["acc0"][0] == 1.0 and r["global"][0] == 1.0 and r["removed"][0, 0] == 0
    assert bal["acc"][1][0] == 0.5 and bal["local"][1][0] == 1.0 and bal["fms"][1][0] == 1.0
    assert unb["acc"][1][0] == pytest.approx(0.9) and unb["local"][1][0] == pytest.approx(0.2)
    assert unb["fms"][1][0] == pytest.approx(0.6)
    # with the holdout the detector still classifies the held-out 30% perfectly
    assert fms(x, labels, p=1)["acc0"][0] == 1.0


def test_balance_changes_nothing_on_an_already_balanced_concept() -> None:
    """Exactly as many positives as negatives: the balanced subset is every item, so both variants agree bit for
    bit, holdout split included (the split of the subset is the split of the items)."""
    rng = np.random.default_rng(23)
    n = 120
    y = rng.permutation(np.arange(n) % 2 == 0)
    x = random_latents(rng, n, 25, False)
    x[:, 4] += y * (rng.random(n) < 0.7)
    for compat in ("paper", "reference_code"):
        bal = fms(x, y[:, None], p=(1, 5), seed=3, compat=compat)
        unb = fms(x, y[:, None], p=(1, 5), seed=3, compat=compat, balance=False)
        assert bal["balance"] is True and unb["balance"] is False
        np.testing.assert_array_equal(bal["test_rows"][0], unb["test_rows"])
        for key in ("acc0", "root", "removed", "global", "depth", "n_rows"):
            np.testing.assert_array_equal(bal[key], unb[key])
        for p in (1, 5):
            np.testing.assert_array_equal(bal["fms"][p], unb["fms"][p])


def test_balanced_bad_input() -> None:
    x = np.random.default_rng(0).random((20, 4)).astype(np.float32)
    labels = np.r_[0, np.ones(19, dtype=np.int64)]  # class 0 has a single item
    with pytest.raises(UserError, match="concept 0 has 1 positive or 1 negative item"):
        fms(x, labels)
    assert fms(x, labels, holdout=False)["n_rows"].tolist() == [2, 2]  # in-sample, one of each is enough
    assert fms(x, labels, balance=False)["n_rows"].tolist() == [20, 20]
    with pytest.raises(UserError, match="seed"):
        fms(x, np.arange(20) % 2, seed=-1)


def test_root_forces_the_latent_each_concept_starts_from() -> None:
    # latent 0 separates the concept perfectly, latent 1 only on half of the positives: the free score starts from
    # latent 0; forced to latent 1 (a G-SAE's reserved latent), acc0 is latent 1's own stump accuracy, in-sample
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    x = np.zeros((200, 3), dtype=np.float32)
    x[:, 0] = y
    x[100:150, 1] = 1.0  # half of the positives
    x[:, 2] = rng.random(200)
    free = fms(torch.from_numpy(x), torch.from_numpy(y[:, None]), p=1, holdout=False, balance=False)
    forced = fms(torch.from_numpy(x), torch.from_numpy(y[:, None]), p=1, holdout=False, balance=False, root=[1])
    assert free["root"][0] == 0 and free["acc0"][0] == 1.0
    assert forced["root"][0] == 1 and forced["removed"][0, 0] == 1
    assert forced["acc0"][0] == pytest.approx(150 / 200)  # the 50 flagged positives right, the other 50 wrong
    assert forced["acc"][1][0] == 1.0  # with latent 1 zeroed, latent 0 is the best stump again
    with pytest.raises(UserError, match="root must give one latent"):
        fms(torch.from_numpy(x), torch.from_numpy(y[:, None]), p=1, root=[5])

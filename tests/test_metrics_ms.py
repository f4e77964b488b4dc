"""MonoSemanticity score: the streamed closed form against the O(N²·K) pairwise definition (spec B.2)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from monosemantic.errors import UserError
from monosemantic.metrics import monosemanticity_score, monosemanticity_score_chunks, summarize


def pairwise_ms(acts: np.ndarray, emb: np.ndarray, denominator: str) -> np.ndarray:
    """Spec B.2 literally: min-max per unit, all pairs n < m, weighted mean of the cosine similarities."""
    norms = np.linalg.norm(emb, axis=1)
    acts, emb = acts[norms > 0].astype(np.float64), emb[norms > 0].astype(np.float64)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    n = len(acts)
    iu = np.triu_indices(n, 1)
    sims = (unit @ unit.T)[iu]
    out = np.full(acts.shape[1], np.nan)
    for k in range(acts.shape[1]):
        col = acts[:, k]
        if col.max() == col.min():
            continue
        a = (col - col.min()) / (col.max() - col.min())
        r = np.outer(a, a)[iu]
        if r.sum() == 0:
            continue
        out[k] = (r * sims).sum() / (r.sum() if denominator == "weights" else len(r))
    return out


def make_data(seed: int = 0, n: int = 61, k: int = 14, e: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    acts = rng.normal(size=(n, k)).astype(np.float32)
    acts[:, 1] = np.maximum(acts[:, 1], 0) * (rng.random(n) < 0.2)  # sparse, SAE-like
    acts[:, 2] = 3.0  # constant: NaN
    acts[:, 3] = 0.0
    acts[5, 3] = 2.0  # fires on one item only: NaN
    acts[:, 4] = 0.0
    acts[[7, 8], 4] = [1.0, 0.25]  # two items: MS = their cosine
    emb = (rng.normal(size=(n, e)) + 0.4).astype(np.float32)
    emb[11] = 0.0  # zero-norm embedding: item dropped
    return acts, emb


@pytest.mark.parametrize("denominator", ["weights", "pairs"])
@pytest.mark.parametrize("chunk_size", [None, 7, 1000])
def test_closed_form_matches_pairwise(denominator: str, chunk_size: int | None) -> None:
    acts, emb = make_data()
    got = monosemanticity_score(torch.from_numpy(acts), torch.from_numpy(emb), chunk_size=chunk_size,
                                denominator=denominator)
    want = pairwise_ms(acts, emb, denominator)
    assert got.dtype == torch.float64 and got.shape == (acts.shape[1],)
    assert np.array_equal(np.isnan(got.numpy()), np.isnan(want))
    assert np.isnan(want[[2, 3]]).all()
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_two_item_unit_is_their_cosine() -> None:
    acts, emb = make_data()
    got = monosemanticity_score(acts, emb)
    e7, e8 = emb[7].astype(np.float64), emb[8].astype(np.float64)
    assert math.isclose(float(got[4]), e7 @ e8 / np.linalg.norm(e7) / np.linalg.norm(e8), rel_tol=1e-10)


@pytest.mark.parametrize("denominator", ["weights", "pairs"])
def test_chunk_iterator_variant(denominator: str) -> None:
    acts, emb = make_data(seed=3, n=53)
    bounds = [0, 5, 6, 30, 53]  # uneven chunks, numpy inputs
    calls = []

    def make_chunks():
        calls.append(1)
        return ((acts[a:b], emb[a:b]) for a, b in itertools.pairwise(bounds))

    got = monosemanticity_score_chunks(make_chunks, denominator=denominator)
    assert len(calls) == 2
    want = pairwise_ms(acts, emb, denominator)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    assert np.array_equal(np.isnan(got.numpy()), np.isnan(want))


def test_chunk_source_that_changes_between_passes_is_rejected() -> None:
    acts, emb = make_data()
    state = {"n": 0}

    def make_chunks():
        state["n"] += 1
        rows = 61 if state["n"] == 1 else 40
        return iter([(acts[:rows], emb[:rows])])

    with pytest.raises(UserError, match="same data"):
        monosemanticity_score_chunks(make_chunks)


def test_bad_input() -> None:
    acts, emb = make_data()
    with pytest.raises(UserError, match="items"):
        monosemanticity_score(acts, emb[:-1])
    with pytest.raises(UserError, match="empty"):
        monosemanticity_score(np.zeros((0, 3)), np.zeros((0, 4)))
    with pytest.raises(UserError, match="denominator"):
        monosemanticity_score(acts, emb, denominator="mean")
    with pytest.raises(UserError, match="zero norm"):
        monosemanticity_score(acts, np.zeros_like(emb))
    bad = acts.copy()
    bad[0, 0] = np.nan
    with pytest.raises(UserError, match="NaN"):
        monosemanticity_score(bad, emb)


def test_tf32_setting_is_restored() -> None:
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        acts, emb = make_data()
        monosemanticity_score(acts, emb)
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def test_summarize_ignores_nan_and_counts_dead() -> None:
    scores = torch.tensor([0.5, float("nan"), 0.1, 0.9, float("nan"), 0.9], dtype=torch.float64)
    s = summarize(scores, n_extreme=2)
    finite = np.array([0.5, 0.1, 0.9, 0.9])
    assert s.dead == 2 and s.n == 4 and s.total == 6
    assert s.mean is not None and s.std is not None
    assert math.isclose(s.mean, finite.mean()) and math.isclose(s.std, finite.std())
    assert s.best == pytest.approx(0.9) and s.worst == pytest.approx(0.1)
    assert s.top == [3, 5] and s.bottom == [2, 0] and s.best_unit == 3 and s.worst_unit == 2
    empty = summarize(torch.full((3,), float("nan")))
    assert empty.dead == 3 and empty.mean is None and empty.top == []

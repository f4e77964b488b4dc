"""Top-activating items and Jaccard uniqueness against plain Python loops (spec B.7)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import torch

from monosemantic.errors import UserError
from monosemantic.metrics import jaccard_uniqueness, top_activating


def test_top_activating_sorted_with_ties_by_lower_index() -> None:
    rng = np.random.default_rng(0)
    acts = np.round(rng.random((40, 7)) * 4).astype(np.float32)  # many ties, also at the n-th place
    acts[:, 6] = 0.0
    values, indices = top_activating(torch.from_numpy(acts), n=5)
    for j in range(7):
        order = sorted(range(40), key=lambda i: (-acts[i, j], i))[:5]
        assert indices[j].tolist() == order
        assert values[j].tolist() == [float(acts[i, j]) for i in order]
    with pytest.raises(UserError, match="n must"):
        top_activating(acts, n=41)


def loop_jaccard(sets: list[set[int]], thresholds: list[float]) -> tuple[dict, list]:
    pairs = [(u, v, len(sets[u] & sets[v]) / len(sets[u] | sets[v])) for u, v in combinations(range(len(sets)), 2)]
    counts = [sum(j > t for _, _, j in pairs) for t in thresholds]
    return {"counts": counts, "total": len(pairs)}, pairs


def test_jaccard_matches_pairwise_loop() -> None:
    rng = np.random.default_rng(1)
    k, n, n_items = 30, 6, 25  # few items: plenty of overlap
    top = np.stack([rng.choice(n_items, n, replace=False) for _ in range(k)])
    values = rng.random((k, n)) + 0.1
    values[[4, 9], -1] = 0.0  # n-th highest activation is 0: dropped
    mask = np.ones(k, dtype=bool)
    mask[12] = False
    ths = [round(0.1 * i, 1) for i in range(10)]
    got = jaccard_uniqueness(torch.from_numpy(top), tuple(ths), values=values, mask=mask, n_extreme=4)
    kept = [u for u in range(k) if u not in (4, 9, 12)]
    want, pairs = loop_jaccard([set(top[u]) for u in kept], ths)
    assert got["units"] == kept and got["dropped"] == 3
    assert got["total_pairs"] == want["total"] and got["counts"] == want["counts"]
    assert got["ratios"] == pytest.approx([c / want["total"] for c in want["counts"]])
    pairs = [(kept[a], kept[b], j) for a, b, j in pairs]
    most = sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))[:4]
    least = sorted(pairs, key=lambda p: (p[2], p[0], p[1]))[:4]
    assert [(u, v) for u, v, _ in got["most_similar"]] == [(u, v) for u, v, _ in most]
    assert [j for *_, j in got["most_similar"]] == pytest.approx([j for *_, j in most])
    assert [(u, v) for u, v, _ in got["least_similar"]] == [(u, v) for u, v, _ in least]


def test_jaccard_with_no_zero_pairs_and_small_sets() -> None:
    top = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]])  # every pair shares an item
    got = jaccard_uniqueness(top, (0.0, 0.3, 0.5), n_extreme=5)
    # J(0,1) = 2/4, J(0,2) = 1/5, J(1,2) = 2/4
    assert got.counts == [3, 2, 0] and got.total_pairs == 3
    assert got.least_similar[0] == (0, 2, pytest.approx(0.2)) and len(got.most_similar) == 3


def test_jaccard_bad_input() -> None:
    with pytest.raises(UserError, match="distinct"):
        jaccard_uniqueness(np.array([[0, 0, 1], [1, 2, 3]]))
    with pytest.raises(UserError, match="shape"):
        jaccard_uniqueness(np.array([[0, 1], [1, 2]]), values=np.ones((2, 3)))
    with pytest.raises(UserError, match="non-empty"):
        jaccard_uniqueness(np.zeros((0, 16), dtype=np.int64))

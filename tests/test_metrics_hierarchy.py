"""Matryoshka hierarchy depth and rank-normalised comparison, against brute force and planted structure."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from monosemantic.errors import UserError
from monosemantic.metrics.hierarchy import (
    build_hierarchy,
    hierarchy_depth,
    latent_depths,
    load_parents,
    rank_normalised,
)

FASHION = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def test_bundled_fashion_hierarchy_and_bad_mappings(tmp_path: Path) -> None:
    h = build_hierarchy(load_parents("fashion-mnist"), FASHION)
    assert h.paths[FASHION.index("sandal")] == ("footwear", "sandal") and h.depth == 2
    assert h.nodes(1) == ["tops", "bottoms", "footwear", "bags"]
    with pytest.raises(UserError, match="cycle"):
        build_hierarchy({"a": "b", "b": "c", "c": "a"}, ["a"])
    with pytest.raises(UserError, match="no parent for the label"):
        build_hierarchy({"a": "x"}, ["a", "b"])
    with pytest.raises(UserError, match="not labels of the data"):
        build_hierarchy({"a": "x", "zebra": "x"}, ["a"])
    bad = tmp_path / "h.json"
    bad.write_text(json.dumps({"a": 3}))
    with pytest.raises(UserError, match="map each label to its parent"):
        load_parents(bad)
    with pytest.raises(UserError, match="does not exist"):
        load_parents(tmp_path / "missing.toml")


def test_latent_depths_against_pairwise_loop() -> None:
    h = build_hierarchy({"a1": "A", "a2": "A", "b1": "B"}, ["a1", "a2", "b1"])
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    acts = torch.tensor(rng.random((60, 7)) * (rng.random((60, 7)) < 0.6))
    acts[:, 6] = 0
    acts[:3, 6] = 1.0  # fires on 3 items only: its 16th top value is 0, so it is not scored
    got = latent_depths(acts, torch.tensor(labels), h, rounded=False)
    for j in range(6):
        top = torch.topk(acts[:, j], 16).indices.tolist()
        depths = []
        for a, b in itertools.combinations(top, 2):
            pa, pb = h.paths[labels[a]], h.paths[labels[b]]
            common = itertools.takewhile(lambda x: x[0] == x[1], zip(pa, pb, strict=False))
            depths.append(sum(1 for _ in common))
        assert len(depths) == 120 and float(got[j]) == pytest.approx(np.mean(depths))
    assert math.isnan(float(got[6]))
    assert torch.equal(latent_depths(acts, torch.tensor(labels), h)[:6], torch.round(got[:6]))


def test_planted_matryoshka_groups_follow_the_hierarchy() -> None:
    """Group 0 holds one latent per parent (fires on the whole branch), group 1 one per leaf: shallow first."""
    h = build_hierarchy(load_parents("fashion-mnist"), FASHION)
    rng = np.random.default_rng(1)
    labels = torch.tensor(rng.integers(0, 10, 2000))
    parents = h.nodes(1)
    parent_of = torch.tensor([parents.index(h.paths[c][0]) for c in range(10)])
    acts = torch.zeros(2000, 4 + 10)
    acts[torch.arange(2000), parent_of[labels]] = torch.rand(2000) + 0.5
    acts[torch.arange(2000), 4 + labels] = torch.rand(2000) + 0.5
    res = hierarchy_depth(acts, labels, h, [4, 10], ms=torch.arange(14.0))
    g0, g1 = res.groups
    # tops and footwear latents span several leaves (depth 1); bottoms and bags have one leaf each (depth 2)
    assert g0.mean_depth == 1.5 and g1.mean_depth == 2.0 and g0.scored == 4 and g1.scored == 10
    assert latent_depths(acts, labels, h)[[0, 2]].tolist() == [1.0, 1.0]
    assert g0.ms_mean == pytest.approx(1.5) and g1.ms_mean == pytest.approx(8.5)
    lvl1, lvl2 = res.levels
    # a parent with one child (bottoms, bags) fires exactly like its leaf latent, so only branches are decisive
    branches = {n.node: (n.latent, n.group) for n in lvl1.nodes if n.node in ("tops", "footwear")}
    assert branches == {"tops": (0, 0), "footwear": (2, 0)}
    leaves = [n for n in lvl2.nodes if n.node not in ("trouser", "bag")]
    assert all(n.group == 1 and n.latent == 4 + FASHION.index(n.node) for n in leaves)


def test_rank_normalised_against_the_definition() -> None:
    scores = np.array([[0.9, 0.2, np.nan], [0.5, 0.2, 0.4], [0.1, 0.7, 0.6]])
    r = rank_normalised(scores).numpy()
    # class 0: ranks 0, 1, 2 of 3 models -> 1, 0.5, 0; class 1: models 0 and 1 tie for ranks 1 and 2 (mean 1.5)
    np.testing.assert_allclose(r[:, 0], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(r[:, 1], [0.25, 0.25, 1.0])
    # class 2: the NaN model is left out; two models remain, best 1 and worst 0
    assert math.isnan(r[0, 2]) and r[1, 2] == 0.0 and r[2, 2] == 1.0
    np.testing.assert_allclose(rank_normalised(scores, higher_is_better=False).numpy()[:, 0], [0.0, 0.5, 1.0])
    with pytest.raises(UserError, match="models, classes"):
        rank_normalised(np.zeros(3))

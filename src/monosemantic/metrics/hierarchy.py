"""Does a Matryoshka SAE's nesting follow a label hierarchy? And rank-normalised comparison of SAEs.

Hierarchy depth follows the Matryoshka experiment of Pach et al., "Sparse Autoencoders Learn Monosemantic Features
in Vision-Language Models" (arXiv 2504.02821), which walks the iNaturalist taxonomy: every label has a path from a
root (``("footwear", "sandal")``); two items agree to the depth of their deepest common ancestor (0: different
roots). A latent's depth is the mean of that agreement over all pairs of its 16 top-activating items, so a latent
that fires on one leaf class is deep and one that fires across a whole branch is shallow. Early (small) Matryoshka
groups are expected to hold the shallow, general latents.

Rank-normalised comparison follows MedSAE (Renzulli et al. 2025, arXiv 2510.26411): per class, the models of a sweep
are ranked by a score and mapped to [0, 1], so that classes of different difficulty weigh alike in the mean.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError
from monosemantic.metrics.labels import label_correlation

TOP_ITEMS = 16
BUNDLED = {"fashion-mnist": "fashion-mnist-hierarchy.toml"}


@dataclass(frozen=True)
class Hierarchy:
    """Each label's path from its root, e.g. ``("footwear", "sandal")``; ``labels[i]`` is label id i."""

    labels: tuple[str, ...]
    paths: tuple[tuple[str, ...], ...]

    @property
    def depth(self) -> int:
        """Length of the longest path."""
        return max(len(p) for p in self.paths)

    def agreement(self) -> torch.Tensor:
        """``[C, C]``: the length of the common prefix of two labels' paths (their deepest common ancestor)."""
        c = len(self.paths)
        out = torch.zeros(c, c, dtype=torch.float64)
        for i, a in enumerate(self.paths):
            for j, b in enumerate(self.paths):
                n = 0
                while n < min(len(a), len(b)) and a[n] == b[n]:
                    n += 1
                out[i, j] = n
        return out

    def nodes(self, level: int) -> list[str]:
        """The distinct nodes at ``level`` (1: the roots), in label order."""
        return list(dict.fromkeys(p[level - 1] for p in self.paths if len(p) >= level))


def load_parents(spec: str | Path) -> dict[str, str]:
    """A child -> parent mapping from a TOML or JSON file (``sandal = "footwear"``), or a bundled one by name."""
    if str(spec) in BUNDLED:
        path = Path(__file__).resolve().parent.parent / "configs" / BUNDLED[str(spec)]
    else:
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"hierarchy file {path} does not exist; give a TOML/JSON file mapping each label to its "
                            f"parent, or one of: {', '.join(BUNDLED)}")
    try:
        data = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"hierarchy file {path} is not readable {path.suffix[1:].upper() or 'JSON'} ({exc})") from None
    if not isinstance(data, dict) or not data or not all(isinstance(v, str) for v in data.values()):
        raise UserError(f"hierarchy file {path} must map each label to its parent's name, e.g. sandal = \"footwear\"")
    return {str(k): v for k, v in data.items()}


def build_hierarchy(parents: Mapping[str, str], labels: Sequence[str]) -> Hierarchy:
    """Paths for ``labels`` from a child -> parent mapping. Every label must appear in the mapping (or be a root
    named as someone's parent); a name that is neither a label nor an ancestor of one, and cycles, are errors."""
    parents = {str(k): str(v) for k, v in parents.items()}
    known = set(labels)
    missing = [lab for lab in labels if lab not in parents and lab not in set(parents.values())]
    if missing:
        raise UserError(f"the hierarchy gives no parent for the label(s) {missing}; map every label to its parent")
    paths = []
    for lab in labels:
        path, node, seen = [lab], lab, {lab}
        while node in parents:
            node = parents[node]
            if node in seen:
                raise UserError(f"the hierarchy has a cycle through {node!r}; each label needs one chain to a root")
            seen.add(node)
            path.append(node)
        paths.append(tuple(reversed(path)))
    used = {n for p in paths for n in p}
    unknown = sorted(set(parents) - used - known)
    if unknown:
        raise UserError(f"the hierarchy names {unknown}, which are not labels of the data (labels: {list(labels)})")
    return Hierarchy(tuple(labels), tuple(paths))


def latent_depths(acts: torch.Tensor, item_labels: torch.Tensor, hierarchy: Hierarchy, *, top: int = TOP_ITEMS,
                  rounded: bool = True) -> torch.Tensor:
    """``[K]``: per latent, the mean agreement depth over all pairs of its ``top`` top-activating items (of
    ``acts [N, K]``, labels ``[N]``), rounded as in the paper unless ``rounded=False``; NaN for a latent whose
    ``top``-th activation is 0 (it fires on too few items to say)."""
    acts = torch.as_tensor(acts)
    if acts.ndim != 2 or len(acts) != len(item_labels):
        raise UserError(f"activations must be [items, latents] with one label per item; got {list(acts.shape)} "
                        f"and {len(item_labels)} labels")
    if len(acts) < top:
        raise UserError(f"hierarchy depth uses each latent's {top} top items; the data has only {len(acts)}")
    vals, idx = torch.topk(acts.float(), top, dim=0)  # [top, K]
    lab = torch.as_tensor(item_labels, dtype=torch.int64)[idx].T  # [K, top]
    agree = hierarchy.agreement()[lab[:, :, None], lab[:, None, :]]  # [K, top, top]
    iu = torch.triu_indices(top, top, 1)
    depth = agree[:, iu[0], iu[1]].mean(1)
    if rounded:
        depth = torch.round(depth)
    return torch.where(vals[-1] > 0, depth, torch.nan)


def group_of(latents: torch.Tensor, group_sizes: Sequence[int]) -> torch.Tensor:
    """The Matryoshka group (0-based) of each latent index."""
    ends = torch.tensor(np.cumsum(group_sizes), dtype=torch.int64)
    return torch.bucketize(torch.as_tensor(latents), ends, right=True)


@dataclass(frozen=True)
class GroupDepth:
    """One Matryoshka group under a label hierarchy."""

    group: int
    """0-based, smallest (earliest) group first."""
    size: int
    scored: int
    """Latents of the group with a depth (they fire on at least the top-item count of items)."""
    mean_depth: float | None
    """Mean latent depth of the scored latents (None when none is scored)."""
    ms_mean: float | None = None
    """Mean MS of the group's latents with an MS (None when none has one, or no MS was given)."""


@dataclass(frozen=True)
class NodeLatent:
    """The latent that correlates best with one node of the hierarchy, and its group."""

    node: str
    latent: int
    group: int
    corr: float


@dataclass(frozen=True)
class LevelGroups:
    """Which groups hold the best latents of one hierarchy level's nodes."""

    level: int
    """1: the roots."""
    nodes: list[NodeLatent]
    mean_group: float
    """Mean group of the level's best latents (general levels should sit in early groups)."""


@dataclass(frozen=True)
class HierarchyDepth:
    """A Matryoshka SAE's nesting against a label hierarchy (see `hierarchy_depth`)."""

    labels: list[str]
    paths: list[list[str]]
    """Each label's path from its root."""
    groups: list[GroupDepth]
    levels: list[LevelGroups]


def hierarchy_depth(acts: torch.Tensor, item_labels: torch.Tensor, hierarchy: Hierarchy,
                    group_sizes: Sequence[int], ms: torch.Tensor | None = None) -> HierarchyDepth:
    """Per Matryoshka group: the mean latent depth (and MS, when given) of its scored latents; per hierarchy level:
    which group holds the latent that correlates best with each node of that level."""
    acts = torch.as_tensor(acts)
    depth = latent_depths(acts, item_labels, hierarchy)
    groups = group_of(torch.arange(acts.shape[1]), group_sizes)
    per_group = []
    for g, size in enumerate(group_sizes):
        in_g = groups == g
        d = depth[in_g]
        ok = ~torch.isnan(d)
        ms_mean = None
        if ms is not None:
            m = torch.as_tensor(ms)[in_g]
            m = m[~torch.isnan(m)]
            ms_mean = float(m.mean()) if len(m) else None
        per_group.append(GroupDepth(group=g, size=int(size), scored=int(ok.sum()),
                                    mean_depth=float(d[ok].mean()) if bool(ok.any()) else None, ms_mean=ms_mean))
    labels = torch.as_tensor(item_labels, dtype=torch.int64)
    per_level = []
    for level in range(1, hierarchy.depth + 1):
        nodes = hierarchy.nodes(level)
        member = torch.tensor([[len(p) >= level and p[level - 1] == n for n in nodes] for p in hierarchy.paths])
        y = member[labels].double()  # [N, nodes]: the item's label lies under the node
        corr = label_correlation(acts, y)  # [K, nodes]
        best = corr.argmax(0)
        g = group_of(best, group_sizes)
        per_level.append(LevelGroups(
            level=level,
            nodes=[NodeLatent(node=n, latent=int(best[i]), group=int(g[i]), corr=float(corr[best[i], i]))
                   for i, n in enumerate(nodes)],
            mean_group=float(g.double().mean()),
        ))
    return HierarchyDepth(labels=list(hierarchy.labels), paths=[list(p) for p in hierarchy.paths], groups=per_group,
                          levels=per_level)


def rank_normalised(scores: Any, higher_is_better: bool = True) -> torch.Tensor:
    """``[models, classes]`` scores -> per class, ``1 - rank / (n - 1)`` with rank 0 for the best model, so the best
    gets 1 and the worst 0 (ties share their average rank; a NaN score stays NaN and is not ranked). MedSAE ranks
    the SAEs of a sweep this way per class, for label correlation (higher is better) and entropy (lower is)."""
    s = torch.as_tensor(scores, dtype=torch.float64)
    if s.ndim != 2:
        raise UserError(f"scores must be a [models, classes] matrix; got shape {list(s.shape)}")
    out = torch.full_like(s, math.nan)
    for c in range(s.shape[1]):
        col = s[:, c]
        ok = torch.nonzero(~torch.isnan(col)).flatten()
        if len(ok) < 2:
            continue
        v = (-col[ok] if higher_is_better else col[ok]).numpy()
        order = np.argsort(v, kind="stable")
        ranks = np.empty(len(v))
        ranks[order] = np.arange(len(v))
        for val in np.unique(v):  # ties: the mean of their ranks
            tie = v == val
            ranks[tie] = ranks[tie].mean()
        out[ok, c] = torch.from_numpy(1 - ranks / (len(v) - 1))
    return out


@dataclass(frozen=True)
class RankedModels:
    """Rank-normalised scores of several models (unit sets) and each model's mean over its ranked classes."""

    per_class: torch.Tensor
    """[models, classes] from `rank_normalised` (NaN where a class was not ranked)."""
    means: list[float | None]
    """Per model, the mean over its ranked classes (None when it has none)."""


def ranked_means(scores: Any, higher_is_better: bool = True) -> RankedModels:
    """MedSAE's comparison of models: rank-normalise ``[models, classes]`` scores per class (see `rank_normalised`),
    then average each model over the classes it was ranked on, so that classes of different difficulty weigh
    alike."""
    ranked = rank_normalised(scores, higher_is_better=higher_is_better)
    means = []
    for row in ranked:
        ok = row[~torch.isnan(row)]
        means.append(float(ok.mean()) if len(ok) else None)
    return RankedModels(per_class=ranked, means=means)

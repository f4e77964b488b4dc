"""Synthetic superposition: known sparse features mixed into fewer dimensions (arXiv 2506.15963, synthetic setting).

The ground truth follows the setting of "On the Theoretical Understanding of Identifiable Sparse Autoencoders"
(Cui, Zhang, Wang, Wang; arXiv 2506.15963): features x ∈ R^n that are zero with probability S and positive
otherwise, observed only through x_p = W_p x ∈ R^{n_p} with n_p ≤ n. The ``toy`` geometry is the toy model of
superposition of Elhage et al. 2022 ("Toy Models of Superposition", arXiv 2209.10652): h = W x,
x' = ReLU(Wᵀ h + b), trained on the same sparse features, whose columns then serve as W_p.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError, unknown_choice

GEOMETRIES = ("digon", "simplex", "random", "toy")
MAGNITUDES = ("uniform", "const1", "exp")
CHUNK_ROWS = 1 << 14


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) <= 0:
        raise UserError(f"{name} must be a positive whole number; got {value!r}")
    return int(value)


def check_sizes(n_features: Any, n_dims: Any, sparsity: Any, n_samples: Any) -> tuple[int, int, float, int]:
    """The validated sizes, or a one-line UserError naming what is impossible."""
    n = _positive_int(n_features, "n_features")
    d = _positive_int(n_dims, "n_dims")
    m = _positive_int(n_samples, "n_samples")
    if d > n:
        raise UserError(f"n_dims={d} exceeds n_features={n}; superposition needs n_dims <= n_features")
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise UserError(f"sparsity must be a number in [0, 1); got {sparsity!r}") from None
    if not 0.0 <= s < 1.0:  # NaN fails this too
        raise UserError(f"sparsity must lie in [0, 1) (the probability that a feature is zero); got {sparsity!r}")
    return n, d, s, m


def sample_codes(
    rng: np.random.Generator, n_samples: int, n_features: int, sparsity: float, magnitude: str
) -> np.ndarray:
    """[n_samples, n_features] float64: each entry is 0 with probability `sparsity`, else a positive magnitude.

    One row of 2·n_features uniforms per sample (activity, then magnitude), so a sample's code depends only on
    the stream position of its row: the first rows are the same whatever n_samples or chunking.
    """
    u = rng.random((n_samples, 2 * n_features))
    active = u[:, :n_features] >= sparsity
    v = u[:, n_features:]
    if magnitude == "uniform":
        values = 1.0 - v  # Uniform(0, 1]: never an active zero
    elif magnitude == "const1":
        values = np.ones_like(v)
    else:
        # Exp(1) by inversion; the floor keeps an active feature from rounding to exactly 0
        values = np.maximum(-np.log1p(-v), np.finfo(np.float64).tiny)
    return np.where(active, values, 0.0)


def digon(n_features: int, n_dims: int) -> np.ndarray:
    """Columns ±e_j: feature i < n_dims is +e_i, feature n_dims + j is -e_j (antipodal pairs, cos -1)."""
    if n_features > 2 * n_dims:
        raise UserError(
            f"the digon geometry holds at most 2*n_dims = {2 * n_dims} features (±e_j); got n_features="
            f"{n_features}; use geometry='random' or 'toy'"
        )
    w = np.zeros((n_dims, n_features))
    for i in range(n_features):
        w[i % n_dims, i] = 1.0 if i < n_dims else -1.0
    return w


def _regular_simplex(r: int) -> np.ndarray:
    """[r - 1, r]: r unit vectors in r - 1 dimensions with pairwise cosine -1/(r - 1) (r ≥ 2)."""
    centred = np.eye(r) - 1.0 / r
    # the rows of centred span the (r-1)-dim complement of the all-ones vector; an orthonormal basis of it
    # turns the r centred points into coordinates in R^{r-1}
    basis = np.linalg.svd(centred)[2][: r - 1]
    pts = basis @ centred
    return pts / np.linalg.norm(pts, axis=0, keepdims=True)


def _simplex_dims(n_features: int, m: int) -> int:
    full, rest = divmod(n_features, m + 1)
    return full * m + (max(rest - 1, 1) if rest else 0)


def simplex(n_features: int, n_dims: int) -> np.ndarray:
    """Groups of m + 1 features as regular simplices in orthogonal m-dim blocks (pairwise cos -1/m inside a group,
    0 across); m is the largest that fits, so the interference is as small as the dimensions allow. A last, smaller
    group of r features is an r-vertex simplex (one axis when r = 1)."""
    if n_features > 2 * n_dims:
        raise UserError(
            f"the simplex geometry holds at most 2*n_dims = {2 * n_dims} features (digons are the smallest "
            f"simplices); got n_features={n_features}; use geometry='random' or 'toy'"
        )
    m = max(k for k in range(1, n_features + 1) if _simplex_dims(n_features, k) <= n_dims)
    w = np.zeros((n_dims, n_features))
    row = col = 0
    while col < n_features:
        r = min(m + 1, n_features - col)
        if r == 1:
            w[row, col] = 1.0
            row, col = row + 1, col + 1
            continue
        w[row : row + r - 1, col : col + r] = _regular_simplex(r)
        row, col = row + r - 1, col + r
    return w


def random_geometry(rng: np.random.Generator, n_features: int, n_dims: int) -> np.ndarray:
    """I.i.d. Gaussian columns, unit-normalised: the general case, with interference of both signs."""
    w = rng.standard_normal((n_dims, n_features))
    return w / np.linalg.norm(w, axis=0, keepdims=True)


def toy_geometry(
    seed: int,
    n_features: int,
    n_dims: int,
    sparsity: float,
    magnitude: str,
    *,
    steps: int,
    batch_size: int,
    importance: float,
    lr: float = 1e-3,
) -> np.ndarray:
    """W [n_dims, n_features] of a toy model h = W x, x' = ReLU(Wᵀh + b) trained to reconstruct sparse features
    with loss Σ_i I_i (x_i - x'_i)², I_i = importance^i (Elhage et al. 2022, arXiv 2209.10652, the toy model)."""
    g = torch.Generator().manual_seed(int(seed))
    rng = np.random.default_rng([int(seed), 1])
    w = torch.nn.Parameter(torch.randn(n_dims, n_features, generator=g) * math.sqrt(2.0 / (n_dims + n_features)))
    b = torch.nn.Parameter(torch.zeros(n_features))
    imp = torch.tensor(importance, dtype=torch.float32) ** torch.arange(n_features, dtype=torch.float32)
    opt = torch.optim.Adam([w, b], lr=lr)
    threads = torch.get_num_threads()
    # the matrices are tiny: extra threads only add barriers, which cost 10x and more when other work shares
    # the cores (spinning OpenMP threads wait for a descheduled peer)
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            x = torch.from_numpy(sample_codes(rng, batch_size, n_features, sparsity, magnitude)).float()
            out = torch.relu((x @ w.T) @ w + b)
            loss = (imp * (x - out) ** 2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    wd = w.detach().double().numpy()
    norms = np.linalg.norm(wd, axis=0, keepdims=True)
    # a feature the toy model dropped keeps its (tiny) learned direction; an exactly zero column gets a fixed axis
    zero = norms[0] == 0
    wd[:, zero] = 0.0
    wd[0, zero] = 1.0
    norms[:, zero] = 1.0
    return wd / norms


def make_superposition(
    n_features: int,
    n_dims: int,
    sparsity: float,
    n_samples: int,
    geometry: str = "random",
    magnitude: str = "uniform",
    seed: int = 0,
    *,
    toy_steps: int = 3000,
    toy_batch: int = 1024,
    toy_importance: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sparse ground-truth features in superposition: (X [N, n_dims], codes [N, n_features], W_p [n_dims,
    n_features]), float32, with X = codes @ W_pᵀ and unit-norm columns of W_p.

    codes: each entry is 0 with probability `sparsity` (S), otherwise a magnitude drawn from ``uniform``
    (Uniform(0, 1]), ``const1`` (exactly 1) or ``exp`` (Exponential(1)). geometry of W_p's columns:

    - ``digon``: ±e_j (n_features ≤ 2·n_dims); pairwise inner products are ≤ 0, the paper's non-positive
      interference assumption of the theory (arXiv 2506.15963).
    - ``simplex``: regular simplices in orthogonal blocks, the largest that fit (n_features ≤ 2·n_dims); also
      non-positive interference, with |cos| = 1/m smaller than the digon's 1.
    - ``random``: i.i.d. Gaussian columns, unit-normalised (the general case; any n_features ≥ n_dims).
    - ``toy``: the columns of a toy model of superposition (Elhage et al. 2022) trained for `toy_steps` Adam steps
      of `toy_batch` samples at the same sparsity and magnitudes, with importance I_i = toy_importance^i
      (1.0: all features equally important; 0.9 as in Elhage et al.). Features the model drops keep their small
      learned direction, normalised.

    Everything is determined by `seed`. Bad sizes (n_dims > n_features, sparsity outside [0, 1), non-positive
    counts) or unknown names raise a one-line UserError.
    """
    n, d, s, m = check_sizes(n_features, n_dims, sparsity, n_samples)
    if geometry not in GEOMETRIES:
        raise unknown_choice("geometry", geometry, GEOMETRIES)
    if magnitude not in MAGNITUDES:
        raise unknown_choice("magnitude", magnitude, MAGNITUDES)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UserError(f"seed must be a whole number >= 0; got {seed!r}")
    # separate streams, so one seed gives the same codes under every geometry
    rng = np.random.default_rng([int(seed), 0])
    if geometry == "digon":
        w_p = digon(n, d)
    elif geometry == "simplex":
        w_p = simplex(n, d)
    elif geometry == "random":
        w_p = random_geometry(np.random.default_rng([int(seed), 2]), n, d)
    else:
        _positive_int(toy_steps, "toy_steps")
        _positive_int(toy_batch, "toy_batch")
        if not 0.0 < float(toy_importance) <= 1.0:
            raise UserError(f"toy_importance must lie in (0, 1]; got {toy_importance!r}")
        w_p = toy_geometry(int(seed), n, d, s, magnitude, steps=int(toy_steps), batch_size=int(toy_batch),
                           importance=float(toy_importance))
    x = torch.empty(m, d)
    codes = torch.empty(m, n)
    # in chunks of rows: float64 temporaries stay small, and the first rows do not depend on n_samples
    for i in range(0, m, CHUNK_ROWS):
        c = sample_codes(rng, min(CHUNK_ROWS, m - i), n, s, magnitude)
        codes[i : i + len(c)] = torch.from_numpy(c)
        x[i : i + len(c)] = torch.from_numpy(c @ w_p.T)
    return x, codes, torch.from_numpy(w_p).float()

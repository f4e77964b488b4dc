"""Speed of the per-sample uniqueness of the atoms metrics (arXiv 2509.20784) against its literal definition.

`unique_fraction` (pairs="co_active", AIP geometry) over 1,000,000 TopK-style codes with K = 64 active atoms each
(the worst case of K ≤ 64), a dictionary of N = 16,384 atoms in H = 576 dimensions and S from 20,000 activations.
The codes come as TopK's (indices, values) pair, built beforehand and not timed. The definition, a K x K Gram of
the whitened active atoms per sample, is timed on a subsample, extrapolated, and its μ_i compared with ours.

    python benchmarks/atoms_speed.py            # full size (target: <= 60 s on 2 cores)
    python benchmarks/atoms_speed.py --quick    # 100,000 codes, a smoke run
    OMP_WAIT_POLICY=ACTIVE python benchmarks/atoms_speed.py   # OpenMP's own default (spinning) instead
"""

from __future__ import annotations

import os

# Set before torch loads OpenMP. With other work on the 2 cores, OpenMP's default spin-waiting makes each of the
# many small parallel ops wait for a descheduled peer thread: 10-20x slower here at load 6. Passive waiting yields.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time

import torch

from common import header
from metrics_speed import PeakRSS
from monosemantic.metrics import aip_metric, q_star, sample_coherence, unique_fraction
from monosemantic.metrics.atoms import unit_atoms


def topk_codes(n_samples: int, n_atoms: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices [Ns, k] int64, distinct within a row, uniform over atoms; values [Ns, k] > 0)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n_atoms, (n_samples, k), generator=g).sort(dim=1).values
    while True:  # redraw the repeats of a row until every row holds k distinct atoms
        dup = torch.zeros_like(idx, dtype=torch.bool)
        dup[:, 1:] = idx[:, 1:] == idx[:, :-1]
        n_dup = int(dup.sum())
        if n_dup == 0:
            break
        idx[dup] = torch.randint(0, n_atoms, (n_dup,), generator=g)
        idx = idx.sort(dim=1).values
    perm = torch.rand(n_samples, k, generator=g).argsort(dim=1)  # TopK order, not sorted by atom
    return idx.gather(1, perm), torch.rand(n_samples, k, generator=g) + 0.01


def brute_mu(idx: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    """The definition: per sample, the K x K Gram of its whitened unit atoms, diagonal removed, max |.|."""
    out = torch.empty(idx.shape[0], dtype=torch.float64)
    for i in range(idx.shape[0]):
        u = unit[idx[i]]
        g = (u @ u.T).abs_()
        g.fill_diagonal_(0.0)
        out[i] = g.max()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 codes (smoke run)")
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--atoms", type=int, default=16_384)
    ap.add_argument("--dim", type=int, default=576)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--q-star", action="store_true", help="also time q_star (the same per-sample pass)")
    args = ap.parse_args()
    n_samples = 100_000 if args.quick else args.samples
    header("atoms_speed")
    print(f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} (this script's default unless set)")
    h, n, k = args.dim, args.atoms, args.k
    print(f"\n## unique_fraction: Ns={n_samples:,} codes, K={k} active each, N={n:,} atoms, H={h}, AIP geometry")
    g = torch.Generator().manual_seed(0)
    # anisotropic (scales e^-1..e^1 along random axes) and offset, like residual-stream activations
    rot = torch.linalg.qr(torch.randn(h, h, generator=g))[0]
    scales = torch.exp(torch.rand(h, generator=g) * 2 - 1)
    acts = (torch.randn(20_000, h, generator=g) * scales) @ rot + 0.5 * torch.randn(h, generator=g)
    t0 = time.perf_counter()
    s = aip_metric(acts)
    t_metric = time.perf_counter() - t0
    d = torch.randn(h, n, generator=g)
    t0 = time.perf_counter()
    codes = topk_codes(n_samples, n, k)
    t_codes = time.perf_counter() - t0
    print(f"setup (not timed below): S from 20,000 activations {t_metric:.2f} s; codes {t_codes:.1f} s")

    with PeakRSS() as mem:
        t0 = time.perf_counter()
        frac = unique_fraction(codes, d, s)
        total = time.perf_counter() - t0
    print(f"unique_fraction: {total:.1f} s wall (target <= 60 s), {n_samples / total:,.0f} codes/s; "
          f"peak extra RSS {mem.extra_gb:.2f} GB; unique fraction {frac:.4f}")
    if args.q_star:
        t0 = time.perf_counter()
        q = q_star(codes, d, s)
        print(f"q_star: {time.perf_counter() - t0:.1f} s wall, q* = {q:.4f}")

    sub = 2_000
    unit = unit_atoms(d, s)
    t0 = time.perf_counter()
    ref = brute_mu(codes[0][:sub], unit)
    t_brute = time.perf_counter() - t0
    ours = sample_coherence((codes[0][:sub], codes[1][:sub]), d, s)[0]
    print(f"definition (K x K Gram per sample, fp64) on {sub:,} codes: {t_brute:.2f} s -> extrapolated to "
          f"{n_samples:,}: {t_brute * n_samples / sub:,.0f} s (~{t_brute * n_samples / sub / total:.0f}x ours); "
          f"max |μ_i difference| {float((ours - ref).abs().max()):.1e}; "
          f"mean μ_i {float(ref.mean()):.3f} vs threshold 1/(2K-1) = {1 / (2 * k - 1):.4f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

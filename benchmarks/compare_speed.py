"""Speed of the compare stage: sparse streamed pairing and SVCCA permutation nulls.

Pairing: two TopK SAEs of F = 16,384 latents (k = 32) over T = 1,000,000 tokens, chunks of TopK activations
generated on the fly (half of each B token's latents are a fixed relabelling of A's, so there is structure to find);
``CrossMoments`` accumulates from the nonzeros only, then ``pairing("many_to_one")`` picks each B feature's best A
feature. Generating the chunks is timed on its own and subtracted. The dense z-score-and-matmul pairing is timed
on a token subsample and extrapolated linearly in T (it would also need 2 x 65 GB of dense activations); on that
subsample the two pairings are checked to agree.
SVCCA: ``permutation_test(X, Y, "svcca", 1000)`` on 5,000 paired unit-norm decoder rows of widths d_A and d_B.

    python benchmarks/compare_speed.py                   # full size
    python benchmarks/compare_speed.py --quick           # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import numpy as np
import torch

from common import header
from metrics_speed import PeakRSS
from monosemantic.compare import CrossMoments, TopKActs, pair_features, permutation_test


def chunks(t: int, f: int, k: int, rows: int, seed: int = 0) -> Iterator[tuple[TopKActs, TopKActs]]:
    g = torch.Generator().manual_seed(seed)
    relabel = torch.randperm(f, generator=g)
    for start in range(0, t, rows):
        n = min(rows, t - start)
        ia = torch.randint(0, f, (n, k), generator=g)
        ib = torch.cat([relabel[ia[:, : k // 2]], torch.randint(0, f, (n, k - k // 2), generator=g)], 1)
        va = torch.rand(n, k, generator=g)
        vb = torch.cat([va[:, : k // 2] * 0.9, torch.rand(n, k - k // 2, generator=g)], 1)
        yield TopKActs(ia, va, f), TopKActs(ib, vb, f)


def bench_pairing(t: int, f: int, k: int, rows: int, dense_tokens: int) -> None:
    t0 = time.perf_counter()
    for _ in chunks(t, f, k, rows):
        pass
    gen = time.perf_counter() - t0
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        mom = CrossMoments(f, f)
        for a, b in chunks(t, f, k, rows):
            mom.add(a, b)
        t1 = time.perf_counter()
        pairing = mom.pairing("many_to_one")
        t2 = time.perf_counter()
    total = t2 - t0 - gen
    print(f"## pairing: T={t:,} tokens, F_A=F_B={f:,}, k={k}, chunks of {rows:,}")
    print(f"sparse streamed pairing: {total:.1f} s (accumulate {t1 - t0 - gen:.1f} s + choose pairs {t2 - t1:.1f} s; "
          f"generating the chunks, {gen:.1f} s, subtracted); peak extra memory {mem.extra_gb:.2f} GB; "
          f"cross moment in {mom.cross.dtype}; mean best correlation {pairing.mean_corr():.3f}")
    del mom
    # the dense reference on a subsample: z-score both [T_sub, F] matrices, then Z_Aᵀ Z_B / T_sub
    a, b = next(chunks(dense_tokens, f, k, dense_tokens, seed=1))
    da = torch.zeros(dense_tokens, f).scatter_add_(1, a.indices, a.values)
    db = torch.zeros(dense_tokens, f).scatter_add_(1, b.indices, b.values)
    t0 = time.perf_counter()
    za = (da - da.mean(0)) / (da.std(0, unbiased=False) + 1e-8)
    zb = (db - db.mean(0)) / (db.std(0, unbiased=False) + 1e-8)
    dense_best = torch.empty(f, dtype=torch.int64)
    for lo in range(0, f, 2048):  # column blocks, so C is never whole in memory
        dense_best[lo : lo + 2048] = (za.T @ zb[:, lo : lo + 2048] / dense_tokens).argmax(0)
    dense_s = time.perf_counter() - t0
    sparse_sub = pair_features(a, b)
    agree = float((torch.from_numpy(sparse_sub.a_index) == dense_best).double().mean())
    print(f"dense z-score + matmul on {dense_tokens:,} tokens: {dense_s:.1f} s -> {dense_s * t / dense_tokens:,.0f} s "
          f"extrapolated to {t:,} tokens ({dense_s * t / dense_tokens / max(total, 1e-9):,.0f}x the sparse pairing); "
          f"same best A feature for {agree:.4%} of B features on the subsample")


def bench_svcca(n: int, d_a: int, d_b: int, n_perm: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d_a))
    y = np.c_[x[:, : min(d_a, d_b) // 2], rng.normal(size=(n, d_b - min(d_a, d_b) // 2))]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    print(f"## SVCCA permutation test: {n:,} pairs, d_A={d_a}, d_B={d_b}, {n_perm:,} shuffles")
    for mode in ("variance_99", "reference_k1"):
        t0 = time.perf_counter()
        obs, null, p = permutation_test(x, y, f"svcca:{mode}", n_perm=n_perm)
        print(f"{mode}: {time.perf_counter() - t0:.1f} s (observed {obs:.3f}, null mean {null:.3f}, p {p:.4f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--skip-pairing", action="store_true")
    ap.add_argument("--skip-svcca", action="store_true")
    ap.add_argument("--d-a", type=int, default=512, help="decoder width of A for SVCCA (Pythia-70M: 512)")
    ap.add_argument("--d-b", type=int, default=768, help="decoder width of B for SVCCA (Pythia-160M: 768)")
    args = ap.parse_args()
    header("compare_speed")
    if not args.skip_pairing:
        if args.quick:
            bench_pairing(50_000, 2048, 32, 8192, 2048)
        else:
            bench_pairing(1_000_000, 16_384, 32, 16_384, 2048)
    if not args.skip_svcca:
        bench_svcca(*((1000, 64, 96, 100) if args.quick else (5000, args.d_a, args.d_b, 1000)))


if __name__ == "__main__":
    main()

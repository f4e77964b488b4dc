"""MonoSemanticity score (MS, Pach et al. 2025, arXiv 2504.02821), exact and streamed.

For unit k with min-max normalised activations ã_nk and unit-norm encoder embeddings ê_n (s_nm = ê_n·ê_m):

    MS_k = Σ_{n≠m} ã_nk ã_mk s_nm / Σ_{n≠m} ã_nk ã_mk                   (denominator="weights")
    MS_k = Σ_{n≠m} ã_nk ã_mk s_nm / (N (N-1))                           (denominator="pairs")

The paper's n<m form differs from the n≠m form by a factor 2 in both sums, which cancels. The closed form
needs V = Êᵀ Ã (e x K), S1 = Σ_n ã and S2 = Σ_n ã²: num = ||V_k||² - S2_k, den = S1_k² - S2_k, so the cost is
O(N·K·e) instead of O(N²·K), and only V, S1, S2 (O(K·e)) live beyond one chunk of rows. Every accumulator is
fp64 because num is a difference of two large terms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from monosemantic.errors import UserError
from monosemantic.metrics._common import as_matrix, auto_chunk, check_choice, check_same_items, exact_matmul

Denominator = Literal["weights", "pairs"]
ChunkSource = Callable[[], Iterable[tuple[Any, Any]]]

DEGENERATE_TOL = 1e-10
"""A unit is degenerate (NaN) when Σ_{n≠m} ã_n ã_m <= DEGENERATE_TOL · (Σ_n ã_n)²: all its weight sits on one
item (or, within rounding, so close to it that num is dominated by cancellation error)."""


def monosemanticity_score(
    activations: Any,
    embeddings: Any,
    *,
    chunk_size: int | None = None,
    denominator: Denominator = "weights",
    tol: float = DEGENERATE_TOL,
) -> torch.Tensor:
    """MS of every unit: a float64 tensor [K], NaN for dead or degenerate units.

    activations: [N, K] (items x units); embeddings: [N, e] from an external encoder, one row per item. Items
    whose embedding has zero norm are dropped (their cosine is undefined). chunk_size: rows per streamed chunk
    (default: about 128 MB of fp64 activations). NaN where the unit's max equals its min over the items, or where
    its weight sits on a single item (see DEGENERATE_TOL); the same rule holds for both denominators.
    """
    acts = as_matrix(activations, "activations")
    emb = as_matrix(embeddings, "embeddings")
    check_same_items(acts.shape[0], emb.shape[0], "activations", "embeddings")
    step = int(chunk_size) if chunk_size else auto_chunk(acts.shape[1])
    if step <= 0:
        raise UserError(f"chunk_size must be a positive number of rows; got {chunk_size}")

    def chunks() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, acts.shape[0], step):
            yield acts[i : i + step], emb[i : i + step]

    return _two_pass(chunks, denominator, tol)


def monosemanticity_score_chunks(
    make_chunks: ChunkSource,
    *,
    denominator: Denominator = "weights",
    tol: float = DEGENERATE_TOL,
) -> torch.Tensor:
    """MS for inputs larger than memory: `make_chunks()` returns a fresh iterable of (act_chunk [n_i, K],
    emb_chunk [n_i, e]) pairs covering the same items in the same order each time it is called.

    It is called exactly twice: pass 1 finds each unit's min and max, pass 2 accumulates V, S1 and S2.
    Result and NaN rules as in `monosemanticity_score`.
    """
    if not callable(make_chunks):
        raise UserError("make_chunks must be a callable returning an iterable of (activations, embeddings) chunks")
    return _two_pass(make_chunks, denominator, tol)


def _kept_rows(a: Any, e: Any, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    # finiteness is checked on the per-chunk min/max and norms, which NaN and inf always reach
    a_t = as_matrix(a, f"activations chunk {index}", check_finite=False)
    if a_t.dtype == torch.bool:
        a_t = a_t.to(torch.float32)
    e_t = as_matrix(e, f"embeddings chunk {index}", check_finite=False)
    check_same_items(a_t.shape[0], e_t.shape[0], f"activations chunk {index}", f"embeddings chunk {index}")
    e64 = e_t.to(torch.float64)
    norm = torch.linalg.vector_norm(e64, dim=1)
    if not bool(torch.isfinite(norm).all()):
        raise UserError(f"embeddings chunk {index} holds NaN or infinite values; clean them before scoring")
    keep = norm > 0
    if bool(keep.all()):
        return a_t, e64 / norm[:, None]
    return a_t[keep.to(a_t.device)], e64[keep] / norm[keep][:, None]


@dataclass(frozen=True)
class _Range:
    """What pass 1 learns: each unit's min and max over the kept items, their count and the chunk shapes."""

    mn: torch.Tensor
    mx: torch.Tensor
    n_items: int
    width: int
    dim: int


def _two_pass(make_chunks: ChunkSource, denominator: str, tol: float) -> torch.Tensor:
    check_choice("denominator", denominator, ("weights", "pairs"))
    rng = _first_pass(make_chunks)
    v, s1, s2 = _second_pass(make_chunks, rng)
    return _ms(v, s1, s2, rng, denominator, tol)


def _first_pass(make_chunks: ChunkSource) -> _Range:
    mn = mx = None
    n_items = n_seen = 0
    width = dim = -1
    for i, (a, e) in enumerate(make_chunks()):
        a_t, e_t = _kept_rows(a, e, i)
        if width < 0:
            width, dim = a_t.shape[1], e_t.shape[1]
        elif a_t.shape[1] != width or e_t.shape[1] != dim:
            raise UserError(
                f"chunk {i} has {a_t.shape[1]} units and {e_t.shape[1]} embedding dims; "
                f"earlier chunks had {width} and {dim}"
            )
        n_seen += int(torch.as_tensor(a).shape[0])
        if a_t.shape[0] == 0:
            continue
        lo, hi = (t.to(torch.float64) for t in torch.aminmax(a_t, dim=0))
        if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
            raise UserError(f"activations chunk {i} holds NaN or infinite values; clean them before scoring")
        mn = lo if mn is None else torch.minimum(mn, lo)
        mx = hi if mx is None else torch.maximum(mx, hi)
        n_items += a_t.shape[0]
    if n_seen == 0:
        raise UserError("no items to score: the activations are empty")
    if mn is None or mx is None:
        raise UserError("every embedding has zero norm; MS needs embeddings with a direction")
    return _Range(mn=mn, mx=mx, n_items=n_items, width=width, dim=dim)


def _second_pass(make_chunks: ChunkSource, r: _Range) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """V = Êᵀ Ã, S1 = Σ_n ã and S2 = Σ_n ã² over the kept items, with ã min-max normalised by pass 1's range."""
    device, width = r.mn.device, r.width
    span = r.mx - r.mn
    # a constant unit equals mn on every kept item, so (a - mn) is exactly 0 there and dividing by 1 keeps it 0
    safe_span = torch.where(span == 0, torch.ones_like(span), span)
    v = torch.zeros(r.dim, width, dtype=torch.float64, device=device)
    s1 = torch.zeros(width, dtype=torch.float64, device=device)
    s2 = torch.zeros(width, dtype=torch.float64, device=device)
    # two reused fp64 chunk buffers: fresh chunk-sized temporaries cost more (page faults) than the arithmetic
    w_buf = sq_buf = torch.empty(0, dtype=torch.float64, device=device)
    n_second = 0
    with exact_matmul():
        for i, (a, e) in enumerate(make_chunks()):
            a_t, e_t = _kept_rows(a, e, i)
            rows = a_t.shape[0]
            if rows == 0:
                continue
            if a_t.shape[1] != width or e_t.shape[1] != r.dim:
                raise UserError(f"chunk {i} changed shape between the two passes over the data")
            n_second += rows
            if w_buf.shape[0] < rows:
                w_buf = torch.empty(rows, width, dtype=torch.float64, device=device)
                sq_buf = torch.empty(rows, width, dtype=torch.float64, device=device)
            w, sq = w_buf[:rows], sq_buf[:rows]
            w.copy_(a_t)
            w.sub_(r.mn).div_(safe_span)
            v.addmm_(e_t.to(device).T, w)
            s1 += w.sum(0)
            torch.mul(w, w, out=sq)
            s2 += sq.sum(0)
    if n_second != r.n_items:
        raise UserError(
            f"make_chunks yielded {r.n_items} usable items in pass 1 but {n_second} in pass 2; "
            "it must return the same data each time it is called"
        )
    return v, s1, s2


def _ms(v: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, r: _Range, denominator: str,
        tol: float) -> torch.Tensor:
    """MS from the sums: num = ||V_k||² - S2_k over den = S1_k² - S2_k (or the pair count); NaN when degenerate."""
    width = r.width
    sq_norm = torch.empty(width, dtype=torch.float64, device=v.device)
    for j in range(0, width, 4096):  # column blocks: no second e x K temporary
        blk = v[:, j : j + 4096]
        sq_norm[j : j + 4096] = (blk * blk).sum(0)
    num = sq_norm - s2
    den = s1 * s1 - s2
    if denominator == "weights":
        ms = num / torch.where(den > 0, den, torch.ones_like(den))
    else:
        pairs = float(r.n_items) * float(r.n_items - 1)
        ms = num / pairs if pairs > 0 else torch.zeros_like(num)
    degenerate = ((r.mx - r.mn) == 0) | (den <= tol * s1 * s1) | (s1 <= 0)
    return torch.where(degenerate, torch.full_like(ms, float("nan")), ms)


def default_encoder(modality: str) -> str:
    """MS needs an encoder that shares nothing with the analysed networks: EfficientNet for images, WordLlama's static
    embeddings for text (MiniLM, the other option, is itself one of the bundled models analysed)."""
    return "efficientnet_lite0" if modality == "image" else "wordllama"

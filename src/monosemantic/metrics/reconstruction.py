"""Reconstruction quality of an SAE: tensor metrics (FVU, L0, dead fraction; see the methods pages of the docs)
and, for causal LMs, CE loss recovered."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from monosemantic.errors import UserError
from monosemantic.metrics._common import auto_chunk
from monosemantic.sae.evaluate import fvu_from_sums

DENSE_THRESHOLD = 0.1
"""A latent is dense when it fires (is non-zero) on more than this fraction of the samples."""


def _pair(x: Any, x_hat: Any) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = torch.as_tensor(x), torch.as_tensor(x_hat)
    if a.shape != b.shape:
        raise UserError(f"x has shape {tuple(a.shape)} but x_hat has {tuple(b.shape)}; they must match")
    if a.ndim == 0 or a.numel() == 0:
        raise UserError(f"x is empty (shape {tuple(a.shape)}); give at least one sample")
    if a.ndim == 1:
        a, b = a[None], b[None]
    return a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])


def _latents(z: Any) -> torch.Tensor:
    t = torch.as_tensor(z)
    if t.ndim < 2 or t.numel() == 0:
        raise UserError(f"latents must be a non-empty [samples, latents] array; got shape {tuple(t.shape)}")
    return t.reshape(-1, t.shape[-1])


def mse(x: Any, x_hat: Any) -> float:
    """Mean squared error over all elements of x and x̂ [N, d] (samples x features), accumulated in fp64."""
    a, b = _pair(x, x_hat)
    total = 0.0
    step = auto_chunk(a.shape[1])
    for i in range(0, a.shape[0], step):
        r = a[i : i + step].to(torch.float64) - b[i : i + step].to(torch.float64)
        total += float((r * r).sum())
    return total / a.numel()


def fvu(x: Any, x_hat: Any) -> float:
    """Fraction of variance unexplained of x̂ for x, both [N, d]: Σ_d Var_n(x - x̂) / Σ_d Var_n(x), variances over
    the N samples.

    The project's one FVU (``monosemantic.sae.evaluate.fvu_from_sums``, also behind the training log and
    ``eval.json``), here from float64 sums streamed over chunks of any size of input.
    """
    a, b = _pair(x, x_hat)
    n, d = a.shape
    step = auto_chunk(d)
    sums = [torch.zeros(d, dtype=torch.float64) for _ in range(4)]
    shift_x = shift_e = None  # the first chunk's means: variances do not move, cancellation in the sums does
    for i in range(0, n, step):
        xa = a[i : i + step].to(torch.float64).cpu()
        e = xa - b[i : i + step].to(torch.float64).cpu()
        if shift_x is None or shift_e is None:
            shift_x, shift_e = xa.mean(0), e.mean(0)
        xa, e = xa - shift_x, e - shift_e
        for acc, part in zip(sums, (xa, xa * xa, e, e * e), strict=True):
            acc += part.sum(0)
    var_x = float((sums[1] - sums[0].pow(2) / n).sum())
    if var_x <= 1e-12 * float(sums[1].sum()):
        raise UserError("x has zero variance across the samples; FVU / explained variance is undefined")
    return float(fvu_from_sums(n, *sums))


def explained_variance(x: Any, x_hat: Any) -> float:
    """Fraction of variance explained, 1 - FVU, of x̂ for x, both [N, d]."""
    return 1.0 - fvu(x, x_hat)


def cosine_similarity(x: Any, x_hat: Any, eps: float = 1e-8) -> float:
    """Mean over the N samples of cos(x, x̂) = x·x̂ / (max(|x|, eps) · max(|x̂|, eps)), x and x̂ [N, d], as
    torch's cosine_similarity."""
    a, b = _pair(x, x_hat)
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    dot = (a64 * b64).sum(1)
    na = torch.linalg.vector_norm(a64, dim=1).clamp_min(eps)
    nb = torch.linalg.vector_norm(b64, dim=1).clamp_min(eps)
    return float((dot / (na * nb)).mean())


def firing_frequency(latents: Any) -> torch.Tensor:
    """Fraction of samples on which each latent is non-zero: float64 [F]."""
    z = _latents(latents)
    return (z != 0).sum(0).to(torch.float64).cpu() / z.shape[0]


def l0(latents: Any) -> float:
    """Mean number of non-zero latents per sample of latents [N, F]."""
    z = _latents(latents)
    return float((z != 0).sum(dtype=torch.int64)) / z.shape[0]


def dead_fraction(latents: Any) -> float:
    """Fraction of the F latents of latents [N, F] that are zero on every sample."""
    return float((firing_frequency(latents) == 0).to(torch.float64).mean())


def dense_fraction(latents: Any, threshold: float = DENSE_THRESHOLD) -> float:
    """Fraction of the F latents of latents [N, F] that fire on more than `threshold` of the samples (default
    10%)."""
    return float((firing_frequency(latents) > threshold).to(torch.float64).mean())


def _spliced_output(output: Any, make: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    hidden = output[0] if isinstance(output, tuple | list) else output
    if not isinstance(hidden, torch.Tensor):
        raise UserError(f"the hooked module returns {type(output).__name__}; expected a tensor or a tuple of them")
    new = torch.as_tensor(make(hidden))
    if new.shape != hidden.shape:
        raise UserError(f"encode_decode returned shape {tuple(new.shape)} for an input of {tuple(hidden.shape)}")
    new = new.to(device=hidden.device, dtype=hidden.dtype)
    if isinstance(output, tuple):
        return (new, *output[1:])
    if isinstance(output, list):
        return [new, *output[1:]]
    return new


def ce_recovered(
    model: nn.Module,
    input_ids: Any,
    module: nn.Module | str,
    encode_decode: Callable[[torch.Tensor], torch.Tensor],
    *,
    attention_mask: Any = None,
    batch_size: int = 8,
) -> dict[str, float]:
    """Next-token CE of a causal LM when one module's output is replaced by its SAE reconstruction.

    module: the module (or its dotted name in `model`) whose output is spliced; a tuple output (HF decoder
    layers in older transformers, attention blocks) has its first element replaced. encode_decode maps the
    activation tensor to its reconstruction (same shape). Three forward passes per batch: clean, spliced,
    zero-ablated (output replaced by zeros). CE is the mean over predicted tokens (positions 1..T-1 whose
    token and context are both inside attention_mask). Returns ``clean_ce``, ``spliced_ce``, ``zero_ce``,
    ``ce_recovered`` = (zero - spliced) / (zero - clean) (NaN when zero == clean), ``kl`` = mean per token of
    KL(clean || spliced) in nats, and ``n_tokens``. The model runs in eval mode (its mode is restored).
    """
    ids = torch.as_tensor(input_ids)
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2 or ids.shape[1] < 2 or ids.shape[0] == 0:
        raise UserError(f"input_ids must be [batch, seq] with seq >= 2; got shape {tuple(ids.shape)}")
    mask = torch.ones_like(ids, dtype=torch.bool) if attention_mask is None else torch.as_tensor(attention_mask).bool()
    if mask.shape != ids.shape:
        raise UserError(f"attention_mask has shape {tuple(mask.shape)} but input_ids has {tuple(ids.shape)}")
    target_mod = model.get_submodule(module) if isinstance(module, str) else module
    mode: dict[str, str | None] = {"now": None}

    def hook(_mod: nn.Module, _inp: Any, out: Any) -> Any:
        if mode["now"] == "sae":
            return _spliced_output(out, encode_decode)
        if mode["now"] == "zero":
            return _spliced_output(out, torch.zeros_like)
        return None

    device = next(model.parameters()).device
    sums = {"clean": 0.0, "sae": 0.0, "zero": 0.0, "kl": 0.0}
    n_tok = 0
    was_training = model.training
    model.eval()
    handle = target_mod.register_forward_hook(hook)
    try:
        with torch.inference_mode():
            for i in range(0, ids.shape[0], batch_size):
                b_ids, b_mask = ids[i : i + batch_size].to(device), mask[i : i + batch_size].to(device)
                valid = (b_mask[:, 1:] & b_mask[:, :-1]).to(torch.float64)
                targets = b_ids[:, 1:]
                logp = {}
                for name in ("clean", "sae", "zero"):
                    mode["now"] = None if name == "clean" else name
                    out = model(input_ids=b_ids, attention_mask=b_mask.long())
                    logits = out.logits if hasattr(out, "logits") else out[0]
                    logp[name] = torch.log_softmax(logits[:, :-1].float(), dim=-1)
                    nll = -logp[name].gather(-1, targets[..., None]).squeeze(-1).to(torch.float64)
                    sums[name] += float((nll * valid).sum())
                kl = (logp["clean"].exp() * (logp["clean"] - logp["sae"])).sum(-1).to(torch.float64)
                sums["kl"] += float((kl * valid).sum())
                n_tok += int(valid.sum())
    finally:
        mode["now"] = None
        handle.remove()
        model.train(was_training)
    if n_tok == 0:
        raise UserError("no predicted token lies inside attention_mask; nothing to score")
    clean, sae, zero = (sums[k] / n_tok for k in ("clean", "sae", "zero"))
    recovered = (zero - sae) / (zero - clean) if zero != clean else math.nan
    return {"clean_ce": clean, "spliced_ce": sae, "zero_ce": zero, "ce_recovered": recovered,
            "kl": sums["kl"] / n_tok, "n_tokens": n_tok}

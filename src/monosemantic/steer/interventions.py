"""Interventions through SAE features at one hook of a model, as a context manager over plain PyTorch hooks.

Inside ``with steering(model, sae, edits):`` every forward pass of the model (prompt and generated tokens alike)
encodes the activations ``h`` at the SAE's hook, edits the latents and writes the result back:

- latent edits (``clamp`` f_j = α, ``clamp_zero_others`` f_j = α and every other latent 0, ``add`` f_j += α,
  ``scale`` f_j *= α, ``ablate`` f_j = 0) change ``h`` by ``decode(f') − decode(f)`` only (error term
  ``keep_error``, the default), or replace it with ``decode(f')`` (``reconstruction``, which also injects the SAE's
  reconstruction error: the clamp experiments of Pach et al., arXiv 2504.02821, §5);
- the ``direction`` edit is the steering rule of Härle et al. (arXiv 2506.19382, §5): x' = x + α Σ_{i∈S} β γ W_dec[i]
  with β = ‖x‖ / ‖W_dec[i]‖ and γ = 1 (``const``), f_i (``act``) or, for α > 0, 1 − f_i (``balanced``; f_i for
  α ≤ 0). The SAE only supplies f and W_dec; with ``reconstruction`` the base is ``decode(f)`` instead of x.

An edit that changes nothing (α = 0 for add and direction, α = 1 for scale) adds exactly zero, so generation is
token for token the unsteered model's.

The hooked output may be a sequence [B, T, d] (every token: a text position, or a vision tower's CLS and patches),
a CNN map [B, C, H, W] (every spatial position, channels as d) or vectors [B, d]. With ``pooling="pooled"`` the
edit reads each item's mean over positions and shifts every position by the change of that mean (the SAE of a
pooled store sees one row per item).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from monosemantic.errors import UserError
from monosemantic.sae.core import SAE
from monosemantic.sources.base import Model
from monosemantic.sources.hooks import StopForward, capture, register_hook, resolve_hook
from monosemantic.sources.vlm import VISION_MARKERS
from monosemantic.steer.kinds import EDIT_KINDS, POOLINGS, EditKind, ErrorTerm, Gamma, Pooling


@dataclass(frozen=True)
class Edit:
    """One edit of one or several latents."""

    latents: tuple[int, ...]
    """The latents edited together (the set S of the direction rule)."""
    kind: EditKind = "add"
    """clamp (f_j = α), clamp_zero_others (f_j = α, every other latent 0), add (f_j += α), scale (f_j *= α),
    ablate (f_j = 0) or direction (x += α Σ β γ W_dec[j])."""
    alpha: float = 0.0
    """Strength α (ignored by ablate)."""
    gamma: Gamma = "const"
    """Direction edit: γ = 1 (const), f_j (act), or 1 − f_j for α > 0 and f_j otherwise (balanced)."""

    def is_identity(self) -> bool:
        """Whether the edit leaves every latent (and so the activations, with keep_error) unchanged."""
        return (self.kind in ("add", "direction") and self.alpha == 0) or (self.kind == "scale" and self.alpha == 1)


def check_edits(sae: SAE, edits: Sequence[Edit]) -> None:
    """One-line errors for latents out of range, unknown kinds and non-finite strengths."""
    n = sae.cfg.d_sae
    for e in edits:
        if e.kind not in EDIT_KINDS:
            raise UserError(f"unknown edit {e.kind!r}; choose {', '.join(EDIT_KINDS)}")
        if e.gamma not in ("const", "act", "balanced"):
            raise UserError(f"unknown gamma {e.gamma!r}; choose const, act or balanced")
        if not e.latents:
            raise UserError("an edit needs at least one latent")
        bad = [j for j in e.latents if not 0 <= int(j) < n]
        if bad:
            raise UserError(f"latent {bad[0]} is out of range; this SAE has latents 0 to {n - 1}")
        if not math.isfinite(e.alpha):
            raise UserError(f"alpha must be a finite number, got {e.alpha}")


def edit_latents(f: Tensor, edits: Sequence[Edit]) -> Tensor:
    """The latents [N, d_sae] after the latent edits (clamp, add, scale, ablate) in order; direction edits leave the
    latents as they are."""
    for e in edits:
        if e.kind == "direction" or e.is_identity():
            continue
        idx = torch.as_tensor(e.latents, dtype=torch.long, device=f.device)
        base = torch.zeros_like(f) if e.kind == "clamp_zero_others" else f
        f = base.index_copy(-1, idx, _new_values(f.index_select(-1, idx), e))
    return f


def _new_values(cur: Tensor, e: Edit) -> Tensor:
    if e.kind in ("clamp", "clamp_zero_others"):
        return torch.full_like(cur, e.alpha)
    if e.kind == "add":
        return cur + e.alpha
    if e.kind == "scale":
        return cur * e.alpha
    return torch.zeros_like(cur)


def apply_edits(sae: SAE, h: Tensor, edits: Sequence[Edit], error_term: ErrorTerm = "keep_error") -> Tensor:
    """The edited activations for rows ``h`` [N, d] (pure: ``h`` is not modified). Only the edited latents are
    decoded: the change is ``Σ_S (f'_j − f_j) W_dec[j]`` (see ``SAE.decode_delta``)."""
    live = [e for e in edits if not e.is_identity()]
    if not live and error_term == "keep_error":
        return h
    x = h.to(sae.W_dec.dtype)
    # the constant-γ direction rule reads no latent, so it needs no encoding at all
    needs_f = error_term != "keep_error" or any(e.kind != "direction" or e.gamma != "const" for e in live)
    f = sae.encode(x) if needs_f else None
    out = x if error_term == "keep_error" or f is None else sae.decode(f)  # reconstruction always encodes
    for e in live:
        idx = torch.as_tensor(e.latents, dtype=torch.long, device=x.device)
        if e.kind == "direction":
            out = out + _direction(sae, x, None if f is None else f.index_select(-1, idx), idx, e)
            continue
        assert f is not None
        if e.kind == "clamp_zero_others":
            # every latent changes, so the whole decoder is read; b_dec cancels in the difference
            edited = edit_latents(f, [e])
            out = out + (sae.decode(edited) - sae.decode(f))
            f = edited
            continue
        cur = f.index_select(-1, idx)
        new = _new_values(cur, e)
        out = out + sae.decode_delta(idx, new - cur)
        f = f.index_copy(-1, idx, new)  # later edits of the same latents start from this one
    return out.to(h.dtype)


def _direction(sae: SAE, x: Tensor, f_s: Tensor | None, idx: Tensor, e: Edit) -> Tensor:
    w = sae.W_dec.index_select(0, idx)  # [S, d]
    beta = x.norm(dim=-1, keepdim=True) / w.norm(dim=-1).clamp_min(1e-12)  # [N, S]
    if e.gamma == "const":
        return e.alpha * beta @ w
    assert f_s is not None
    gamma = f_s if e.gamma == "act" or e.alpha <= 0 else 1 - f_s  # balanced: 1 − f_j only when adding
    return e.alpha * (beta * gamma) @ w


def sae_hook(sae: SAE, module: nn.Module) -> str:
    """The module path of ``module`` the SAE was trained on (from its metadata), checked to exist."""
    hook = sae.cfg.metadata.get("hook_name") or (sae.cfg.metadata.get("monosemantic") or {}).get("hook")
    if not hook:
        raise UserError("this SAE does not record the hook it was trained on; name it with --hook")
    return resolve_hook(module, str(hook))


def check_sae_fits(model: Model, sae: SAE, hook: str | None) -> str:
    """The hook of ``model`` (a ``monosemantic`` Model) to steer at (``hook``, else the SAE's own), after checking the
    SAE's width against one probe forward pass."""
    path = resolve_hook(model.module, hook) if hook else sae_hook(sae, model.module)
    with torch.inference_mode(), capture(model.module, [path]) as got, contextlib.suppress(StopForward):
        model.forward(model.prepare(["Hello"]))
    if path not in got:
        raise UserError(f"hook {path!r} never ran in the forward pass; steer a module on the main path")
    width = int(got[path].shape[-1])
    if width != sae.cfg.d_in:
        raise UserError(f"the SAE reads width {sae.cfg.d_in} but {path!r} of this model gives width {width}; use an "
                        "SAE trained on this model and hook")
    return path


def _as_items(h: Tensor) -> Tensor:
    """A hooked output as [B, P, d]: sequences as they are, CNN maps [B, C, H, W] as H·W positions (a view, not a
    copy, where the layout allows), vectors as one position."""
    if h.dim() == 4:
        return h.flatten(2).transpose(1, 2)
    if h.dim() == 2:
        return h.unsqueeze(1)
    return h


def _from_items(x: Tensor, like: Tensor) -> Tensor:
    """Undo `_as_items` for an output shaped like ``like``."""
    if like.dim() == 4:
        return x.transpose(1, 2).reshape(like.shape)
    return x.reshape(like.shape)


def edit_output(sae: SAE, h: Tensor, edits: Sequence[Edit], error_term: ErrorTerm = "keep_error",
                pooling: Pooling = "tokens") -> Tensor:
    """The edited hook output ``h`` ([B, T, d], [B, C, H, W] or [B, d]); ``h`` itself when nothing changes.

    ``tokens`` edits every position; ``pooled`` edits each item's mean over positions and adds the change of the
    mean to every position."""
    items = _as_items(h)
    if pooling == "pooled":
        mean = items.mean(dim=1)
        new_mean = apply_edits(sae, mean, edits, error_term)
        if new_mean is mean:
            return h
        return _from_items(items + (new_mean - mean).unsqueeze(1), h)
    rows = items.reshape(-1, items.shape[-1])
    new = apply_edits(sae, rows, edits, error_term)
    if new is rows:
        return h
    return _from_items(new.reshape(items.shape), h)


def hook_width(h: Tensor) -> int:
    """The width d of a hooked output: channels of a CNN map, else the last dimension."""
    return int(h.shape[1] if h.dim() == 4 else h.shape[-1])


@dataclass
class SteeringRecord:
    """What a ``steering`` block did: where it edited, how, and how often (counted while the block runs)."""

    hook: str
    """The module path edited."""
    error_term: ErrorTerm
    pooling: Pooling
    calls: int = 0
    """Forward passes the hook ran on."""
    positions: int = 0
    """Positions edited over those passes (items × positions)."""


@contextmanager
def steering(model: Any, sae: SAE, edits: Sequence[Edit], *, hook: str | None = None,
             error_term: ErrorTerm = "keep_error", pooling: Pooling = "tokens",
             first: bool | None = None) -> Iterator[SteeringRecord]:
    """Apply ``edits`` at the SAE's hook of ``model`` (a ``monosemantic`` Model or a plain ``nn.Module``) on every
    forward pass inside the block, at every position (``tokens``) or on each item's mean (``pooled``). Yields a
    a :class:`SteeringRecord`: the hook, the error term, the pooling, the calls seen and the positions edited.

    ``first`` runs the edit before the block's other forward hooks, so that they see the edited output; it is
    needed where transformers 5 records ``hidden_states`` with hooks of its own, as LLaVA does for the image
    features it reads from its vision tower. Default: only for hooks inside a vision tower."""
    module: nn.Module = getattr(model, "module", model)
    if error_term not in ("keep_error", "reconstruction"):
        raise UserError(f"unknown error term {error_term!r}; choose keep_error or reconstruction")
    if pooling not in POOLINGS:
        raise UserError(f"unknown pooling {pooling!r}; choose {' or '.join(POOLINGS)}")
    check_edits(sae, edits)
    path = resolve_hook(module, hook) if hook else sae_hook(sae, module)
    param = next(module.parameters(), None)
    if param is not None and sae.W_dec.device != param.device:
        sae = sae.to(param.device)
    record = SteeringRecord(hook=path, error_term=error_term, pooling=pooling)

    def hook_fn(out: Any) -> Any:
        h = out[0] if isinstance(out, tuple | list) else out
        if not isinstance(h, Tensor):
            raise UserError(f"hook {path!r} returns {type(h).__name__}, not a tensor; steer another module")
        if h.dim() not in (2, 3, 4):
            raise UserError(f"hook {path!r} returns a tensor of shape {tuple(h.shape)}; steer a module whose output "
                            "is [B, T, d], [B, C, H, W] or [B, d]")
        if hook_width(h) != sae.cfg.d_in:
            raise UserError(f"the SAE reads width {sae.cfg.d_in} but hook {path!r} gives width {hook_width(h)}; use "
                            "an SAE trained on this model and hook")
        record.calls += 1
        record.positions += int(_as_items(h).shape[0] * _as_items(h).shape[1])
        with torch.no_grad():
            new = edit_output(sae, h, edits, error_term, pooling)
        if new is h or new.data_ptr() == h.data_ptr():
            return None
        if isinstance(out, tuple | list):
            return type(out)((new, *out[1:]))
        return new

    if first is None:
        first = any(m in path.split(".") for m in VISION_MARKERS)
    handle = register_hook(module, path, hook_fn, prepend=first)
    try:
        yield record
    finally:
        handle.remove()

"""Where the units live: the kind of site an SAE reads (residual stream, MLP activation, attention output), the MLP
activation whose neurons are the baseline, and the SAEs checked against the model they are applied to (Chen et al.,
"The Knowledge Microscope", arXiv 2502.12483, §3)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from monosemantic.errors import UserError
from monosemantic.sae.core import SAE
from monosemantic.sources.base import Model
from monosemantic.sources.hooks import StopForward, capture, resolve_hook
from monosemantic.steer.interventions import sae_hook


def site_kind(hook: str) -> str:
    """residual, mlp (activation), attention or other, from a hook path."""
    if hook.endswith(":input") and "mlp" in hook:
        return "mlp"
    if re.search(r"(self_attn|attention|attn)$", hook):
        return "attention"
    if re.search(r"layers?\.\d+$|\.h\.\d+$", hook):
        return "residual"
    return "other"


def default_neuron_hook(module: nn.Module, sae_hooks: Sequence[str]) -> str:
    """The MLP activation (input of the down projection) of the first SAE's block: the neurons' hook."""
    m = re.match(r"(.*?(?:layers|layer|h)\.\d+)", sae_hooks[0])
    if not m:
        raise UserError(f"cannot tell the block of hook {sae_hooks[0]!r}; name the MLP activation with --neuron-hook "
                        "(e.g. model.layers.15.mlp.down_proj:input)")
    try:
        return resolve_hook(module, m.group(1) + ".mlp.down_proj:input")
    except UserError:
        raise UserError(f"block {m.group(1)!r} has no mlp.down_proj; name the MLP activation with --neuron-hook") \
            from None


def fit_saes(model: Model, saes: Sequence[tuple[Path, SAE]]) -> list[tuple[str, str, SAE]]:
    """(id, hook path, SAE) per SAE, each checked to read a hook of this model of its width (one probe forward),
    and moved to the model's device. The id is ``<site kind>:<hook>`` (``#n`` added to a repeated one)."""
    hooks = [sae_hook(sae, model.module) for _, sae in saes]
    with torch.inference_mode(), capture(model.module, hooks) as got, contextlib.suppress(StopForward):
        model.forward(model.prepare(["Hello there"]))
    result, ids = [], set()
    for hook, (path, sae) in zip(hooks, saes, strict=True):
        width = int(got[hook].shape[-1])
        if width != sae.cfg.d_in:
            raise UserError(f"the SAE {path} reads width {sae.cfg.d_in} but hook {hook!r} of this model gives width "
                            f"{width}; use an SAE trained on this model and hook")
        sid = f"{site_kind(hook)}:{hook}"
        if sid in ids:
            sid = f"{sid}#{len(ids)}"
        ids.add(sid)
        result.append((sid, hook, sae.to(next(model.module.parameters()).device).eval()))
    return result

"""Hook points are module paths (``encoder.layer.3``, ``model.layers.15``, ``features.13``).

A path may be given in full or as a unique dotted suffix, so the same name works across transformers versions
that nest vision towers differently. A path ending in ``:input`` names the module's (first) input instead of its
output: ``model.layers.15.mlp.down_proj:input`` is the MLP activation of a LLaMA block, act(gate) * up, which no
module returns. Capturing stops the forward pass once every requested hook has fired.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from monosemantic.errors import UserError
from monosemantic.sources.base import Model


class StopForward(Exception):
    """Raised inside the last needed hook so the layers after it never run."""


INPUT_SUFFIX = ":input"
# down-projections whose input is an MLP's hidden activation (LLaMA/Gemma, OPT/BERT-style, GPT-2)
_MLP_OUT = ("mlp.down_proj", "mlp.fc2", "mlp.c_proj", "mlp.dense_4h_to_h")


def split_hook(path: str) -> tuple[str, bool]:
    """The module path of a hook and whether the hook reads the module's input (``path:input``)."""
    if path.endswith(INPUT_SUFFIX):
        return path[: -len(INPUT_SUFFIX)], True
    return path, False


def resolve_hook(module: nn.Module, path: str) -> str:
    """The full module path for ``path`` (exact, or the unique module whose path ends with it), keeping an
    ``:input`` suffix."""
    base, is_input = split_hook(path)
    return _resolve_module(module, base) + (INPUT_SUFFIX if is_input else "")


def register_hook(module: nn.Module, path: str, fn: Callable[[Any], Any], *, prepend: bool = False) -> Any:
    """Call ``fn`` on the output of hook ``path`` (a full path from ``resolve_hook``), or on the first input for an
    ``:input`` path, on every forward pass; a non-None return value replaces it. Returns the removable handle.

    ``prepend`` runs ``fn`` before the module's other hooks: an edit must be what they see, and transformers 5
    records ``hidden_states`` with hooks of its own (LLaVA reads its image features from them)."""
    base, is_input = split_hook(path)
    target = dict(module.named_modules())[base]
    if not is_input:
        return target.register_forward_hook(lambda _m, _i, out: fn(out), prepend=prepend)

    def pre(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not args:
            raise UserError(f"hook {path!r}: the module got no positional input; hook its output instead")
        new = fn(args[0])
        return None if new is None else ((new, *args[1:]), kwargs)

    return target.register_forward_pre_hook(pre, with_kwargs=True, prepend=prepend)


def _resolve_module(module: nn.Module, path: str) -> str:
    names = [n for n, _ in module.named_modules() if n]
    if not names:
        raise UserError("this model has no layers to hook (an embedding-only encoder, for MS as --encoder); "
                        "extract from a network with layers")
    if path in names:
        return path
    matches = [n for n in names if n.endswith("." + path)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UserError(f"hook {path!r} is ambiguous; it matches {', '.join(matches[:5])}; give the full path")
    close = difflib.get_close_matches(path, names, n=5, cutoff=0.6)
    hint = f"close matches: {', '.join(close)}" if close else f"e.g. {', '.join(_examples(names))}"
    raise UserError(
        f"unknown hook {path!r} for this model; {hint} (`monosemantic hooks MODEL` lists them all with widths)"
    )


def _examples(names: Sequence[str]) -> list[str]:
    """A few block-level paths (those ending in a number) to show as examples."""
    blocks = [n for n in names if n.rsplit(".", 1)[-1].isdigit() and n.count(".") <= 3]
    return (blocks or list(names))[:: max(1, len(blocks) // 6 or 1)][:6]


def as_tokens(output: Any) -> torch.Tensor:
    """A hooked output as [B, T, d]: sequences as they are, CNN maps as H*W tokens, vectors as one token."""
    if isinstance(output, tuple | list):
        output = output[0]
    elif not isinstance(output, torch.Tensor) and hasattr(output, "to_tuple"):
        output = output.to_tuple()[0]
    if not isinstance(output, torch.Tensor):
        raise UserError(f"this hook returns {type(output).__name__}, not a tensor; choose another module")
    if output.dim() == 4:
        return output.flatten(2).transpose(1, 2)
    if output.dim() == 3:
        return output
    if output.dim() == 2:
        return output.unsqueeze(1)
    raise UserError(f"this hook returns a tensor of shape {tuple(output.shape)}; expected 2 to 4 dimensions")


@contextmanager
def capture(module: nn.Module, paths: Sequence[str], stop: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``paths`` as [B, T, d]; with ``stop``, end the forward after the last of them."""
    captured: dict[str, torch.Tensor] = {}
    wanted = set(paths)
    handles = []

    def make(path: str):
        def hook(out: Any) -> None:
            captured[path] = as_tokens(out).detach()
            if stop and wanted.issubset(captured):
                raise StopForward

        return hook

    for path in paths:
        handles.append(register_hook(module, path, make(path)))
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


def run_captured(model_forward: Any, batch: Any, module: nn.Module, paths: Sequence[str]) -> dict[str, torch.Tensor]:
    """One forward pass that returns the requested hooks' outputs (path -> tensor, [B, T, d] for token models,
    [B, C, H, W] or [B, d] for vision ones) and skips the layers after them."""
    with capture(module, paths) as captured, contextlib.suppress(StopForward):
        model_forward(batch)
    missing = [p for p in paths if p not in captured]
    if missing:
        raise UserError(f"hook {missing[0]!r} never ran in the forward pass; choose a module on the main path")
    return captured


@dataclass(frozen=True)
class HookInfo:
    """One hook point found by `list_hooks`: its module path, output width d, the output shape of one sample
    pass (e.g. [1, T, d] or [1, C, H, W]) and the module's class name."""

    path: str
    width: int
    shape: tuple[int, ...]
    kind: str


@torch.inference_mode()
def list_hooks(module: nn.Module, model_forward: Any, batch: Any) -> list[HookInfo]:
    """Every module on the forward path, in execution order, with its output width (one sample pass); MLP
    down-projections also list their input (``path:input``, the MLP activation) just before them."""
    seen: dict[str, HookInfo] = {}
    handles = []
    for name, mod in module.named_modules():
        if not name:
            continue

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name, kind: str = type(mod).__name__) -> None:
            if name in seen:
                return
            try:
                t = as_tokens(out)
            except UserError:
                return
            raw = out[0] if isinstance(out, tuple | list) else out
            shape = tuple(raw.shape) if isinstance(raw, torch.Tensor) else tuple(t.shape)
            seen[name] = HookInfo(name, int(t.shape[-1]), shape, kind)

        handles.append(mod.register_forward_hook(hook))
        if isinstance(mod, nn.Linear) and name.endswith(_MLP_OUT):

            def pre(_m: nn.Module, inp: Any, name: str = name) -> None:
                key = name + INPUT_SUFFIX
                if key not in seen and inp and isinstance(inp[0], torch.Tensor):
                    seen[key] = HookInfo(key, int(inp[0].shape[-1]), tuple(inp[0].shape), "MLP activation (input)")

            handles.append(mod.register_forward_pre_hook(pre))
    try:
        model_forward(batch)
    finally:
        for h in handles:
            h.remove()
    return list(seen.values())


def model_hooks(model: Model) -> list[HookInfo]:
    """Every hook point of a loaded model (see `list_hooks`), from one sample: a short sentence for a text model,
    a black 32-px image for an image model."""
    sample = ["A cat sits on the mat."] if model.modality == "text" else [np.zeros((32, 32, 3), np.uint8)]
    return list_hooks(model.module, model.forward, model.prepare(sample))

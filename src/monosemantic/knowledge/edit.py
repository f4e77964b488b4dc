"""FeatureEdit: erase facts by zeroing entries of an MLP's output matrix through SAE features, against the
neuron baseline (Chen et al., "The Knowledge Microscope", arXiv 2502.12483, §5).

For each feature i localised to the fact, at an SAE on the MLP activation (the input of ``down_proj``, whose
weight W is d_model × d_mlp), the probe h^i = W_dec[i] is the feature in MLP-neuron coordinates and
K_i = {k : |h^i_k| > τ₂ · max_k |h^i_k|}:

- ``columns``: W[:, K_i] ← 0 (every output of the neurons the feature lives on);
- ``block``: W[R_i, K_i] ← 0 with R_i = {r : |(W h^i)_r| > τ₃ · max_r |(W h^i)_r|}, only the output rows the
  feature writes to;
- neuron baseline: W[:, k] ← 0 for the fact's top neurons by attribution.

An edit is a :class:`WeightPatch` (which entries of which parameters are zeroed) that applies to a model, reverts
exactly (the zeroed values are kept while applied) and saves as ``patch.safetensors`` plus ``patch.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from monosemantic.errors import UserError
from monosemantic.files import write_json
from monosemantic.knowledge import metrics as M
from monosemantic.knowledge.lm import answer_ids, device_of, encode, text_nll, top1
from monosemantic.sae.core import SAE
from monosemantic.sources.datasets.facts import Prompt

EditMode = Literal["columns", "block"]
EDIT_MODES: tuple[str, ...] = ("columns", "block")


@dataclass
class WeightPatch:
    """Entries of named parameters set to zero; apply, revert and save."""

    masks: dict[str, Tensor]
    """Parameter name -> bool mask of the parameter's shape (True = zeroed)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """What the patch erases and how (method, facts, units, thresholds)."""
    _saved: dict[str, Tensor] | None = field(default=None, repr=False)

    @property
    def n_entries(self) -> int:
        """Number of weight entries zeroed."""
        return int(sum(int(m.sum()) for m in self.masks.values()))

    @property
    def applied(self) -> bool:
        """Whether the patch is on the model now."""
        return self._saved is not None

    def _params(self, module: nn.Module) -> dict[str, nn.Parameter]:
        params = dict(module.named_parameters())
        for name, m in self.masks.items():
            if name not in params:
                raise UserError(f"the patch edits {name!r}, which this model does not have; apply it to the model "
                                "it was made for")
            if tuple(params[name].shape) != tuple(m.shape):
                raise UserError(f"the patch's mask for {name!r} has shape {tuple(m.shape)} but the parameter has "
                                f"{tuple(params[name].shape)}; apply it to the model it was made for")
        return params

    @torch.no_grad()
    def apply(self, module: nn.Module) -> WeightPatch:
        """Zero the masked entries in place, keeping their values for ``revert``."""
        if self._saved is not None:
            raise UserError("this patch is already applied; revert it first")
        params = self._params(module)
        saved = {}
        for name, m in self.masks.items():
            p = params[name]
            mask = m.to(p.device)
            saved[name] = p.data[mask].clone()
            p.data[mask] = 0
        self._saved = saved
        return self

    @torch.no_grad()
    def revert(self, module: nn.Module) -> None:
        """Write the zeroed values back: the model is bit for bit as before ``apply``."""
        if self._saved is None:
            raise UserError("this patch is not applied; there is nothing to revert")
        params = self._params(module)
        for name, m in self.masks.items():
            params[name].data[m.to(params[name].device)] = self._saved[name]
        self._saved = None

    @contextmanager
    def on(self, module: nn.Module) -> Iterator[WeightPatch]:
        """Applied inside the block, reverted after it (also on error)."""
        self.apply(module)
        try:
            yield self
        finally:
            self.revert(module)

    def save(self, folder: str | Path) -> Path:
        """``FOLDER/patch.safetensors`` (the masks as uint8) and ``FOLDER/patch.json`` (the metadata): the patch's
        own serialisation, read back by ``load``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.to(torch.uint8).contiguous().cpu() for k, v in self.masks.items()},
                  str(folder / "patch.safetensors"))
        write_json(folder / "patch.json", {"format": "monosemantic-weight-patch", "n_entries": self.n_entries,
                                           **self.meta})
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> WeightPatch:
        """A patch saved with ``save`` (patch.safetensors + patch.json)."""
        folder = Path(folder)
        if not (folder / "patch.safetensors").is_file() or not (folder / "patch.json").is_file():
            raise UserError(f"{folder} holds no saved patch (patch.safetensors and patch.json)")
        meta = json.loads((folder / "patch.json").read_text(encoding="utf-8"))
        meta.pop("format", None)
        meta.pop("n_entries", None)
        return cls({k: v.bool() for k, v in load_file(str(folder / "patch.safetensors")).items()}, meta)


def weight_name(module: nn.Module, down_proj: str) -> str:
    """The parameter name of the weight of module ``down_proj`` (a path, with or without ``:input``)."""
    base = down_proj.split(":")[0]
    mod = dict(module.named_modules()).get(base)
    if not isinstance(mod, nn.Linear):
        raise UserError(f"{base!r} is not a linear layer; FeatureEdit needs an SAE on an MLP activation "
                        "(the input of mlp.down_proj)")
    return f"{base}.weight"


def probe_columns(probe: Tensor, tau: float) -> Tensor:
    """K = {k : |h_k| > τ · max |h|} as a bool mask."""
    a = probe.abs()
    return a > tau * a.max()


@torch.no_grad()
def feature_edit(module: nn.Module, sae: SAE, down_proj: str, features: Sequence[int], *,
                 mode: EditMode = "columns", tau2: float = 0.2, tau3: float = 0.2,
                 meta: dict[str, Any] | None = None) -> WeightPatch:
    """The FeatureEdit patch zeroing W[:, K_i] (``columns``) or W[R_i, K_i] (``block``) for every feature i."""
    if mode not in EDIT_MODES:
        raise UserError(f"unknown --edit-mode {mode!r}; choose {', '.join(EDIT_MODES)}")
    name = weight_name(module, down_proj)
    w = dict(module.named_parameters())[name].detach()
    if sae.cfg.d_in != w.shape[1]:
        raise UserError(f"the SAE reads width {sae.cfg.d_in} but {name} takes {w.shape[1]} MLP neurons; use an SAE "
                        "trained on this MLP activation")
    mask = torch.zeros(w.shape, dtype=torch.bool)
    for i in features:
        h = sae.W_dec[int(i)].detach().float().cpu()
        cols = probe_columns(h, tau2)
        if mode == "columns":
            mask[:, cols] = True
        else:
            out = (w.float().cpu() @ h).abs()
            rows = out > tau3 * out.max()
            mask |= rows[:, None] & cols[None, :]
    info = {"method": f"FeatureEdit ({mode})", "features": [int(i) for i in features], "tau2": tau2,
            "tau3": tau3 if mode == "block" else None, "parameter": name}
    return WeightPatch({name: mask}, {**info, **(meta or {})})


@torch.no_grad()
def neuron_edit(module: nn.Module, down_proj: str, neurons: Sequence[int], *,
                meta: dict[str, Any] | None = None) -> WeightPatch:
    """The neuron baseline: zero the output columns W[:, k] of the given MLP neurons."""
    name = weight_name(module, down_proj)
    w = dict(module.named_parameters())[name]
    mask = torch.zeros(w.shape, dtype=torch.bool)
    mask[:, [int(k) for k in neurons]] = True
    return WeightPatch({name: mask}, {"method": "neurons", "neurons": [int(k) for k in neurons], "parameter": name,
                                      **(meta or {})})


@dataclass(frozen=True)
class EditScore:
    """How well one patch erases its facts and how little else it changes (Chen et al., arXiv 2502.12483, §5)."""

    method: str
    n_erased: int
    """Facts the patch erases (their edit prompts come first among the scored prompts)."""
    reliability: float
    """Share of the edit prompts whose greedy answer is no longer the answer's first token."""
    generalisation: float
    """The same on the erased facts' paraphrases (NaN without paraphrases)."""
    locality: float
    """Share of other facts' prompts whose greedy next token is unchanged."""
    delta_ppl: float
    """Relative perplexity change on general text."""
    n_entries: int
    n_columns: int
    """Output columns (MLP neurons) the patch touches."""
    units: list[int] | None
    """The features or neurons the patch was made from."""


def score_edit(module: nn.Module, tok: Any, patch: WeightPatch, prompts: Sequence[Prompt], answers: Sequence[str],
               n_own: int, n_para: int, texts: Sequence[str], ppl_before: float, *, max_tokens: int = 128,
               batch_size: int = 32) -> EditScore:
    """Apply ``patch``, read the greedy next token of every prompt (the ``n_own`` edit prompts of the erased facts,
    then their ``n_para`` paraphrases, then other facts' prompts) and the perplexity of ``texts``, and revert."""
    first = torch.tensor([answer_ids(tok, p.text, a)[0] for p, a in zip(prompts, answers, strict=True)])
    with patch.on(module), torch.inference_mode():
        got = []
        for a in range(0, len(prompts), batch_size):
            enc = encode(tok, prompts[a:a + batch_size], answers[a:a + batch_size], device=device_of(module))
            got.append(top1(module, enc).cpu())
        after = torch.cat(got)
        nll, count = text_nll(module, tok, texts, max_tokens=max_tokens)
    a, b = n_own, n_own + n_para
    mask = next(iter(patch.masks.values()))
    return EditScore(
        method=patch.meta["method"], n_erased=n_own, reliability=M.reliability(after[:a], first[:a]),
        generalisation=M.reliability(after[a:b], first[a:b]) if n_para else float("nan"),
        locality=M.locality(first[b:], after[b:]), delta_ppl=M.delta_ppl(ppl_before, M.perplexity(nll, count)),
        n_entries=patch.n_entries, n_columns=int(mask.any(0).sum()),
        units=patch.meta.get("features") or patch.meta.get("neurons"))

"""``monosemantic atoms``: are neurons, SAE features or threshold-SAE atoms the units of a layer?

After "Towards Atoms of Large Language Models" (Hu et al., arXiv 2509.20784): on the rows of one store hook, the
atomic inner product S̃ (the inverse uncentred second moment, with a ridge) is estimated, and three kinds of unit
are scored in both the Euclidean and the AIP geometry:

- neurons: D = I, codes = the activations themselves (R² = 1 by construction);
- SAE features: D = W_decᵀ of each ``--sae`` folder, codes = its latents;
- atoms: JumpReLU ("threshold") SAEs trained here at ``--capacities`` × H latents; the widest are the atoms, the
  others form the capacity sweep.

Per unit set: the faithfulness R² (raw and whitened), the unique fraction (μ_i < 1/(2K_i − 1) over each sample's
co-active units) and q*, the mean K, and the coherence μ of the dictionary; plus the angle histograms of the
activations and of the atoms, Euclidean against AIP. Written to ``atoms.json``, ``atoms.csv`` and ``atoms.html``.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from monosemantic.errors import UserError
from monosemantic.outputs import check_out, staged

RESULT_NAME = "atoms.json"
FORMAT = "monosemantic-atoms"
_MAX_COHERENCE_ATOMS = 32_768
"""Dictionaries up to this size get their full coherence μ (a blockwise N × N pass); larger ones are skipped."""


@dataclass(frozen=True)
class AtomsConfig:
    """Neurons, SAE features and threshold-SAE atoms of one layer, side by side."""

    acts: Path
    """Activation store (from `monosemantic extract`)."""
    out: Path
    """Folder for atoms.json, atoms.csv and atoms.html."""
    sae: list[Path] = field(default_factory=list)
    """SAE folder(s) trained on this hook to score as features; a sweep folder counts as all its SAEs."""
    hook: str | None = None
    """Hook of the store (default: its only hook)."""
    capacities: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0])
    """Threshold-SAE (JumpReLU) widths as multiples of the layer width H; the largest are the atoms (paper: 4)."""
    target_l0: float = 32.0
    """Wanted L0 of the threshold SAEs (JumpReLU with the target-L0 loss; a plain L0 penalty barely moves the
    thresholds in runs of a million rows)."""
    threshold_init: float = 0.05
    """Initial JumpReLU threshold (inputs are scaled to unit mean squared norm)."""
    lr: float = 2e-3
    """Learning rate of the threshold SAEs."""
    train_tokens: str = "1M"
    """Training rows per threshold SAE."""
    metric_rows: int = 100_000
    """Rows the AIP metric S̃ is estimated on (the paper used 100k)."""
    rows: int = 20_000
    """Held-out rows every unit set is scored on (R², uniqueness, q*)."""
    ridge: float = 1e-4
    """Ridge ε of S̃ = (E[m mᵀ] + ε·tr/H·I)⁻¹."""
    pairs: Literal["co_active", "all"] = "co_active"
    """μ_i over each sample's co-active units, or the dictionary's coherence for every sample."""
    seed: int = 0
    """Seed for the row samples and the threshold SAEs."""
    device: str = "auto"
    """Where to train and encode: auto, cpu, cuda, cuda:N or mps."""
    overwrite: bool = False
    """Replace an earlier atoms result at --out."""


def run_atoms(cfg: AtomsConfig, *, progress: bool = True) -> dict[str, Any]:
    """Score the unit sets and write the result (see the module docstring); returns it."""
    from monosemantic.config import to_dict
    from monosemantic.metrics.scoring import expand_sae_paths
    from monosemantic.sae import SAE
    from monosemantic.store import ActivationStore

    _check(cfg)
    out = Path(cfg.out)
    sae_paths = expand_sae_paths(list(cfg.sae)) if cfg.sae else []
    check_out(out, what="an atoms result folder", marker=RESULT_NAME, overwrite=cfg.overwrite,
              inputs=[cfg.acts, *cfg.sae])
    store = ActivationStore.open(cfg.acts)
    hook = store._hook(cfg.hook)
    h = store.width(hook)
    saes = [(p.name, SAE.load(p)) for p in sae_paths]
    for p, (_, sae) in zip(sae_paths, saes, strict=True):
        if sae.cfg.d_in != h:
            raise UserError(f"SAE {p} reads width {sae.cfg.d_in} but hook {hook!r} of the store has width {h}; "
                            "give SAEs trained on this hook")
    started = time.perf_counter()
    train_rows, held = store.split(holdout=0.05, seed=cfg.seed)
    rng = np.random.default_rng([cfg.seed, 11])
    m_rows = np.sort(rng.choice(train_rows, size=min(len(train_rows), cfg.metric_rows), replace=False))
    s_rows = np.sort(rng.choice(held, size=min(len(held), cfg.rows), replace=False))
    from monosemantic.metrics.atoms import SingularMomentWarning, aip_metric, angle_histograms

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SingularMomentWarning)
        s_metric = aip_metric(store.gather(hook, m_rows), cfg.ridge)
    singular = [str(w.message) for w in caught if issubclass(w.category, SingularMomentWarning)]
    x = store.gather(hook, s_rows)
    with staged(out) as tmp:
        atoms = _train_atoms(cfg, store.root, hook, h, tmp / "threshold-saes")
        sets: list[tuple[str, str, Any]] = [("neurons", "neurons", None), *(("features", n, s) for n, s in saes),
                                            *(("atoms", n, s) for n, s in atoms)]
        rows = []
        for kind, name, sae in tqdm(sets, desc="atoms", unit="unit set", disable=not progress, dynamic_ncols=True):
            rows.append({"kind": kind, "id": name, **_score(x, sae, s_metric, cfg.pairs)})
        widest = atoms[-1][1] if atoms else None
        result = {
            "format": FORMAT, "config": to_dict(cfg), "hook": hook, "width": h,
            "model": store.manifest.model.get("name"), "dataset": store.manifest.dataset.get("name"),
            "metric_rows": len(m_rows), "scored_rows": len(s_rows), "singular_moment": singular, "units": rows,
            "angles": {"activations": angle_histograms(x, s_metric, seed=cfg.seed),
                       "atoms": angle_histograms(widest.W_dec.detach(), s_metric, seed=cfg.seed) if widest else None},
            "seconds": round(time.perf_counter() - started, 1),
        }
        (tmp / RESULT_NAME).write_text(json.dumps(result, indent=1, allow_nan=False))
        from monosemantic.pipeline.synth import to_csv
        from monosemantic.report.atoms_section import write_atoms_page

        (tmp / "atoms.csv").write_text(to_csv(rows))
        write_atoms_page(tmp, result)
    return result


def _check(cfg: AtomsConfig) -> None:
    if not cfg.capacities or any(not c > 0 for c in cfg.capacities):
        raise UserError(f"--capacities must be positive multiples of the layer width, got {cfg.capacities}")
    if cfg.rows < 10 or cfg.metric_rows < 10:
        raise UserError(f"--rows and --metric-rows must be at least 10, got {cfg.rows} and {cfg.metric_rows}")
    if not cfg.ridge >= 0:
        raise UserError(f"--ridge must be at least 0, got {cfg.ridge}")
    for name in ("target_l0", "threshold_init", "lr"):
        if not getattr(cfg, name) > 0:
            raise UserError(f"--{name.replace('_', '-')} must be greater than 0, got {getattr(cfg, name)}")
    from monosemantic.devices import resolve_device

    resolve_device(cfg.device)


def _train_atoms(cfg: AtomsConfig, store_root: Path, hook: str, h: int, work: Path) -> list[tuple[str, Any]]:
    """The capacity sweep of threshold SAEs, side by side from one pass; (name, SAE) by width."""
    from monosemantic.sae import SAE, train, train_config

    widths = sorted({max(1, round(c * h)) for c in cfg.capacities})
    tc = train_config(dict(acts=store_root, hook=hook, out=work, arch="jumprelu", d_sae=widths,
                           jumprelu_sparsity="target_l0", target_l0=cfg.target_l0, threshold_init=cfg.threshold_init,
                           lr=cfg.lr, tokens=cfg.train_tokens, seed=cfg.seed, progress=False, checkpoint_every=0,
                           device=cfg.device), where="atoms")
    folders = train(tc)
    saes = [(f"threshold x{w / h:g}", SAE.load(f)) for w, f in zip(widths, folders, strict=True)]
    return saes


def _codes(sae: Any, x: torch.Tensor) -> tuple[sp.csr_matrix, torch.Tensor]:
    """The latents of ``x`` as a sparse matrix, and the reconstruction, encoded in chunks on the SAE's device."""
    parts, recon = [], []
    device = sae.W_dec.device
    with torch.no_grad():
        for i in range(0, x.shape[0], 4096):
            f = sae.encode(x[i : i + 4096].to(device))
            recon.append(sae.decode(f).cpu())
            parts.append(sp.csr_matrix(f.cpu().numpy()))
    return sp.vstack(parts).tocsr(), torch.cat(recon)


def _score(x: torch.Tensor, sae: Any, s_metric: torch.Tensor, pairs: str) -> dict[str, Any]:
    from monosemantic.metrics.atoms import coherence, q_star, r2, unique_fraction

    out: dict[str, Any] = {}
    if sae is None:  # neurons: D = I, the codes are the activations, every sample uses (nearly) every neuron
        d = torch.eye(x.shape[1], dtype=torch.float64)
        k = (x != 0).sum(1).to(torch.float64)
        out["r2"], out["r2_whitened"] = 1.0, 1.0
        for geo, s in (("euclidean", None), ("aip", s_metric)):
            mu = coherence(d, s) if s is not None else 0.0
            unique = mu * (2 * k - 1) < 1  # with all H neurons active, μ_i is the whole dictionary's coherence
            out[f"unique_{geo}"] = float(unique.to(torch.float64).mean())
            out[f"q_star_{geo}"] = float(unique.to(torch.float64).mean())
            out[f"coherence_{geo}"] = mu
        out.update({"n_units": x.shape[1], "mean_k": float(k.mean())})
        return out
    codes, recon = _codes(sae, x)
    d = sae.W_dec.detach().cpu().T
    out["r2"] = r2(x, recon)
    out["r2_whitened"] = r2(x, recon, s_metric)
    for geo, s in (("euclidean", None), ("aip", s_metric)):
        out[f"unique_{geo}"] = unique_fraction(codes, d, s, pairs)
        out[f"q_star_{geo}"] = q_star(codes, d, s, pairs)
        out[f"coherence_{geo}"] = coherence(d, s) if d.shape[1] <= _MAX_COHERENCE_ATOMS else None
    out.update({"n_units": int(d.shape[1]), "mean_k": float(np.diff(codes.indptr).mean())})
    return out

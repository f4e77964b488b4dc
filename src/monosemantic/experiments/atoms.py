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

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from monosemantic import log
from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.experiment import Command, Result, Summary
from monosemantic.files import check_out, csv_text, staged, write_atomic, write_json
from monosemantic.metrics.atoms import (
    AngleHistogram,
    SingularMomentWarning,
    aip_metric,
    angle_histograms,
    coherence,
    q_star,
    r2,
    unique_fraction,
)
from monosemantic.report.render import write_result_page
from monosemantic.report.sections.atoms import KIND
from monosemantic.results import to_json
from monosemantic.sae import SAE, train, train_config
from monosemantic.sae.paths import expand_sae_paths
from monosemantic.store import HOLDOUT, ActivationStore

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

    def __post_init__(self) -> None:
        if not self.capacities or any(not c > 0 for c in self.capacities):
            raise UserError(f"--capacities must be positive multiples of the layer width, got {self.capacities}")
        if self.rows < 10 or self.metric_rows < 10:
            raise UserError(f"--rows and --metric-rows must be at least 10, got {self.rows} and {self.metric_rows}")
        if not self.ridge >= 0:
            raise UserError(f"--ridge must be at least 0, got {self.ridge}")
        for name in ("target_l0", "threshold_init", "lr"):
            if not getattr(self, name) > 0:
                raise UserError(f"--{name.replace('_', '-')} must be greater than 0, got {getattr(self, name)}")
        resolve_device(self.device)


@dataclass(frozen=True)
class UnitSetScores:
    """One unit set (neurons, one SAE's features, or one threshold SAE's atoms) in both geometries."""

    kind: Literal["neurons", "features", "atoms"]
    id: str
    """The set's name: ``neurons``, the SAE folder's name, or ``threshold xC``."""
    r2: float
    """Faithfulness 1 − Σ‖m − m̂‖² / Σ‖m − m̄‖² (1 for the neurons by construction)."""
    r2_whitened: float
    """The same under the AIP metric S̃."""
    unique_euclidean: float
    """Share of samples whose code is provably unique, μ_i < 1/(2K_i − 1) (Euclidean)."""
    q_star_euclidean: float
    """The largest share for which the quantiles still satisfy that bound (Euclidean)."""
    coherence_euclidean: float | None
    """Coherence μ of the dictionary (None when it has more than 32,768 units)."""
    unique_aip: float
    q_star_aip: float
    coherence_aip: float | None
    n_units: int
    mean_k: float
    """Mean number of active units per sample."""


@dataclass(frozen=True)
class AtomsAngles:
    activations: AngleHistogram
    atoms: AngleHistogram | None
    """The widest threshold SAE's decoder rows (None without atoms)."""


@dataclass(frozen=True)
class AtomsResult(Result):
    """Neurons, SAE features and atoms of one hook, scored side by side."""

    KIND = KIND
    config: AtomsConfig
    hook: str
    width: int
    model: str | None
    dataset: str | None
    metric_rows: int
    scored_rows: int
    singular_moment: list[str]
    """Warnings of a singular second moment while estimating S̃."""
    units: list[UnitSetScores]
    angles: AtomsAngles
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {**KIND.header(), **to_json(self)}

    def write(self, folder: Path) -> None:
        data = self.to_json()
        write_json(folder / KIND.file, data, allow_nan=False)
        write_atomic(folder / "atoms.csv", csv_text([to_json(u) for u in self.units]))
        write_result_page(folder, KIND, data)

    def summary(self) -> Summary:
        return [*(f"{u.id:>20}: R² {u.r2:.4f}  unique (AIP) {u.unique_aip:.3f}  q* (AIP) {u.q_star_aip:.3f}"
                  for u in self.units), f"{self.config.out}/{KIND.page}"]


def run(cfg: AtomsConfig) -> AtomsResult:
    """Score the unit sets and write the result to ``cfg.out`` (see the module docstring); returns it."""
    out = Path(cfg.out)
    sae_paths = expand_sae_paths(list(cfg.sae)) if cfg.sae else []
    check_out(out, what="an atoms result folder", marker=KIND.file, overwrite=cfg.overwrite,
              inputs=[cfg.acts, *cfg.sae])
    store = ActivationStore.open(cfg.acts)
    hook = store.hook(cfg.hook)
    h = store.width(hook)
    saes = [(p.name, SAE.load(p)) for p in sae_paths]
    for p, (_, sae) in zip(sae_paths, saes, strict=True):
        if sae.cfg.d_in != h:
            raise UserError(f"SAE {p} reads width {sae.cfg.d_in} but hook {hook!r} of the store has width {h}; "
                            "give SAEs trained on this hook")
    started = time.perf_counter()
    train_rows, held = store.split(holdout=HOLDOUT, seed=cfg.seed)
    rng = np.random.default_rng([cfg.seed, 11])
    m_rows = np.sort(rng.choice(train_rows, size=min(len(train_rows), cfg.metric_rows), replace=False))
    s_rows = np.sort(rng.choice(held, size=min(len(held), cfg.rows), replace=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SingularMomentWarning)
        s_metric = aip_metric(store.gather(hook, m_rows), cfg.ridge)
    singular = [str(w.message) for w in caught if issubclass(w.category, SingularMomentWarning)]
    x = store.gather(hook, s_rows)
    with staged(out) as tmp:
        atoms = _train_atoms(cfg, store.root, hook, h, tmp / "threshold-saes")
        sets: list[tuple[Literal["neurons", "features", "atoms"], str, SAE | None]] = [
            ("neurons", "neurons", None), *(("features", n, s) for n, s in saes), *(("atoms", n, s) for n, s in atoms)]
        units = [_score(kind, name, x, sae, s_metric, cfg.pairs)
                 for kind, name, sae in log.bar(sets, desc="atoms", unit="unit set")]
        widest = atoms[-1][1] if atoms else None
        result = AtomsResult(
            config=cfg, hook=hook, width=h, model=store.manifest.model.get("name"),
            dataset=store.manifest.dataset.get("name"), metric_rows=len(m_rows), scored_rows=len(s_rows),
            singular_moment=singular, units=units,
            angles=AtomsAngles(activations=angle_histograms(x, s_metric, seed=cfg.seed),
                               atoms=angle_histograms(widest.W_dec.detach(), s_metric, seed=cfg.seed)
                               if widest else None),
            seconds=round(time.perf_counter() - started, 1),
        )
        result.write(tmp)
    return result


def _train_atoms(cfg: AtomsConfig, store_root: Path, hook: str, h: int, work: Path) -> list[tuple[str, SAE]]:
    """The capacity sweep of threshold SAEs, side by side from one pass; (name, SAE) by width."""
    widths = sorted({max(1, round(c * h)) for c in cfg.capacities})
    tc = train_config(dict(acts=store_root, hook=hook, out=work, arch="jumprelu", d_sae=widths,
                           jumprelu_sparsity="target_l0", target_l0=cfg.target_l0, threshold_init=cfg.threshold_init,
                           lr=cfg.lr, tokens=cfg.train_tokens, seed=cfg.seed, progress=False, checkpoint_every=0,
                           device=cfg.device), where="atoms")
    folders = train(tc)
    return [(f"threshold x{w / h:g}", SAE.load(f)) for w, f in zip(widths, folders, strict=True)]


def _codes(sae: SAE, x: torch.Tensor) -> tuple[sp.csr_matrix, torch.Tensor]:
    """The latents of ``x`` as a sparse matrix, and the reconstruction, encoded in chunks on the SAE's device."""
    parts, recon = [], []
    device = sae.W_dec.device
    with torch.no_grad():
        for i in range(0, x.shape[0], 4096):
            f = sae.encode(x[i : i + 4096].to(device))
            recon.append(sae.decode(f).cpu())
            parts.append(sp.csr_matrix(f.cpu().numpy()))
    return sp.csr_matrix(sp.vstack(parts)), torch.cat(recon)


def _score(kind: Literal["neurons", "features", "atoms"], name: str, x: torch.Tensor, sae: SAE | None,
           s_metric: torch.Tensor, pairs: str) -> UnitSetScores:
    if sae is None:  # neurons: D = I, the codes are the activations, every sample uses (nearly) every neuron
        d = torch.eye(x.shape[1], dtype=torch.float64)
        k = (x != 0).sum(1).to(torch.float64)
        geo: dict[str, float] = {}
        for g, s in (("euclidean", None), ("aip", s_metric)):
            mu = coherence(d, s) if s is not None else 0.0
            unique = float((mu * (2 * k - 1) < 1).to(torch.float64).mean())  # all H active: μ_i is the whole μ
            geo |= {f"unique_{g}": unique, f"q_star_{g}": unique, f"coherence_{g}": mu}
        return UnitSetScores(kind=kind, id=name, r2=1.0, r2_whitened=1.0, n_units=x.shape[1],
                             mean_k=float(k.mean()), **geo)
    codes, recon = _codes(sae, x)
    d = sae.W_dec.detach().cpu().T
    geo_scores: dict[str, float | None] = {}
    for g, s in (("euclidean", None), ("aip", s_metric)):
        geo_scores |= {f"unique_{g}": unique_fraction(codes, d, s, pairs), f"q_star_{g}": q_star(codes, d, s, pairs),
                       f"coherence_{g}": coherence(d, s) if d.shape[1] <= _MAX_COHERENCE_ATOMS else None}
    return UnitSetScores(kind=kind, id=name, r2=r2(x, recon), r2_whitened=r2(x, recon, s_metric),
                         n_units=int(d.shape[1]), mean_k=float(np.diff(codes.indptr).mean()),
                         **geo_scores)  # type: ignore[arg-type]


COMMAND = Command(
    "atoms", AtomsConfig, run,
    description="Estimate the atomic inner product of a store's layer, train threshold (JumpReLU) SAEs at "
    "several capacities, and score neurons, the given SAEs' features and the atoms on faithfulness (R²), "
    "unique recoverability (unique fraction, q*) and coherence, in the Euclidean and the AIP geometry, with "
    "the angle histograms of the representation-shift check (after Hu et al., arXiv 2509.20784). Writes "
    "atoms.json, atoms.csv and atoms.html.",
    epilog="Example: monosemantic atoms --acts stores/minilm-l3 --sae saes/topk --out runs/atoms",
)

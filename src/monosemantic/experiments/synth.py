"""``monosemantic synth``: when do SAEs find the true features? A sweep on synthetic superposition.

For each sparsity S a store of ``x_p = W_p x`` is generated (``monosemantic.synthetic``; the ground truth W_p and
the codes x are kept beside it), and every architecture is trained on it with each WSAE exponent α, then scored
against the ground truth (``monosemantic.metrics.recovery``): MMCS both ways, the share of features recovered at
τ = 0.9 and 0.99, the Hungarian MCC, uniqueness, L_GT, GT features per latent, FVE, L0 and dead latents. The
setting follows Cui et al. (arXiv 2506.15963, §5 and the synthetic experiments): n = 200 features in n_p = 20
dimensions, S from 0 to 0.999, ReLU-L1, TopK (k = the expected number of active features), BatchTopK and JumpReLU,
α ∈ {0, 0.5, 1}.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from monosemantic import log
from monosemantic.config import check_fields, to_dict
from monosemantic.errors import UserError
from monosemantic.experiment import Command, Result, Summary
from monosemantic.files import check_out, csv_text, staged, write_atomic, write_json
from monosemantic.metrics.recovery import Recovery, recovery
from monosemantic.report.render import write_result_page
from monosemantic.report.sections.synth import KIND
from monosemantic.sae import SAE, registered_architectures, train, train_config
from monosemantic.sae.core import get_architecture
from monosemantic.store import HOLDOUT, ActivationStore
from monosemantic.synthetic import GroundTruth, load_ground_truth, superposition_store


@dataclass(frozen=True)
class SynthConfig:
    """A sweep over sparsity, width, architecture and WSAE exponent on synthetic superposition."""

    out: Path = Path("runs/synth")
    """Folder for synth.json, synth.csv and synth.html (and the stores and SAEs under work/ with --keep)."""
    n_features: int = 200
    """Ground-truth features n."""
    n_dims: int = 20
    """Dimensions n_p they are superposed in (at most n_features)."""
    sparsity: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.7, 0.9, 0.95, 0.99, 0.999])
    """Probability S that a feature is off in a sample; one store per value."""
    width: list[int] = field(default_factory=lambda: [200])
    """SAE latents (n_m); repeat for several widths."""
    archs: list[str] = field(default_factory=lambda: ["relu", "topk", "batchtopk", "jumprelu"])
    """Architectures (relu, topk, batchtopk, jumprelu, matryoshka, tied)."""
    alphas: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    """WSAE exponents α of γ = Var(x_i)^α (0 = the plain SAE)."""
    geometry: str = "random"
    """Columns of W_p: random, digon, simplex or toy (see monosemantic.synthetic.make_superposition)."""
    magnitude: str = "uniform"
    """Values of active features: uniform (0, 1], const1 or exp."""
    n_samples: int = 50_000
    """Samples per store (5% are held out for scoring)."""
    train_tokens: str = "200K"
    """Training rows per SAE, with K/M suffixes."""
    batch_size: int = 1024
    """Rows per training step."""
    seed: int = 0
    """Seed of the generator and of training."""
    keep: bool = False
    """Keep the generated stores and trained SAEs under OUT/work (they are deleted otherwise)."""
    overwrite: bool = False
    """Replace an earlier synth result at --out."""

    def __post_init__(self) -> None:
        # a NaN or infinite value gets the generic message first, as from the command line (a NaN fails every
        # range test below and would be reported as out of range)
        check_fields(self, lambda name: "--" + name.replace("_", "-"))
        if self.n_dims > self.n_features or self.n_dims < 1:
            raise UserError(f"--n-dims must be between 1 and --n-features ({self.n_features}) for superposition, "
                            f"got {self.n_dims}")
        bad = [s for s in self.sparsity if not 0 <= s < 1]
        if not self.sparsity or bad:
            raise UserError(f"--sparsity values must lie in [0, 1), got {bad[0] if bad else 'none'}")
        if not self.width or any(w < 1 for w in self.width):
            raise UserError(f"--width values must be positive numbers of latents, got {self.width}")
        if not self.alphas or any(not a >= 0 for a in self.alphas):
            raise UserError(f"--alphas values must be at least 0, got {self.alphas}")
        known = registered_architectures()
        for arch in self.archs or ["(none)"]:
            if arch not in known:
                raise UserError(f"unknown architecture {arch!r} in --archs; choose from {', '.join(sorted(known))}")
        if self.n_samples < 100:
            raise UserError(f"--n-samples must be at least 100, got {self.n_samples}")


def expected_k(n_features: int, sparsity: float, width: int) -> int:
    """TopK's k: the expected number of active features, at least 1 and at most the width."""
    return max(1, min(width, round((1.0 - sparsity) * n_features)))


@dataclass(frozen=True)
class SynthRow:
    """One trained SAE of the sweep and its recovery of the ground truth."""

    sparsity: float
    arch: str
    width: int
    alpha: float
    """WSAE exponent (0: the plain SAE)."""
    k: int | None
    """TopK-style k (None for architectures without one)."""
    seconds: float
    """Training and scoring time."""
    recovery: Recovery

    def to_json(self) -> dict[str, Any]:
        """The row as in synth.json and synth.csv: the settings, then every number of the recovery (one
        ``frac_recovered@τ`` column per threshold, NaN as null; the matching itself is left out)."""
        row: dict[str, Any] = {"sparsity": self.sparsity, "arch": self.arch, "width": self.width, "alpha": self.alpha,
                               "k": self.k, "seconds": self.seconds}
        for f in fields(self.recovery):
            value = getattr(self.recovery, f.name)
            if f.name == "frac_recovered":
                row.update({f"frac_recovered@{tau:g}": v for tau, v in value.items()})
            elif isinstance(value, int | float):
                row[f.name] = None if value != value else float(value)  # NaN -> null in JSON
        return row


@dataclass(frozen=True)
class SynthResult(Result):
    """The sweep: one row per trained SAE."""

    KIND = KIND
    config: SynthConfig
    rows: list[SynthRow]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**KIND.header(), "config": to_dict(self.config), "rows": [r.to_json() for r in self.rows],
                "seconds": self.seconds}

    def write(self, folder: Path) -> None:
        data = self.to_json()
        write_json(folder / KIND.file, data, allow_nan=False)
        write_atomic(folder / "synth.csv", csv_text(data["rows"]))
        write_result_page(folder, KIND, data)

    def summary(self) -> Summary:
        return [f"{len(self.rows)} SAEs in {self.seconds} s: {self.config.out}/{KIND.page}"]


def run(cfg: SynthConfig) -> SynthResult:
    """Run the sweep; write ``synth.json``, ``synth.csv`` and ``synth.html`` to ``cfg.out`` and return the result."""
    out = Path(cfg.out)
    check_out(out, what="a synth result folder", marker=KIND.file, overwrite=cfg.overwrite, inputs=[])
    jobs = [(s, a, w, al) for s in cfg.sparsity for a in cfg.archs for w in cfg.width for al in cfg.alphas]
    rows: list[SynthRow] = []
    started = time.perf_counter()
    with staged(out) as tmp:
        work = tmp / "work"
        bar = log.bar(total=len(jobs), desc="synth", unit="SAE")
        for s in cfg.sparsity:
            store, gt, x_eval, codes_eval = _store(cfg, s, work)
            for arch in cfg.archs:
                for width in cfg.width:
                    for alpha in cfg.alphas:
                        rows.append(_one(cfg, store, gt, x_eval, codes_eval, s, arch, width, alpha, work))
                        bar.update(1)
        bar.close()
        result = SynthResult(config=cfg, rows=rows, seconds=round(time.perf_counter() - started, 1))
        result.write(tmp)
        if not cfg.keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _store(cfg: SynthConfig, s: float, work: Path) -> tuple[ActivationStore, GroundTruth, torch.Tensor, torch.Tensor]:
    store = superposition_store(work / f"store-S{s:g}", cfg.n_features, cfg.n_dims, s, cfg.n_samples,
                                cfg.geometry, cfg.magnitude, cfg.seed, labels="none")
    gt = load_ground_truth(store)
    # the rows the SAEs were not trained on: the trainer holds out the same share with the same seed
    _, held = store.split(holdout=HOLDOUT, seed=cfg.seed)
    return store, gt, store.gather(store.hooks[0], held), gt.codes[torch.from_numpy(held)]


def _one(cfg: SynthConfig, store: ActivationStore, gt: GroundTruth, x: torch.Tensor, codes: torch.Tensor, s: float,
         arch: str, width: int, alpha: float, work: Path) -> SynthRow:
    sparsity_param = get_architecture(arch).sparsity_param
    k = expected_k(cfg.n_features, s, width)
    data: dict[str, Any] = {
        "acts": store.root, "out": work / f"sae-S{s:g}-{arch}-{width}-a{alpha:g}", "arch": arch, "d_sae": [width],
        "tokens": cfg.train_tokens, "batch_size": cfg.batch_size, "seed": cfg.seed, "progress": False,
        "checkpoint_every": 0, "log_every": 50, "device": "cpu", "threads": 1,  # tiny layers: threads only wait
        "rec_weights": "variance" if alpha > 0 else "none", "rec_alpha": alpha,
    }
    if sparsity_param == "k":
        data["k"] = [float(k)]
    if arch == "matryoshka":
        data["group_fraction"] = [0.25, 0.75]
    t0 = time.perf_counter()
    (folder,) = train(train_config(data, where="synth"))
    sae = SAE.load(folder)
    with torch.no_grad():
        latents = sae.encode(x)
        rec = recovery(sae.W_dec, gt.w_p, latents=latents, codes=codes, x=x, x_hat=sae.decode(latents),
                       encode=sae.encode)
    return SynthRow(sparsity=s, arch=arch, width=width, alpha=alpha, k=k if sparsity_param == "k" else None,
                    seconds=round(time.perf_counter() - t0, 2), recovery=rec)


COMMAND = Command(
    "synth", SynthConfig, run,
    description="Generate sparse ground-truth features in superposition for each sparsity S, train every "
    "architecture on them with each WSAE exponent, and score recovery against the truth: MMCS, features "
    "recovered at 0.9/0.99, MCC, uniqueness, L_GT, GT features per latent, FVE, L0, dead latents. Writes "
    "synth.json, synth.csv and synth.html (after Cui et al., arXiv 2506.15963).",
    epilog="Example: monosemantic synth --out runs/synth   (the default sweep: 84 SAEs, a few minutes)",
)

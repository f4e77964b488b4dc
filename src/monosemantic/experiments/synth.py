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

import csv
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from monosemantic.errors import UserError
from monosemantic.files import check_out, staged

RESULT_NAME = "synth.json"
FORMAT = "monosemantic-synth"


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


def expected_k(n_features: int, sparsity: float, width: int) -> int:
    """TopK's k: the expected number of active features, at least 1 and at most the width."""
    return max(1, min(width, round((1.0 - sparsity) * n_features)))


def check(cfg: SynthConfig) -> None:
    """Every check that needs no work: sizes, ranges and names, in one-line messages."""
    from monosemantic.sae.core import architectures

    if cfg.n_dims > cfg.n_features or cfg.n_dims < 1:
        raise UserError(f"--n-dims must be between 1 and --n-features ({cfg.n_features}) for superposition, "
                        f"got {cfg.n_dims}")
    bad = [s for s in cfg.sparsity if not 0 <= s < 1]
    if not cfg.sparsity or bad:
        raise UserError(f"--sparsity values must lie in [0, 1), got {bad[0] if bad else 'none'}")
    if not cfg.width or any(w < 1 for w in cfg.width):
        raise UserError(f"--width values must be positive numbers of latents, got {cfg.width}")
    if not cfg.alphas or any(not a >= 0 for a in cfg.alphas):
        raise UserError(f"--alphas values must be at least 0, got {cfg.alphas}")
    known = architectures()
    for arch in cfg.archs or ["(none)"]:
        if arch not in known:
            raise UserError(f"unknown architecture {arch!r} in --archs; choose from {', '.join(sorted(known))}")
    if cfg.n_samples < 100:
        raise UserError(f"--n-samples must be at least 100, got {cfg.n_samples}")


def run_synth(cfg: SynthConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run the sweep; write ``synth.json``, ``synth.csv`` and ``synth.html`` to ``cfg.out`` and return the result."""
    from monosemantic.config import to_dict

    check(cfg)
    out = Path(cfg.out)
    check_out(out, what="a synth result folder", marker=RESULT_NAME, overwrite=cfg.overwrite, inputs=[])
    jobs = [(s, a, w, al) for s in cfg.sparsity for a in cfg.archs for w in cfg.width for al in cfg.alphas]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with staged(out) as tmp:
        work = tmp / "work"
        bar = tqdm(total=len(jobs), desc="synth", unit="SAE", disable=not progress, dynamic_ncols=True)
        for s in cfg.sparsity:
            store, gt, x_eval, codes_eval = _store(cfg, s, work)
            for arch in cfg.archs:
                for width in cfg.width:
                    for alpha in cfg.alphas:
                        rows.append(_one(cfg, store, gt, x_eval, codes_eval, s, arch, width, alpha, work))
                        bar.update(1)
        bar.close()
        result = {"format": FORMAT, "config": to_dict(cfg), "rows": rows,
                  "seconds": round(time.perf_counter() - started, 1)}
        (tmp / RESULT_NAME).write_text(json.dumps(result, indent=1, allow_nan=False))
        (tmp / "synth.csv").write_text(to_csv(rows))
        from monosemantic.report.render import write_result_page
        from monosemantic.report.sections.synth import KIND

        write_result_page(tmp, KIND, result)
        if not cfg.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return result


def _store(cfg: SynthConfig, s: float, work: Path) -> tuple[Any, dict[str, Any], torch.Tensor, torch.Tensor]:
    from monosemantic.synthetic import load_ground_truth, superposition_store

    store = superposition_store(work / f"store-S{s:g}", cfg.n_features, cfg.n_dims, s, cfg.n_samples,
                                cfg.geometry, cfg.magnitude, cfg.seed, labels="none")
    gt = load_ground_truth(store)
    _, held = store.split(holdout=0.05, seed=cfg.seed)
    return store, gt, store.gather(store.hooks[0], held), gt["codes"][torch.from_numpy(held)]


def _one(cfg: SynthConfig, store: Any, gt: dict[str, Any], x: torch.Tensor, codes: torch.Tensor, s: float,
         arch: str, width: int, alpha: float, work: Path) -> dict[str, Any]:
    from monosemantic.metrics.recovery import recovery
    from monosemantic.sae import SAE, train, train_config
    from monosemantic.sae.core import get_architecture

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
        rec = recovery(sae.W_dec, gt["w_p"], latents=latents, codes=codes, x=x, x_hat=sae.decode(latents),
                       encode=sae.encode)
    row = {"sparsity": s, "arch": arch, "width": width, "alpha": alpha,
           "k": k if sparsity_param == "k" else None, "seconds": round(time.perf_counter() - t0, 2)}
    for key, value in rec.items():
        if key == "frac_recovered":
            row.update({f"frac_recovered@{tau:g}": v for tau, v in value.items()})
        elif isinstance(value, int | float):
            row[key] = None if value != value else float(value)  # NaN -> null in JSON
    return row


def to_csv(rows: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()

"""The training configuration: one dataclass, shown by ``monosemantic train --help`` and loaded from TOML.

A :class:`TrainConfig` checks itself when it is made (``__post_init__``): names, numbers, ranges and the options of
its architecture. Two checks wait for the data: :meth:`TrainConfig.paths` (a config without ``--acts``/``--out`` is a
valid template, e.g. a pipeline track's, filled in per stage) and :func:`check_sweep` (whether every SAE of the sweep
can be built needs the layer width).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from monosemantic.config import check_fields, from_dict
from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.sae.registry import get_architecture, option_owners, registered_architectures, registered_options
from monosemantic.sae.types import ArchOptions, SAEConfig, option_flag

if TYPE_CHECKING:
    from monosemantic.sae.core import SAE

# (field, lowest allowed value, whether that value itself is allowed); None means 'default' and passes
_BOUNDS: tuple[tuple[str, float, bool], ...] = (
    ("batch_size", 1, True), ("lr", 0, False), ("warmup", 0, True), ("decay", 0, True), ("adam_eps", 0, False),
    ("grad_clip", 0, True), ("dead_tokens", 1, True), ("eval_rows", 1, True), ("checkpoint_every", 0, True),
    ("log_every", 1, True), ("threads", 0, True), ("seed", 0, True), ("rec_alpha", 0, True),
)


@dataclass(frozen=True)
class TrainConfig:
    """Train one SAE, or a sweep of SAEs side by side from one pass over an activation store."""

    acts: Path | None = None
    """Activation store folder (written by `monosemantic extract`)."""
    out: Path | None = None
    """Output folder: the SAE folder itself for one SAE, or a parent of one folder per SAE for a sweep."""
    hook: str | None = None
    """Hook of the store to train on (default: the store's only hook)."""
    arch: str = "topk"
    """Architecture: topk, batchtopk, matryoshka, jumprelu, relu or tied (the theory SAE: tied weights, no biases)."""
    options: ArchOptions | None = None
    """The architecture's own options (an instance of its ``Options``; default: that class's defaults). On the
    command line and in TOML they are flat keys, e.g. --group-fraction for matryoshka."""
    device: str = "auto"
    """Where to train: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps."""
    width: list[float] = field(default_factory=list)
    """Expansion factor d_sae / d_in; repeat for a sweep (default 16 unless --d-sae is given)."""
    d_sae: list[int] = field(default_factory=list)
    """Absolute number of latents; repeat for a sweep (instead of --width)."""
    k: list[float] = field(default_factory=list)
    """TopK / BatchTopK / Matryoshka active latents per row; repeat for a sweep (default 32)."""
    l1_coefficient: list[float] = field(default_factory=list)
    """ReLU: L1 coefficient λ; JumpReLU: sparsity coefficient; repeat for a sweep (defaults 0.05 and 1.0)."""
    tokens: str = "2M"
    """Training rows (tokens) to read, with K/M/G suffixes (2M = 2,000,000); several epochs if needed."""
    batch_size: int = 4096
    """Rows per optimisation step (over all processes)."""
    lr: float | None = None
    """Learning rate (default c / sqrt(d_sae / 16384) per SAE; c = 2.5e-3 for the TopK family, else 2e-4)."""
    warmup: float = 0.05
    """LR warm-up: a fraction of the steps when below 1, else a number of steps."""
    decay: float = 0.2
    """Final linear LR decay to 0: a fraction of the steps when below 1, else a number of steps; 0 = none."""
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """Adam betas (JumpReLU papers use 0.0 and 0.999)."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    grad_clip: float = 1.0
    """Clip the gradient norm of each SAE to this value; 0 = off."""
    seed: int = 0
    """Seed for initialisation, data order and the held-out split."""
    bf16: bool = True
    """Run the dense encoder matmul in bfloat16 (TopK values are recomputed in float32)."""
    triton: bool = True
    """CUDA: decode with the Triton kernel when triton is installed (else torch's embedding_bag)."""
    rec_loss: Literal["sum_mse", "normalized_mse"] = "sum_mse"
    """Reconstruction loss: sum_mse (mean over rows of the squared error summed over dims) or normalized_mse."""
    rec_weights: Literal["none", "variance"] = "none"
    """Weighted SAE (WSAE, arXiv 2506.15963): weight each input dimension's squared error by γ² with γ = s^α, s the
    dimension's variance over the training rows (after input scaling); none = the plain SAE. Training only."""
    rec_alpha: float = 1.0
    """WSAE: the exponent α of γ = s^α (0 = plain SAE; the paper uses 0.5 and 1)."""
    rec_weights_norm: Literal["max", "mean", "none"] = "max"
    """WSAE: divide s by its max or mean before the power (the paper leaves this open), or leave it."""
    dead_tokens: int = 10_000_000
    """A latent is dead after this many training rows without firing."""
    init_b_dec: Literal["geometric_median", "mean", "zeros"] = "geometric_median"
    """Decoder bias init from the first batch: geometric_median, mean or zeros."""
    input_scaling: Literal["unit_mean_sq", "sqrt_d", "none"] = "unit_mean_sq"
    """Scale inputs by one scalar: unit_mean_sq (E||x||² = 1), sqrt_d (E||x||² = d) or none."""
    fold: Literal["weights", "biases"] = "weights"
    """Fold the input scale into the saved SAE: weights (SAELens convention) or biases (dictionary_learning)."""
    holdout: float = 0.05
    """Fraction of the store's items held out for the final evaluation."""
    eval_rows: int = 50_000
    """At most this many held-out rows are evaluated."""
    checkpoint_every: int = 100
    """Write a checkpoint every this many steps (atomically); 0 = only at the end."""
    resume: bool = False
    """Resume from the checkpoint in the output's .partial folder."""
    overwrite: bool = False
    """Replace finished SAE folders at the output path."""
    log_every: int = 10
    """Write a training-log line every this many steps."""
    threads: int = 0
    """CPU threads for torch and the kernels (0 = torch's default)."""
    progress: bool = True
    """Show a progress bar with tokens/s, FVU and L0."""

    def __post_init__(self) -> None:
        cls = self.arch_class()
        if self.options is not None and type(self.options) is not cls.Options:
            raise UserError(f"the options given are {type(self.options).__name__}, but {self.arch} takes "
                            f"{cls.Options.__name__}")
        check_fields(self, option_flag)
        self._check_numbers()
        self._check_sparsity(cls)
        self.total_tokens()
        resolve_device(self.device)

    def _check_numbers(self) -> None:
        for name, low, inclusive in _BOUNDS:
            v = getattr(self, name)
            if v is not None and (v < low or (v == low and not inclusive)):
                relation = "at least" if inclusive else "greater than"
                raise UserError(f"{option_flag(name)} must be {relation} {low:g}, got {v:g}")
        if not 0 < self.holdout < 1:
            raise UserError(f"--holdout must be a fraction between 0 and 1, got {self.holdout:g}")
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise UserError(f"--adam-betas needs two values in [0, 1), got {self.adam_betas}")

    def _check_sparsity(self, cls: type[SAE]) -> None:
        for name, values in (("width", self.width), ("d_sae", self.d_sae), ("k", self.k)):
            bad = [v for v in values if not v > 0]
            if bad:
                raise UserError(f"{option_flag(name)} values must be positive, got {bad[0]:g}")
        if any(not c >= 0 for c in self.l1_coefficient):
            raise UserError(f"--l1 values must be at least 0, got {self.l1_coefficient}")
        if self.k and cls.sparsity_param != "k":
            raise UserError(f"--k does not apply to {self.arch}; it is for {_archs_with('k')}")
        if self.l1_coefficient and cls.sparsity_param != "coefficient":
            raise UserError(f"--l1 does not apply to {self.arch}; it is for {_archs_with('coefficient')} "
                            "(TopK-family SAEs set sparsity with --k)")

    def paths(self) -> tuple[Path, Path]:
        """The store to train from and the output folder, or the one-line error naming the one not given.

        Checked when training starts rather than in ``__post_init__``: a config without them is a valid template
        (a pipeline track's, whose stages fill them in)."""
        if self.acts is None:
            raise UserError("no activation store given; pass --acts DIR (made by `monosemantic extract`)")
        if self.out is None:
            raise UserError("no output folder given; pass --out DIR")
        return Path(self.acts), Path(self.out)

    def total_tokens(self) -> int:
        """Training rows per SAE, ``tokens`` parsed (``"2M"`` -> 2,000,000)."""
        return parse_count(self.tokens)

    def arch_class(self) -> type[SAE]:
        """The registered `SAE` subclass of ``arch``."""
        return get_architecture(self.arch)

    def arch_options(self) -> ArchOptions:
        """The options the architecture trains with: the given ones, or its defaults."""
        return self.options if self.options is not None else self.arch_class().Options()


def _archs_with(param: str) -> str:
    return ", ".join(n for n, c in registered_architectures().items() if c.sparsity_param == param)


def parse_count(text: str | int) -> int:
    """'2M' -> 2_000_000; accepts K, M, G (powers of 1000) and plain integers."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*", str(text))
    if not m:
        raise UserError(f"cannot read {text!r} as a number of tokens; write e.g. 500K, 2M or 1G")
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m.group(2).lower()]
    value = int(float(m.group(1)) * scale)
    if value <= 0:
        raise UserError(f"the number of tokens must be positive, got {text!r}")
    return value


@dataclass(frozen=True)
class SweepPoint:
    """One SAE of a sweep."""

    name: str
    d_sae: int
    k: float | None
    coefficient: float | None


def sweep_points(tc: TrainConfig, d_in: int) -> list[SweepPoint]:
    """The SAEs to train: the product of the widths and of the ks or coefficients the architecture takes."""
    if tc.width and tc.d_sae:
        raise UserError("give either --width (expansion factor) or --d-sae (absolute), not both")
    sizes = [int(s) for s in tc.d_sae] or [round(w * d_in) for w in (tc.width or [16.0])]
    for s in sizes:
        if s < 1:
            raise UserError(f"d_sae must be at least 1, got {s} (width × d_in={d_in})")
    cls = tc.arch_class()
    ks: list[float | None] = list(tc.k or [32.0]) if cls.sparsity_param == "k" else [None]
    coefs: list[float | None] = (
        list(tc.l1_coefficient or [cls.default_coefficient]) if cls.sparsity_param == "coefficient" else [None]
    )
    points = []
    for s, k, c in itertools.product(sizes, ks, coefs):
        name = f"{tc.arch}-{s}"
        if k is not None:
            name += f"-k{k:g}"
        if c is not None:
            name += f"-c{c:g}"
        points.append(SweepPoint(name, s, k, c))
    if len({p.name for p in points}) != len(points):
        raise UserError("the sweep lists the same SAE twice; remove the repeated values")
    return points


def sae_config(tc: TrainConfig, p: SweepPoint, d_in: int, meta: dict[str, Any] | None = None) -> SAEConfig:
    """The checked architecture config of one sweep point (k an integer where needed, k <= d_sae, groups)."""
    if p.k is not None and not 0 < p.k <= p.d_sae:
        raise UserError(f"k={p.k:g} is impossible for d_sae={p.d_sae}: it must be between 1 and d_sae")
    return tc.arch_class().build_config(d_in, p.d_sae, p.k, tc.arch_options(), meta)


def check_sweep(tc: TrainConfig, d_in: int) -> None:
    """Every check that needs the layer width: each SAE of the sweep can be built."""
    for p in sweep_points(tc, d_in):
        sae_config(tc, p, d_in)


def train_config(data: dict[str, Any], where: str = "options") -> TrainConfig:
    """A TrainConfig from flat keys (command-line options, a TOML table): the architecture's own options are
    split off into its ``Options``; an option of another architecture is refused, naming the ones it is for."""
    data = dict(data)
    arch = data.get("arch", "topk")
    known = registered_options()
    common = {f.name for f in fields(TrainConfig) if f.name != "options"}
    owners = option_owners()
    mine = {k: data.pop(k) for k in list(data) if k not in common and k in owners}
    if arch not in known:  # nothing to split off: the config names the unknown architecture
        return from_dict(TrainConfig, data, where=where, names=option_flag)
    for key in mine:
        if arch not in owners[key]:
            raise UserError(f"{option_flag(key)} does not apply to {arch}; it is for {', '.join(owners[key])}")
    # the options first, so that a bad option value is named before a setting that only fails with others
    options = from_dict(known[arch], mine, where=where, names=option_flag)
    return replace(from_dict(TrainConfig, data, where=where, names=option_flag), options=options)

"""The SAE interface every architecture implements, its config, and the architecture registry.

Parameters use the SAELens names and shapes (``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``,
``b_dec [d_in]``, ``threshold [d_sae]`` where it applies) so a saved folder loads in SAELens unchanged.

A new architecture is a new module in ``monosemantic.sae.architectures`` that subclasses :class:`SAE`, declares its
training options as a frozen dataclass (``Options``, choices as ``Literal``) and decorates the class with
:func:`register`; the package imports every module there, so nothing else needs editing. The trainer knows no
architecture by name: it asks the class for its config (``build_config``), initialisation, loss terms, decoder
constraint, input-scale folding and final touches through the hooks below.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from monosemantic.errors import UserError, unknown_choice
from monosemantic.sae.options import ArchOptions, registered_options

_REGISTRY: dict[str, type[SAE]] = {}


@dataclass
class SAEConfig:
    """What an SAE needs at inference time; written to ``cfg.json`` (SAELens fields plus ours)."""

    d_in: int
    """Width of the activations the SAE reads."""
    d_sae: int
    """Number of latents (dictionary size)."""
    architecture: str = "topk"
    """Registered architecture name: relu, topk, batchtopk, matryoshka, jumprelu, tied, gsae."""
    k: int | None = None
    """TopK: latents kept per row. BatchTopK/Matryoshka: average latents kept per row in training."""
    group_sizes: list[int] | None = None
    """Matryoshka: sizes of the nested groups, in latent order (they sum to d_sae)."""
    apply_b_dec_to_input: bool = True
    """Subtract b_dec from the input before encoding."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Provenance: model, hook, store path, norm factor and training settings."""

    @property
    def group_ends(self) -> list[int]:
        """Exclusive end index of each Matryoshka prefix (``m_i``; Bussmann et al., arXiv 2503.17547); ``[d_sae]``
        otherwise."""
        if not self.group_sizes:
            return [self.d_sae]
        ends, total = [], 0
        for size in self.group_sizes:
            total += size
            ends.append(total)
        return ends


def register(name: str):  # type: ignore[no-untyped-def]
    """Class decorator adding an architecture (and with it its ``Options``) to the registry under ``name``."""

    def deco(cls: type[SAE]) -> type[SAE]:
        if name in _REGISTRY:
            raise ValueError(f"SAE architecture {name!r} is registered twice ({_REGISTRY[name].__qualname__} and "
                             f"{cls.__qualname__}); give the new one another name")
        if registered_options().get(name, ArchOptions) is not cls.Options:
            raise TypeError(f"{cls.__qualname__}.Options must be the options registered for {name!r} in "
                            "monosemantic.sae.options")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _discover() -> None:
    pkg = importlib.import_module("monosemantic.sae.architectures")
    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")


def architectures() -> dict[str, type[SAE]]:
    """Every registered architecture, by name."""
    _discover()
    return dict(_REGISTRY)


def get_architecture(name: str) -> type[SAE]:
    archs = architectures()
    if name not in archs:
        raise unknown_choice("SAE architecture", name, archs)
    return archs[name]


class SAE(nn.Module):
    """A sparse autoencoder: ``encode`` (inference latents), ``decode``, ``forward`` (reconstruction).

    ``SAE.load(path)`` reads this project's folders and SAELens, sparsify and dictionary_learning ones;
    ``save(path)`` writes the SAELens layout atomically.
    """

    name: ClassVar[str] = "base"
    saelens_architecture: ClassVar[str] = "standard"
    has_threshold: ClassVar[bool] = False
    Options: ClassVar[type[ArchOptions]] = ArchOptions
    """The architecture's training options (flags of ``monosemantic train``, keys of its TOML)."""
    sparsity_param: ClassVar[Literal["k", "coefficient", "none"]] = "k"
    """What sets sparsity, and what a sweep varies: k (--k), a coefficient (--l1), or nothing (the ReLU alone)."""
    default_coefficient: ClassVar[float | None] = None
    """The coefficient trained with when --l1 is not given (coefficient architectures)."""
    lr_constant: ClassVar[float] = 2e-4
    """c of the default learning rate c / sqrt(d_sae / 2^14)."""
    needs_labels: ClassVar[bool] = False
    """Whether training reads each row's concept labels (``StepContext.labels``) from the store."""
    saelens_normalize: ClassVar[str] = "none"
    """SAELens ``normalize_activations`` of saved folders (``layer_norm``: the SAE normalises each row itself)."""

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__()
        if cfg.d_in < 1 or cfg.d_sae < 1:
            raise UserError(f"d_in and d_sae must be positive, got d_in={cfg.d_in}, d_sae={cfg.d_sae}")
        self.cfg = cfg
        d, f = cfg.d_in, cfg.d_sae
        # [d_in, d_sae] as a transposed view of [d_sae, d_in] storage: the sparse kernels read and write encoder
        # rows, and this way neither the forward nor the gradient needs a transposed copy
        self.W_enc = nn.Parameter(torch.zeros(f, d).t())
        self.b_enc = nn.Parameter(torch.zeros(f))
        self.W_dec = nn.Parameter(torch.zeros(f, d))
        self.b_dec = nn.Parameter(torch.zeros(d))

    # ------------------------------------------------------------------ construction

    @staticmethod
    def create(cfg: SAEConfig) -> SAE:
        """Instantiate the registered class for ``cfg.architecture`` after validating ``cfg`` (weights unset)."""
        cls = get_architecture(cfg.architecture)
        cls.validate(cfg)
        return cls(cfg)

    @classmethod
    def validate(cls, cfg: SAEConfig) -> None:
        """Raise a UserError when the config cannot describe this architecture."""

    @classmethod
    def build_config(cls, d_in: int, d_sae: int, k: float | None, options: ArchOptions,
                     metadata: dict[str, Any] | None = None) -> SAEConfig:
        """The checked inference config of one SAE to train (``k`` as the sweep gives it, or None)."""
        cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture=cls.name, k=k, metadata=metadata or {})
        cls.validate(cfg)
        return cfg

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """Tied init: random unit decoder rows, ``W_enc = W_decᵀ``, zero biases (methods A.2, A.8)."""
        w = torch.empty_like(self.W_dec)
        bound = 1.0 / self.cfg.d_in**0.5
        w.uniform_(-bound, bound, generator=generator)
        w /= w.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.W_dec.copy_(w)
        self.W_enc.copy_(w.T)
        self.b_enc.zero_()
        self.b_dec.zero_()

    # ------------------------------------------------------------------ inference

    def pre_acts(self, x: Tensor) -> Tensor:
        """Pre-activations ``(x − b_dec) W_enc + b_enc``: [..., d_in] -> [..., d_sae]."""
        if self.cfg.apply_b_dec_to_input:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def activation(self, pre: Tensor) -> Tensor:
        """Inference activation applied to the pre-activations [..., d_sae] (same shape out)."""
        return torch.relu(pre)

    def encode(self, x: Tensor) -> Tensor:
        """Dense latents ``[B, d_sae]`` in inference mode (no batch dependence)."""
        x = x.to(self.W_enc.dtype)
        return self.activation(self.pre_acts(x))

    def decode(self, f: Tensor) -> Tensor:
        """Reconstruction x̂ = f W_dec + b_dec: latents [..., d_sae] -> [..., d_in]."""
        return f.to(self.W_dec.dtype) @ self.W_dec + self.b_dec

    def forward(self, x: Tensor) -> Tensor:
        """``decode(encode(x))``: activations [..., d_in] -> reconstructions [..., d_in]."""
        return self.decode(self.encode(x))

    def decode_delta(self, idx: Tensor, delta: Tensor) -> Tensor:
        """How ``decode(f)`` changes when latents ``idx`` [S] change by ``delta`` [.., S] (the rows last encoded):
        ``delta W_dec[idx]`` for a linear decoder; only the edited latents are read."""
        return delta.to(self.W_dec.dtype) @ self.W_dec.index_select(0, idx)

    # ------------------------------------------------------------------ training hooks

    @torch.no_grad()
    def set_initial_bias(self, b_dec: Tensor) -> None:
        """The recipe's decoder-bias initialisation (geometric median or mean of the first batch)."""
        self.b_dec.copy_(b_dec)

    def step_options(self, ctx: StepContext) -> Any:
        """The options of a training step: the context's, or this architecture's defaults."""
        return ctx.options if ctx.options is not None else type(self).Options()

    def init_for_training(self, options: ArchOptions, generator: torch.Generator | None = None) -> None:
        """Initial weights before the first step (``init_weights`` plus architecture-specific state)."""
        self.init_weights(generator)

    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        """Training forward on already-scaled inputs; returns everything the loss terms may need."""
        pre = self.pre_acts(x)
        f = self.activation(pre)
        return StepOutput(x=x, x_hat=self.decode(f), acts=f, pre=pre)

    def losses(self, rec_loss: str, options: ArchOptions, coefficient: float | None,
               rec_weight: Tensor | None = None) -> list[Any]:
        """The loss terms this architecture trains with (see ``losses.py``): ``coefficient`` is the sweep's,
        ``rec_weight`` [d_in] weights each dimension's reconstruction error (None: unweighted)."""
        from monosemantic.sae.losses import Reconstruction

        return [Reconstruction(rec_loss, rec_weight)]

    def unit_norm_decoder(self, options: ArchOptions) -> bool:
        """Whether training keeps the decoder rows at unit norm (gradient projection and renormalisation)."""
        return True

    @torch.no_grad()
    def after_step(self, out: StepOutput, ctx: StepContext) -> None:
        """Per-step state updates that are not gradient steps (threshold EMA and the like)."""

    @torch.no_grad()
    def fold_input_scale(self, scale: float, how: Literal["weights", "biases"]) -> None:
        """Make the SAE trained on ``scale · x`` read raw ``x`` (exact for every architecture).

        ``weights`` (SAELens): ``W_enc · s``, ``W_dec / s``, ``b_dec / s``. ``biases`` (dictionary_learning):
        ``b_enc``, ``b_dec`` and any threshold divided by ``s``; the latents then come out divided by ``s``.
        """
        if scale == 1.0:
            return
        if how == "weights":
            self.W_enc.mul_(scale)
            self.W_dec.div_(scale)
            self.b_dec.div_(scale)
            return
        nf = 1.0 / scale
        self.b_enc.mul_(nf)
        self.b_dec.mul_(nf)
        self.scale_threshold(nf)

    def scale_threshold(self, factor: float) -> None:
        """Multiply the activation threshold, where the architecture has one, by ``factor``."""

    @torch.no_grad()
    def finish_training(self, options: ArchOptions) -> None:
        """Last touches before saving (after the input scale is folded in)."""

    @torch.no_grad()
    def eval_extra(self, x: Tensor, labels: Tensor | None) -> dict[str, Any]:
        """Architecture-specific held-out results for ``eval.json`` from raw rows ``x`` and their concept labels
        [N, C] (None when the store has none)."""
        return {}

    def extra_state_for_save(self) -> dict[str, Any]:
        """Architecture-specific fields for ``metadata.monosemantic``."""
        return {}

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the SAE as a SAELens-loadable folder (``cfg.json``, ``sae_weights.safetensors``); returns it.
        An existing SAE folder is replaced only with ``overwrite``."""
        from monosemantic.sae.io import save_sae

        return save_sae(self, Path(path), overwrite=overwrite)

    @staticmethod
    def load(path: str | Path, device: str | torch.device = "cpu") -> SAE:
        """Load this project's, SAELens, sparsify or dictionary_learning SAE folders."""
        from monosemantic.sae.io import load_sae

        return load_sae(Path(path)).to(device)

    @property
    def group_ends(self) -> list[int]:
        return self.cfg.group_ends

    def extra_repr(self) -> str:
        """The line ``print(sae)`` shows: architecture, d_in, d_sae and k."""
        return f"{self.name}: d_in={self.cfg.d_in}, d_sae={self.cfg.d_sae}, k={self.cfg.k}"


@dataclass
class StepContext:
    """Training state an architecture or a loss term may read."""

    step: int
    total_steps: int
    dead_mask: Tensor | None = None
    """Bool [d_sae]: latents that have not fired for ``dead_tokens`` rows."""
    bf16: bool = False
    distributed: bool = False
    options: ArchOptions | None = None
    """The architecture's training options (an instance of its ``Options``; None: its defaults)."""
    labels: Tensor | None = None
    """Float [B, C] concept labels of the batch's rows (architectures with ``needs_labels``; else None)."""


@dataclass
class StepOutput:
    """One training forward: input, reconstruction and the latents in sparse or dense form."""

    x: Tensor
    x_hat: Tensor
    acts: Tensor | None = None
    """Dense latents [B, F] (dense architectures)."""
    pre: Tensor | None = None
    """Dense pre-activations [B, F] when they exist."""
    vals: Tensor | None = None
    """Sparse latents: kept values [B, k] (TopK), or [n] flattened kept entries (BatchTopK family) ..."""
    idx: Tensor | None = None
    """... and their latent indices, same shape."""
    aux_vals: Tensor | None = None
    """AuxK: the top-k_aux dead-latent values [B, k_aux] (differentiable) ..."""
    aux_idx: Tensor | None = None
    """... and their indices."""
    extras: dict[str, Tensor] = field(default_factory=dict)
    """Architecture-specific terms (Matryoshka prefix reconstructions, JumpReLU L0, ...)."""

    def fired(self, d_sae: int) -> Tensor:
        """Bool [d_sae]: latents with a positive value anywhere in the batch."""
        if self.idx is not None and self.vals is not None:
            hits = torch.zeros(d_sae, dtype=torch.int32, device=self.x.device)
            hits.index_add_(0, self.idx.reshape(-1), (self.vals > 0).reshape(-1).to(torch.int32))
            return hits > 0
        assert self.acts is not None
        return (self.acts > 0).any(0)

    def l0(self) -> Tensor:
        """Mean number of positive latents per row."""
        if self.vals is not None:  # [B, k] or flattened kept entries of variable count per row
            return (self.vals > 0).sum().float() / self.x.shape[0]
        assert self.acts is not None
        return (self.acts > 0).sum(1).float().mean()


def config_from_dict(data: dict[str, Any]) -> SAEConfig:
    names = {f.name for f in dataclasses.fields(SAEConfig)}
    return SAEConfig(**{k: v for k, v in data.items() if k in names})

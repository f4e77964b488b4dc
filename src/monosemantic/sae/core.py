"""The SAE interface every architecture implements.

Parameters use the SAELens names and shapes (``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``,
``b_dec [d_in]``, ``threshold [d_sae]`` where it applies) so a saved folder loads in SAELens unchanged.

A new architecture is a new module in ``monosemantic.sae.architectures`` that subclasses :class:`SAE`, declares its
training options as a frozen dataclass beside it (``Options``, choices as ``Literal``) and what a sweep may vary
(``sweep_axes``), and decorates the class with :func:`monosemantic.sae.registry.register`; the package imports every
module there, so nothing else needs editing. The trainer knows no architecture by name: it asks the class for its
config (``build_config``), initialisation, loss terms, decoder constraint, input-scale folding and final touches
through the hooks below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from monosemantic.errors import UserError
from monosemantic.sae.io import load_sae, save_sae
from monosemantic.sae.registry import get_architecture
from monosemantic.sae.types import ArchOptions, LossTerm, SAEConfig, StepContext, StepOutput


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
    """What sets sparsity: k (--k), a coefficient (--l1), or nothing (the ReLU alone)."""
    sweep_axes: ClassVar[tuple[str, ...]] = ("k",)
    """The settings beyond the width that a sweep (a pipeline track) may vary or set for this architecture:
    ``k`` or ``l1_coefficient`` (its sparsity setting) and fields of its ``Options`` (``group_fraction``)."""
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
        del options  # the plain config needs none; architectures whose config does override this
        cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture=cls.name, k=k, metadata=metadata or {})
        cls.validate(cfg)
        return cfg

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """Tied init: random unit decoder rows, ``W_enc = W_decᵀ``, zero biases (Gao et al., arXiv 2406.04093,
        Appendix A)."""
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
        del options  # read by architectures with state of their own (JumpReLU's threshold)
        self.init_weights(generator)

    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        """Training forward on already-scaled inputs; returns everything the loss terms may need."""
        del ctx  # the plain forward reads no training state
        pre = self.pre_acts(x)
        f = self.activation(pre)
        return StepOutput(x=x, x_hat=self.decode(f), acts=f, pre=pre)

    def reconstruction_loss(self, rec_loss: str, options: ArchOptions, rec_weight: Tensor | None) -> LossTerm | None:
        """This architecture's own reconstruction term, or None for the plain one the trainer puts first
        (``losses.Reconstruction`` of ``rec_loss``); ``rec_weight`` [d_in] weights each dimension's error."""

    def losses(self, options: ArchOptions, coefficient: float | None) -> list[LossTerm]:
        """The terms this architecture trains with besides the reconstruction (sparsity, AuxK, ...; see
        ``losses.py``); ``coefficient`` is the sweep's (None: the architecture's default)."""
        del options, coefficient  # the plain SAE trains on its reconstruction alone
        return []

    def unit_norm_decoder(self, options: ArchOptions) -> bool:
        """Whether training keeps the decoder rows at unit norm (gradient projection and renormalisation)."""
        del options  # always, unless an architecture's options say otherwise
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

    def saved_threshold(self) -> Tensor | None:
        """The activation threshold [d_sae] a folder saves as SAELens' ``threshold`` (None: the architecture has
        none, ``has_threshold`` is False)."""
        return None

    def load_threshold(self, threshold: Tensor) -> None:
        """Set the activation threshold from a saved one [d_sae] (architectures with ``has_threshold``)."""

    @torch.no_grad()
    def finish_training(self, options: ArchOptions) -> None:
        """Last touches before saving (after the input scale is folded in)."""

    @torch.no_grad()
    def concept_auroc(self, x: Tensor, labels: Tensor) -> dict[str, float | None] | None:
        """Architectures trained on concept labels (``needs_labels``): each concept latent's held-out AUROC for its
        concept, from raw rows ``x`` and their labels [N, C], for ``eval.json`` (None: nothing to report)."""

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the SAE as a SAELens-loadable folder (``cfg.json``, ``sae_weights.safetensors``); returns it.
        An existing SAE folder is replaced only with ``overwrite``."""
        return save_sae(self, Path(path), overwrite=overwrite)

    @staticmethod
    def load(path: str | Path, device: str | torch.device = "cpu") -> SAE:
        """Load this project's, SAELens, sparsify or dictionary_learning SAE folders."""
        return load_sae(Path(path)).to(device)

    @property
    def group_ends(self) -> list[int]:
        return self.cfg.group_ends

    def extra_repr(self) -> str:
        """The line ``print(sae)`` shows: architecture, d_in, d_sae and k."""
        return f"{self.name}: d_in={self.cfg.d_in}, d_sae={self.cfg.d_sae}, k={self.cfg.k}"

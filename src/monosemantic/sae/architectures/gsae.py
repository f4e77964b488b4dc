"""Guided SAE (G-SAE; Härle et al., "Measuring and Guiding Monosemanticity", arXiv 2506.19382, §4): a TopK SAE
whose first C latents are tied to C labelled concepts.

Each token is layer-normalised without parameters (x̃ = (x − μ) / (σ + ε)), encoded to logits h = (x̃ − b_dec) W_enc
+ b_enc, the k largest logits are kept and passed through a sigmoid (``topk-sigmoid``; ReLU with ``topk``), and the
decoder's output is mapped back to the raw space (x̂ = (f W_dec + b_dec)(σ + ε) + μ). The loss is the per-token
normalised reconstruction error mean_d (x̂ − x)² / mean_d x² plus the binary cross-entropy of the reserved latents'
*pre-TopK* logits h_{0..C−1} against the token's concept labels, so they learn even when TopK drops them.
Because the input is normalised per token, the trainer's input scale needs no folding.

Inference keeps the normalisation of the last ``encode`` for ``decode`` (as SAELens does for its ``layer_norm``
option), so ``decode(encode(x))``, and ``h + decode(f') − decode(f)`` in steering, map back to ``x``'s scale.
Saved folders declare ``normalize_activations = "layer_norm"``; with ``topk`` they read the same in SAELens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from typing_extensions import override

from monosemantic.errors import UserError
from monosemantic.sae.architectures.topk import check_k, integer_k
from monosemantic.sae.core import SAE
from monosemantic.sae.kernels import sparse_decode, topk_encode
from monosemantic.sae.registry import register
from monosemantic.sae.types import ArchOptions, LossTerm, SAEConfig, StepContext, StepOutput

LN_EPS = 1e-5


@dataclass(frozen=True)
class GSAEOptions(ArchOptions):
    """Options of the Guided SAE (G-SAE): latents 0..C-1 are tied to the store's C labelled concepts."""

    gsae_activation: Literal["topk-sigmoid", "topk"] = "topk-sigmoid"
    """G-SAE: a sigmoid on the k kept logits (the paper's topk-sigmoid), or ReLU TopK."""
    concept_reduction: Literal["sum", "mean"] = "sum"
    """G-SAE: the concept BCE terms summed (the paper's code) or averaged as 1/(C+1) Σ (its project page)."""
    concept_weight: float = 1.0
    """G-SAE: multiplier of the concept BCE term in the loss."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.concept_weight >= 0:
            raise UserError(f"--concept-weight must be at least 0, got {self.concept_weight:g}")


@dataclass(frozen=True)
class GuidedSettings:
    """What a G-SAE's ``cfg.json`` records under ``metadata.monosemantic.gsae`` (read back on load)."""

    concepts: list[str]
    """Names of the concepts tied to latents 0..C−1, in order."""
    activation: str
    """``topk-sigmoid`` or ``topk`` (``GSAEOptions.gsae_activation`` of training)."""

    @staticmethod
    def of(cfg: SAEConfig) -> GuidedSettings:
        raw = dict((cfg.metadata.get("monosemantic") or {}).get("gsae") or {})
        return GuidedSettings(concepts=list(raw.get("concepts") or []),
                              activation=str(raw.get("activation", "topk-sigmoid")))


def layer_norm(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(x̃, μ, σ + ε) of each row, parameter-free."""
    mu = x.mean(-1, keepdim=True)
    sd = x.std(-1, keepdim=True) + LN_EPS
    return (x - mu) / sd, mu, sd


@register("gsae")
class GuidedSAE(SAE):
    Options = GSAEOptions
    saelens_architecture = "topk"
    saelens_normalize = "layer_norm"
    sparsity_param = "k"
    sweep_axes = ("k",)
    lr_constant = 1e-3
    needs_labels = True

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        self._norm: tuple[Tensor, Tensor] | None = None

    # ------------------------------------------------------------------ config

    @property
    def concepts(self) -> list[str]:
        """Names of the concepts tied to latents 0..C−1, in order."""
        return GuidedSettings.of(self.cfg).concepts

    def concept_latents(self) -> list[int]:
        """The latent tied to each concept, in the order of ``concepts``: the reserved latents 0..C−1."""
        return list(range(len(self.concepts)))

    @property
    def sigmoid(self) -> bool:
        return GuidedSettings.of(self.cfg).activation == "topk-sigmoid"

    @classmethod
    def validate(cls, cfg: SAEConfig) -> None:
        check_k(cfg, "the G-SAE")
        n = len(GuidedSettings.of(cfg).concepts)
        if n < 1:
            raise UserError("the G-SAE needs labelled concepts: train it on a store extracted from labelled data")
        if cfg.kept < n:
            raise UserError(f"the G-SAE needs k >= the number of concepts ({n}) so that every reserved latent can "
                            f"be selected; got k={cfg.k:g}")
        if cfg.d_sae <= n:
            raise UserError(f"the G-SAE needs more latents than concepts ({n}); got d_sae={cfg.d_sae}")

    @classmethod
    def build_config(cls, d_in: int, d_sae: int, k: float | None, options: ArchOptions,
                     metadata: dict[str, Any] | None = None) -> SAEConfig:
        k = integer_k(k, "the G-SAE")
        meta = dict(metadata or {})
        ours = dict(meta.get("monosemantic") or {})
        opts: GSAEOptions = options if isinstance(options, GSAEOptions) else GSAEOptions()
        ours["gsae"] = {"concepts": list(ours.pop("concepts", None) or []), "activation": opts.gsae_activation,
                        "concept_reduction": opts.concept_reduction, "concept_weight": opts.concept_weight}
        meta["monosemantic"] = ours
        return super().build_config(d_in, d_sae, k, options, meta)

    # ------------------------------------------------------------------ inference

    def pre_acts(self, x: Tensor) -> Tensor:
        xn, mu, sd = layer_norm(x)
        self._norm = (mu, sd)
        return super().pre_acts(xn)

    def activation(self, pre: Tensor) -> Tensor:
        vals, idx = pre.topk(self.cfg.kept, dim=-1)
        vals = vals.sigmoid() if self.sigmoid else vals.relu()
        return torch.zeros_like(pre).scatter_(-1, idx, vals)

    def decode(self, f: Tensor) -> Tensor:
        out = super().decode(f)
        if self._norm is None or self._norm[0].shape[:-1] != out.shape[:-1]:
            raise UserError("a G-SAE decodes in the scale of the activations it last encoded; call encode on the "
                            "same rows first")
        mu, sd = self._norm
        return out * sd + mu

    def decode_delta(self, idx: Tensor, delta: Tensor) -> Tensor:
        if self._norm is None or self._norm[1].shape[:-1] != delta.shape[:-1]:
            raise UserError("a G-SAE decodes in the scale of the activations it last encoded; call encode on the "
                            "same rows first")
        return super().decode_delta(idx, delta) * self._norm[1]

    def concept_logits(self, x: Tensor) -> Tensor:
        """Pre-TopK logits of the reserved latents [.., C]: the concept detectors."""
        n = len(self.concepts)
        xn, _, _ = layer_norm(x.to(self.W_enc.device, self.W_enc.dtype))
        if self.cfg.apply_b_dec_to_input:
            xn = xn - self.b_dec
        return xn @ self.W_enc[:, :n] + self.b_enc[:n]

    # ------------------------------------------------------------------ training

    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        xn, mu, sd = layer_norm(x)
        vals, idx, _, _ = topk_encode(xn, self.b_dec, self.W_enc, self.b_enc, self.cfg.kept,
                                      bf16=ctx.bf16, apply_b_dec=self.cfg.apply_b_dec_to_input,
                                      relu=not self.sigmoid)
        if self.sigmoid:
            vals = vals.sigmoid()
        x_hat = (sparse_decode(idx, vals, self.W_dec) + self.b_dec) * sd + mu
        n = len(self.concepts)
        xc = xn - self.b_dec if self.cfg.apply_b_dec_to_input else xn
        logits = xc @ self.W_enc[:, :n] + self.b_enc[:n]
        return StepOutput(x=x, x_hat=x_hat, vals=vals, idx=idx, extras={"concept_logits": logits})

    @override
    def reconstruction_loss(self, rec_loss: str, options: ArchOptions, rec_weight: Tensor | None) -> LossTerm:
        """The per-token normalised error of the paper, whatever ``rec_loss`` says."""
        return NormalisedReconstruction(rec_weight)

    @override
    def losses(self, options: ArchOptions, coefficient: float | None) -> list[LossTerm]:
        opts: GSAEOptions = options if isinstance(options, GSAEOptions) else GSAEOptions()
        return [ConceptBCE(opts.concept_reduction, opts.concept_weight)]

    @override
    def unit_norm_decoder(self, options: ArchOptions) -> bool:
        return False  # the paper's decoder is free; its row norms carry the scale the sigmoid caps at 1

    @torch.no_grad()
    def fold_input_scale(self, scale: float, how: Literal["weights", "biases"]) -> None:
        """Nothing to fold: the per-token normalisation removes any input scale and decode restores it."""

    @torch.no_grad()
    def concept_auroc(self, x: Tensor, labels: Tensor) -> dict[str, float | None] | None:
        """Each reserved latent as a detector of its concept: AUROC of its pre-TopK logit on held-out rows (None
        for a concept whose rows are all of one class)."""
        if not len(x):
            return None
        # imported here: scikit-learn takes about as long to import as torch, and only this evaluation needs it
        from sklearn.metrics import roc_auc_score

        logits = torch.cat([self.concept_logits(x[i : i + 4096]) for i in range(0, len(x), 4096)]).cpu().numpy()
        y = labels.cpu().numpy()
        auroc: dict[str, float | None] = {}
        for c, name in enumerate(self.concepts):
            both = 0 < y[:, c].sum() < len(y)
            auroc[name] = float(roc_auc_score(y[:, c], logits[:, c])) if both else None
        return auroc


@dataclass
class NormalisedReconstruction:
    """The G-SAE's reconstruction term: mean over rows of mean_d (x̂ − x)² / mean_d x² (``weight`` [d_in] weights
    each dimension's error, as in the plain reconstruction)."""

    weight: Tensor | None = None
    name: str = "mse"

    def __call__(self, _sae: SAE, out: StepOutput, _ctx: StepContext) -> Tensor:
        err = (out.x_hat - out.x).pow(2)
        if self.weight is not None:
            err = err * self.weight
        return (err.mean(-1) / out.x.pow(2).mean(-1).clamp_min(1e-12)).mean()


@dataclass
class ConceptBCE:
    """Binary cross-entropy of the reserved latents' pre-TopK logits against the rows' concept labels, summed over
    concepts (``sum``) or divided by C + 1 (``mean``), averaged over rows, times ``weight``."""

    reduction: str = "sum"
    weight: float = 1.0
    name: str = "concept"

    def __call__(self, _sae: SAE, out: StepOutput, ctx: StepContext) -> Tensor:
        if ctx.labels is None:
            raise UserError("the G-SAE trains on labelled rows; the trainer passed none")
        logits = out.extras["concept_logits"]
        bce = F.binary_cross_entropy_with_logits(logits, ctx.labels.to(logits.dtype), reduction="none").sum(-1)
        if self.reduction == "mean":
            bce = bce / (logits.shape[-1] + 1)
        return self.weight * bce.mean()

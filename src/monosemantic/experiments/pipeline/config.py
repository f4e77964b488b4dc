"""The run configuration: one TOML file describes a whole pipeline (extract -> train -> score -> report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from monosemantic.config import from_dict, load_toml
from monosemantic.errors import UserError
from monosemantic.sae.trainconfig import TrainConfig, train_config


@dataclass(frozen=True)
class TrackConfig:
    """One model layer on one dataset: extracted, SAEs trained on it, scored against its raw neurons."""

    name: str
    """Short name of the track, used in folder names and the report (e.g. vision, text)."""
    model: str
    """Model to analyse: a registered name, a Hugging Face id or a local folder."""
    layer: str
    """Hook point (module path) whose activations are analysed."""
    data: str
    """Dataset: a registered name or a path (see `monosemantic extract --help`); a relative path is read from
    the folder `monosemantic run` is started in."""
    tokens: str = "all"
    """Rows per item: all, skip-first, patches, cls, mean, max or random-K."""
    max_items: int | None = None
    """Use only the first N items."""
    max_length: int = 128
    """Text: tokens per item."""
    image_size: int | None = None
    """Images: side in pixels (default: the model's own, or 96 for small images)."""
    label_columns: list[str] = field(default_factory=list)
    """JSONL/CSV data: label column(s)."""
    archs: list[str] = field(default_factory=lambda: ["topk", "matryoshka"])
    """SAE architectures to train (topk, batchtopk, matryoshka, jumprelu, relu); each is a sweep."""
    expansions: list[float] = field(default_factory=lambda: [4.0, 8.0])
    """SAE widths as expansion factors of the layer width."""
    ks: list[float] = field(default_factory=lambda: [16.0, 32.0])
    """Active latents per row (topk, batchtopk, matryoshka)."""
    l1s: list[float] = field(default_factory=list)
    """Sparsity coefficients (relu: L1, jumprelu: L0; default 0.05 and 1.0)."""
    train_tokens: str = "1M"
    """Training rows per SAE, with K/M/G suffixes."""
    batch_size: int = 4096
    """Training rows per step."""
    group_fractions: list[float] = field(default_factory=lambda: [0.0625, 0.125, 0.25, 0.5625])
    """Matryoshka: fraction of latents per nested group (the CLIP setting of the MS paper)."""
    encoder: str | None = None
    """External encoder for MS (default: efficientnet_lite0 for images, wordllama static embeddings for text; minilm
    sentence embeddings are the other bundled text encoder)."""
    encoder_max_length: int = 128
    """Text encoder: tokens per item when embedding."""
    pool: Literal["max", "mean"] = "max"
    """How token activations become item activations for item-level scores."""
    hierarchy: str | None = None
    """Label hierarchy for the Matryoshka SAEs' group depth: a TOML/JSON file (label = "parent") or a bundled one
    (fashion-mnist)."""
    n_cards: int = 8
    """Feature cards per SAE in the report (the highest-MS live latents), plus as many neurons."""
    device: str = "auto"
    """Where to extract, train and score: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps."""
    holdout: float = 0.05
    """Share of the items held out of SAE training (evaluation, and the FMS items of steering tracks)."""

    def train_config(self, arch: str, seed: int, acts: Path | None = None, out: Path | None = None) -> TrainConfig:
        """The training settings of one architecture's sweep on this track."""
        from monosemantic.sae.core import get_architecture

        cls = get_architecture(arch)
        data: dict[str, object] = {
            "acts": acts, "out": out, "arch": arch, "width": list(self.expansions), "tokens": self.train_tokens,
            "batch_size": self.batch_size, "seed": seed, "overwrite": True, "device": self.device,
            "holdout": self.holdout,
            "k": list(self.ks) if cls.sparsity_param == "k" else [],
            "l1_coefficient": list(self.l1s) if cls.sparsity_param == "coefficient" else [],
        }
        if "group_fraction" in cls.sweep_axes:
            data["group_fraction"] = list(self.group_fractions)
        return train_config(data, where=f"track {self.name!r}")

    def __post_init__(self) -> None:
        """Fail now, before hours of extraction, on settings a later stage would reject."""
        where = f"track {self.name!r}"
        if not self.archs or not self.expansions:
            raise UserError(f"{where}: archs and expansions must each list at least one value")
        from monosemantic.sae.core import get_architecture

        if any(get_architecture(a).sparsity_param == "k" for a in self.archs) and not self.ks:
            raise UserError(f"{where}: ks must list at least one k for the TopK-family archs")
        if self.n_cards < 0:
            raise UserError(f"{where}: n_cards must be at least 0, got {self.n_cards}")
        from monosemantic.devices import resolve_device

        try:
            resolve_device(self.device)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        if self.encoder_max_length < 1 or self.max_length < 1:
            raise UserError(f"{where}: max_length and encoder_max_length must be at least 1")
        if len(set(self.archs)) != len(self.archs):
            raise UserError(f"{where}: archs lists an architecture twice: {self.archs}")
        for arch in self.archs:
            try:
                self.train_config(arch, 0)  # a TrainConfig checks itself; the seed changes nothing checked
            except UserError as exc:
                raise UserError(f"{where}, {arch}: {exc}") from None
        from monosemantic.sources.datasets import fingerprint

        try:
            fingerprint(self.data)  # a missing local file fails here, not after the tracks before it have run
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None


HOLDOUT = 0.2
"""Share of a steering track's items held out of SAE training: FMS, AUROC and nothing else are measured on them."""


@dataclass(frozen=True)
class SteerTrackConfig:
    """One steering task on one model layer: a vanilla TopK SAE against a G-SAE."""

    name: str
    """Short name of the track (folder names, the report)."""
    task: Literal["attitude", "style", "privacy"]
    """attitude (positive vs negative tweets), style (original vs modern Shakespeare) or privacy (8 PII classes)."""
    model: str = "smollm2"
    """Causal LM to steer: a registered name, a Hugging Face id or a local folder."""
    layer: str = "model.layers.15"
    """Residual-stream hook the SAEs are trained on and steer at (a middle block)."""
    max_items: int | None = None
    """Use only the first N items of the task's training data."""
    max_length: int = 64
    """Tokens per item."""
    expansion: float = 6.0
    """Width of both SAEs as a multiple of the layer width (the paper's Llama-3-8B SAEs: 6)."""
    k: int = 288
    """Latents kept per row by both SAEs; the default is half SmolLM2's width 576, the paper's ratio (k = 2048 for
    d = 4096). Far smaller k leave the G-SAE's reserved latents out of the TopK, so their decoder rows never
    learn (measured: at k = 32 of 4,608 latents the reserved latent was never selected)."""
    train_tokens: str = "2M"
    """Training rows per SAE, with K/M/G suffixes."""
    batch_size: int = 2048
    """Training rows per step."""
    fms_rows: int = 3000
    """At most this many held-out items (token rows for privacy) for FMS and AUROC."""
    n_prompts: int = 64
    """Prompts steered per α."""
    alphas: list[float] = field(default_factory=list)
    """The α grid (default: the task's own)."""
    max_new_tokens: int = 32
    """Tokens generated per prompt (greedy)."""
    gen_batch_size: int = 32
    """Prompts per generation batch."""
    device: str = "auto"
    """Where to run: auto, cpu, cuda, cuda:N or mps."""

    def as_track(self) -> Any:
        from monosemantic.experiments.pipeline.config import TrackConfig
        from monosemantic.steer.tasks import get_task

        task = get_task(self.task)
        return TrackConfig(name=self.name, model=self.model, layer=self.layer, data=task.dataset, tokens="skip-first",
                           max_items=self.max_items, max_length=self.max_length, archs=["topk", "gsae"],
                           expansions=[self.expansion], ks=[float(self.k)], train_tokens=self.train_tokens,
                           batch_size=self.batch_size, device=self.device, holdout=HOLDOUT, n_cards=0)

    def __post_init__(self) -> None:
        from monosemantic.steer.tasks import get_task

        where = f"steering track {self.name!r}"
        try:
            get_task(self.task)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        for key in ("n_prompts", "max_new_tokens", "gen_batch_size", "fms_rows", "k"):
            if getattr(self, key) < 1:
                raise UserError(f"{where}: {key} must be at least 1, got {getattr(self, key)}")
        if any(not np.isfinite(a) for a in self.alphas):
            raise UserError(f"{where}: alphas must be finite numbers, got {self.alphas}")
        self.as_track()  # the track it trains on checks itself


@dataclass(frozen=True)
class RunConfig:
    """A pipeline run: every stage's output is cached under `out` by a hash of its inputs."""

    tracks: list[TrackConfig] = field(default_factory=list)
    """One [[tracks]] table per model layer to analyse."""
    steer: list[SteerTrackConfig] = field(default_factory=list)
    """One [[steer]] table per steering task: a vanilla TopK SAE against a G-SAE on one causal-LM layer."""
    title: str = "monosemantic run"
    """Title of the report."""
    out: Path = Path("runs/run")
    """Run folder (stage outputs, report.html)."""
    seed: int = 0
    """Seed for training and data order."""
    threads: int = 0
    """CPU threads for torch (0 = torch's default)."""

    def __post_init__(self) -> None:
        if not self.tracks and not self.steer:
            raise RunFileError("defines no [[tracks]] and no [[steer]] tables; add at least one")
        names = [t.name for t in self.tracks] + [t.name for t in self.steer]
        if len(set(names)) != len(names):
            raise RunFileError(f"track names must be unique, got {names}")


class RunFileError(UserError):
    """A fault of the run file as a whole; the loader puts the file's name in front of it."""


def load_run_config(path: str | Path, **overrides: object) -> RunConfig:
    """Read and check a run config; unknown keys and wrong types are named."""
    data = load_toml(path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return from_dict(RunConfig, data, where=Path(path).name)
    except RunFileError as exc:
        sep = ":" if str(exc).startswith("track names") else ""
        raise UserError(f"{path}{sep} {exc}") from None

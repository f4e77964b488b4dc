"""``monosemantic extract``: run a model over a dataset once and store the activations of one or more hooks.

The store (sharded, memory-mapped safetensors with a JSON manifest, see ``monosemantic.store``) is written shard
by shard as the model runs, rather than staged and published at the end like other results, so that an
interrupted extraction resumes from its last complete shard when the same command runs again; ``--overwrite``
builds a new store beside an old one and swaps it in only when it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.experiment import Command, Result, Summary
from monosemantic.sources import load_dataset, load_model_for
from monosemantic.sources.datasets import data_ref
from monosemantic.store import ActivationStore
from monosemantic.store.extract import Extraction, extract_activations
from monosemantic.store.tokens import parse_tokens


@dataclass(frozen=True)
class ExtractConfig:
    """One model's activations at one or more hooks over one dataset."""

    model: str
    """Model: a registered name (minilm, smollm2, mobilenet_v2, efficientnet_lite0), a Hugging Face id
    or a local folder."""
    layers: list[str]
    """Hook point (module path such as encoder.layer.3, model.layers.15 or features.13); repeat for
    several hooks, all from one forward pass."""
    data: str
    """Dataset: a registered name (bbc-news, mnist-5k, digits, lfw-faces, fashion-mnist) or a
    .txt/.jsonl/.csv file, an image folder or a saved Hugging Face dataset."""
    out: Path
    """Folder to write the store to."""
    tokens: str = "all"
    """Rows kept per item: all (every real token), skip-first (all but the first: a causal LM's attention sink),
    patches (all but the CLS token), cls, mean, max (pooled per item) or random-K (K random tokens)."""
    batch_size: int = 32
    """Items per forward pass."""
    max_items: int | None = None
    """Use only the first N items of the dataset."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Storage dtype of the activations (float16 can overflow on LLM layers with massive activations)."""
    max_length: int = 128
    """Text models: truncate each item to this many tokens."""
    image_size: int | None = None
    """Image models: side in pixels the images are resized to (default: the model's own, or 96 for
    datasets of images of 64 px or less)."""
    text_field: str = "text"
    """JSONL/CSV data: the column holding the text."""
    label_columns: list[str] = field(default_factory=list)
    """JSONL/CSV data: label column(s); one column gives classes, several give binary concepts."""
    seed: int = 0
    """Seed for random-K token selection."""
    shard_rows: int = 65536
    """Rows per shard file."""
    device: str = "auto"
    """Where to run the model: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps."""
    overwrite: bool = False
    """Replace an existing store at --out (the new one is built beside it and swapped in when complete)."""

    def __post_init__(self) -> None:
        # impossible settings fail before any model or data is loaded, naming the option and what it accepts
        parse_tokens(self.tokens)
        resolve_device(self.device)
        if not self.layers:
            raise UserError("give at least one --layer (`monosemantic hooks MODEL` lists them)")
        positive = {
            "--batch-size": (self.batch_size, "items per forward pass"),
            "--max-length": (self.max_length, "tokens kept per text item"),
            "--shard-rows": (self.shard_rows, "rows per shard file"),
        }
        # None means "no limit" / "the model's own size" for these two, so only a given value is checked.
        if self.max_items is not None:
            positive["--max-items"] = (self.max_items, "items to extract; leave it out to use every item")
        if self.image_size is not None:
            positive["--image-size"] = (self.image_size, "pixels per image side; leave it out for the model's own")
        for flag, (value, meaning) in positive.items():
            if value < 1:
                raise UserError(f"{flag} must be at least 1 ({meaning}), got {value}")
        if not self.text_field:
            raise UserError("--text-field must name the column holding the text, got an empty name")
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file; give a folder path (new or empty) for the store")


@dataclass(frozen=True)
class ExtractedHook:
    path: str
    """Full module path of the hook."""
    width: int
    """Width d of its rows."""


@dataclass(frozen=True)
class ExtractResult(Result):
    """A finished store: where it is and what it holds."""

    store: Path
    """The store's folder (``--out``)."""
    model: str
    dataset: str
    """The dataset's name (a bundled name, or the file or folder name of local data)."""
    tokens: str
    items: int
    rows: int
    hooks: tuple[ExtractedHook, ...]
    """Each hook with its width, in the order given."""

    @classmethod
    def of(cls, store: ActivationStore) -> ExtractResult:
        m = store.manifest
        return cls(store=store.root, model=m.model["name"], dataset=m.dataset["name"], tokens=m.tokens,
                   items=store.n_items, rows=store.n_rows,
                   hooks=tuple(ExtractedHook(h, store.width(h)) for h in store.hooks))

    def open(self) -> ActivationStore:
        """The store itself, to read."""
        return ActivationStore.open(self.store)

    def write(self, folder: Path) -> None:
        """Nothing to add: the store is written shard by shard while the model runs (see the module docstring)."""

    def summary(self) -> Summary:
        hooks = ", ".join(f"{h.path} (d={h.width})" for h in self.hooks)
        return [f"ActivationStore({self.store}: {self.model} on {self.dataset}, {self.items} items, {self.rows} rows, "
                f"tokens={self.tokens}, {hooks})"]


def run(cfg: ExtractConfig) -> ExtractResult:
    """Extract the store ``cfg`` describes to ``cfg.out``; resumes an unfinished store with the same settings."""
    dataset = load_dataset(data_ref(cfg.data), cfg.text_field, tuple(cfg.label_columns))
    model = load_model_for(
        cfg.model, dataset, max_length=cfg.max_length, image_size=cfg.image_size,
        mismatch=lambda reads: f"model {cfg.model!r} reads {reads} but dataset {cfg.data!r} holds {dataset.modality}; "
        f"pair a {reads} model with a {reads} dataset",
    ).to_device(resolve_device(cfg.device))
    spec = Extraction(model=cfg.model, data=cfg.data, layers=tuple(cfg.layers), tokens=cfg.tokens, dtype=cfg.dtype,
                      max_items=cfg.max_items, max_length=cfg.max_length, seed=cfg.seed, text_field=cfg.text_field,
                      label_columns=tuple(cfg.label_columns), batch_size=cfg.batch_size, shard_rows=cfg.shard_rows)
    return ExtractResult.of(extract_activations(model, dataset, spec, cfg.out, overwrite=cfg.overwrite))


COMMAND = Command(
    "extract", ExtractConfig, run,
    description="Run MODEL over DATA once and store the activations of every --layer as sharded, "
    "memory-mapped safetensors with a JSON manifest. An interrupted run resumes when run again.",
    flags={"layers": ("--layer",)},
)

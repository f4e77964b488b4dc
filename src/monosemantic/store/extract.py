"""Extraction: run a model over a dataset once and store the activations of one or more hooks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

import monosemantic
from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.sources import load_dataset, load_model, resolve_hook, run_captured
from monosemantic.sources.datasets import data_ref, fingerprint
from monosemantic.store.manifest import Manifest
from monosemantic.store.reader import ActivationStore
from monosemantic.store.tokens import parse_tokens, select_rows, token_concepts
from monosemantic.store.writer import StoreWriter


@dataclass(frozen=True)
class ExtractConfig:
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


def check_config(cfg: ExtractConfig) -> None:
    """Refuse impossible settings before any model or data is loaded, naming the option and what it accepts."""
    parse_tokens(cfg.tokens)
    resolve_device(cfg.device)
    if not cfg.layers:
        raise UserError("give at least one --layer (`monosemantic hooks MODEL` lists them)")
    positive = {
        "--batch-size": (cfg.batch_size, "items per forward pass"),
        "--max-length": (cfg.max_length, "tokens kept per text item"),
        "--shard-rows": (cfg.shard_rows, "rows per shard file"),
    }
    # None means "no limit" / "the model's own size" for these two, so only a given value is checked.
    if cfg.max_items is not None:
        positive["--max-items"] = (cfg.max_items, "items to extract; leave it out to use every item")
    if cfg.image_size is not None:
        positive["--image-size"] = (cfg.image_size, "pixels per image side; leave it out for the model's own")
    for flag, (value, meaning) in positive.items():
        if value < 1:
            raise UserError(f"{flag} must be at least 1 ({meaning}), got {value}")
    if not cfg.text_field:
        raise UserError("--text-field must name the column holding the text, got an empty name")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder path (new or empty) for the store")


def extract(cfg: ExtractConfig, *, progress: bool = True) -> ActivationStore:
    """Run the extraction described by ``cfg``; resumes an unfinished store with the same settings."""
    check_config(cfg)
    data = data_ref(cfg.data)
    dataset = load_dataset(data, cfg.text_field, tuple(cfg.label_columns))
    image_size = cfg.image_size
    if image_size is None and dataset.native_size is not None and dataset.native_size <= 64:
        image_size = 96
    device = resolve_device(cfg.device)
    model = load_model(cfg.model, max_length=cfg.max_length, image_size=image_size).to_device(device)
    if model.modality != dataset.modality:
        raise UserError(
            f"model {cfg.model!r} reads {model.modality} but dataset {cfg.data!r} holds {dataset.modality}; "
            f"pair a {model.modality} model with a {model.modality} dataset"
        )
    hooks = [resolve_hook(model.module, h) for h in cfg.layers]
    for h in hooks:
        if hooks.count(h) > 1:
            raise UserError(f"--layer names the hook {h!r} more than once; give each hook once")
    n = len(dataset) if cfg.max_items is None else min(cfg.max_items, len(dataset))
    if n == 0:
        raise UserError(f"dataset {cfg.data!r} holds no items; give data with at least one item")

    # One probe batch gives each hook's width before anything is written.
    with torch.inference_mode():
        probe = run_captured(model.forward, model.prepare(dataset.load(0, 1)), model.module, hooks)
    # Part of the settings, so that data edited between runs is not resumed into one store holding both.
    data_print = fingerprint(data)
    settings = {
        "model": cfg.model,
        "fingerprint": model.fingerprint,
        "data": data,
        "data_fingerprint": data_print,
        "hooks": hooks,
        "tokens": cfg.tokens,
        "dtype": cfg.dtype,
        "n_items": n,
        "max_length": cfg.max_length if model.modality == "text" else None,
        "image_size": model.image_size,
        "seed": cfg.seed,
        "text_field": cfg.text_field,
        "label_columns": list(cfg.label_columns),
    }
    manifest = Manifest(
        model={"name": cfg.model, "source": model.source, "fingerprint": model.fingerprint, "modality": model.modality},
        dataset={
            "name": dataset.name,
            "source": dataset.source,
            "ref": data,
            "fingerprint": data_print,
            "n_items": n,
            "label_names": dataset.label_names,
        },
        hooks={h: {"width": int(probe[h].shape[-1])} for h in hooks},
        tokens=cfg.tokens,
        dtype=cfg.dtype,
        settings=settings,
        monosemantic_version=monosemantic.__version__,
    )
    labels = dataset.labels
    spans = getattr(dataset, "token_spans", None) if model.tokenizer is not None else None

    def records():
        for i in range(n):
            rec = dataset.item_record(i)
            if labels is not None:
                rec["label"] = np.asarray(labels[i]).tolist()
            if spans is not None:
                rec["token_labels"] = token_concepts(model.tokenizer, dataset.load(i, i + 1)[0], spans(i),
                                                     cfg.max_length)
            yield rec

    writer = StoreWriter.open(
        cfg.out, manifest, overwrite=cfg.overwrite, shard_rows=cfg.shard_rows, records=records(), vocab=model.vocab
    )
    start = writer.items_done
    bar = tqdm(
        total=n,
        initial=start,
        unit="item",
        desc=f"extract {cfg.model}",
        disable=not progress,
        dynamic_ncols=True,
        mininterval=0.5,
    )
    rows_done, t0 = 0, time.perf_counter()
    try:
        for a in range(start, n, cfg.batch_size):
            b = min(a + cfg.batch_size, n)
            batch = model.prepare(dataset.load(a, b))
            with torch.inference_mode():
                hidden = {h: t.cpu() for h, t in run_captured(model.forward, batch, model.module, hooks).items()}
                rows = select_rows(
                    hidden,
                    batch.mask,
                    batch.token_ids,
                    cfg.tokens,
                    np.arange(a, b),
                    has_cls=model.has_cls,
                    seed=cfg.seed,
                )
            writer.add(rows.acts, rows.item, rows.position, rows.token)
            rows_done += len(rows.item)
            bar.update(b - a)
            bar.set_postfix_str(f"{rows_done / (time.perf_counter() - t0):,.0f} tok/s", refresh=False)
    except BaseException:
        writer.abort()
        bar.leave = False  # clear the bar, so an error message stands alone on its line
        bar.close()
        raise
    bar.close()
    if rows_done == 0 and writer.manifest.n_rows == 0:  # nothing added now, so no write is in flight
        writer.abort()
        raise UserError(
            f"no rows were kept from {n} items of {cfg.data!r} (tokens={cfg.tokens}); give items with text or "
            "pixels, or another --tokens"
        )
    return writer.close()

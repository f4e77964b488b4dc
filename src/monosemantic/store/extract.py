"""Extraction: run a model over a dataset once and store the activations of one or more hooks.

``extract_activations`` is the machinery behind ``monosemantic extract`` (``monosemantic.experiments.extract``),
for a model and a dataset that are already loaded. A store records everything that determines its contents in
its manifest's settings, so an interrupted extraction resumes only into a store made the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import monosemantic
from monosemantic import log
from monosemantic.errors import UserError
from monosemantic.sources import Dataset, Model, resolve_hook, run_captured
from monosemantic.sources.datasets import ItemRecord, data_ref, fingerprint
from monosemantic.store.manifest import Manifest
from monosemantic.store.reader import ActivationStore
from monosemantic.store.tokens import select_rows, token_concepts
from monosemantic.store.writer import StoreWriter


@dataclass(frozen=True)
class Extraction:
    """What one extraction keeps of a loaded model and dataset, and how it writes it."""

    model: str
    """The model's name as given (a bundled name, a Hugging Face id or a folder)."""
    data: str
    """The data as given (a bundled name or a path); the store records ``data_ref`` of it."""
    layers: Sequence[str]
    """Hook points (full module paths or unique suffixes), all read in one forward pass."""
    tokens: str = "all"
    """Rows kept per item (see ``store.tokens.parse_tokens``)."""
    dtype: str = "float32"
    max_items: int | None = None
    max_length: int = 128
    """Text models: the tokens kept per item (recorded; the model truncates)."""
    seed: int = 0
    """Seed of random-K token selection."""
    text_field: str = "text"
    label_columns: Sequence[str] = ()
    batch_size: int = 32
    shard_rows: int = 65536


def extract_activations(model: Model, dataset: Dataset, spec: Extraction, out: str | Path, *,
                        overwrite: bool = False) -> ActivationStore:
    """Run ``model`` over ``dataset`` and write the rows ``spec`` asks for as a store at ``out``; an unfinished
    store there with the same settings is resumed."""
    hooks = resolve_hooks(model, spec.layers)
    n = len(dataset) if spec.max_items is None else min(spec.max_items, len(dataset))
    if n == 0:
        raise UserError(f"dataset {spec.data!r} holds no items; give data with at least one item")
    manifest = extraction_manifest(model, dataset, spec, hooks, n)
    writer = StoreWriter.open(out, manifest, overwrite=overwrite, shard_rows=spec.shard_rows,
                              records=item_records(model, dataset, n, spec.max_length), vocab=model.vocab)
    try:
        rows_done = _write_rows(model, dataset, spec, hooks, n, writer)
    except BaseException:
        writer.abort()
        raise
    if rows_done == 0 and writer.manifest.n_rows == 0:  # nothing added now, so no write is in flight
        writer.abort()
        raise UserError(
            f"no rows were kept from {n} items of {spec.data!r} (tokens={spec.tokens}); give items with text or "
            "pixels, or another --tokens"
        )
    return writer.close()


def resolve_hooks(model: Model, layers: Sequence[str]) -> list[str]:
    """The full hook paths of ``layers``, each named once."""
    hooks = [resolve_hook(model.module, h) for h in layers]
    for h in hooks:
        if hooks.count(h) > 1:
            raise UserError(f"--layer names the hook {h!r} more than once; give each hook once")
    return hooks


def probe_widths(model: Model, dataset: Dataset, hooks: Sequence[str]) -> dict[str, int]:
    """Each hook's width, from one forward pass on the first item (before anything is written)."""
    with torch.inference_mode():
        probe = run_captured(model.forward, model.prepare(dataset.load(0, 1)), model.module, hooks)
    return {h: int(probe[h].shape[-1]) for h in hooks}


def extraction_manifest(model: Model, dataset: Dataset, spec: Extraction, hooks: list[str], n: int) -> Manifest:
    """The manifest of a new store of the first ``n`` items: what was read, and the settings a resume must match."""
    data = data_ref(spec.data)
    # Part of the settings, so that data edited between runs is not resumed into one store holding both.
    data_print = fingerprint(data)
    settings: dict[str, Any] = {
        "model": spec.model,
        "fingerprint": model.fingerprint,
        "data": data,
        "data_fingerprint": data_print,
        "hooks": hooks,
        "tokens": spec.tokens,
        "dtype": spec.dtype,
        "n_items": n,
        "max_length": spec.max_length if model.modality == "text" else None,
        "image_size": model.image_size,
        "seed": spec.seed,
        "text_field": spec.text_field,
        "label_columns": list(spec.label_columns),
    }
    widths = probe_widths(model, dataset, hooks)
    return Manifest(
        model={"name": spec.model, "source": model.source, "fingerprint": model.fingerprint,
               "modality": model.modality},
        dataset={"name": dataset.name, "source": dataset.source, "ref": data, "fingerprint": data_print, "n_items": n,
                 "label_names": dataset.label_names},
        hooks={h: {"width": widths[h]} for h in hooks},
        tokens=spec.tokens,
        dtype=spec.dtype,
        settings=settings,
        monosemantic_version=monosemantic.__version__,
    )


def item_records(model: Model, dataset: Dataset, n: int, max_length: int) -> Iterator[ItemRecord]:
    """The records of the first ``n`` items, with their labels and, for a text model on data with labelled
    character spans, the concept of each token."""
    labels = dataset.labels
    spans = dataset.token_spans if model.tokenizer is not None else None
    for i in range(n):
        rec = dataset.item_record(i)
        if labels is not None:
            rec["label"] = np.asarray(labels[i]).tolist()
        if spans is not None:
            rec["token_labels"] = token_concepts(model.tokenizer, dataset.load(i, i + 1)[0], spans(i), max_length)
        yield rec


def _write_rows(model: Model, dataset: Dataset, spec: Extraction, hooks: list[str], n: int,
                writer: StoreWriter) -> int:
    """Feed the items the writer does not hold yet through the model, batch by batch; the rows added."""
    start = writer.items_done
    bar = log.bar(desc=f"extract {spec.model}", unit="item", total=n)
    bar.n = bar.initial = start  # a resumed run counts on from where it stopped, at a rate of this run's items
    rows_done, t0 = 0, time.perf_counter()
    try:
        for a in range(start, n, spec.batch_size):
            b = min(a + spec.batch_size, n)
            batch = model.prepare(dataset.load(a, b))
            with torch.inference_mode():
                hidden = {h: t.cpu() for h, t in run_captured(model.forward, batch, model.module, hooks).items()}
                rows = select_rows(hidden, batch.mask, batch.token_ids, spec.tokens, np.arange(a, b),
                                   has_cls=model.has_cls, seed=spec.seed)
            writer.add(rows.acts, rows.item, rows.position, rows.token)
            rows_done += len(rows.item)
            bar.update(b - a)
            bar.set_postfix_str(f"{rows_done / (time.perf_counter() - t0):,.0f} tok/s", refresh=False)
    except BaseException:
        bar.leave = False  # clear the bar, so an error message stands alone on its line
        raise
    finally:
        bar.close()
    return rows_done

"""What every model source provides: a module to hook, a way to turn items into inputs, and embeddings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

Modality = Literal["text", "image"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Batch:
    """Model inputs for a list of items, plus which token positions are real (not padding)."""

    inputs: dict[str, torch.Tensor]
    mask: torch.Tensor | None = None
    """[B, T] bool, True for real tokens; None when every position is real (images)."""
    token_ids: torch.Tensor | None = None
    """[B, T] token ids for text models, kept so reports can show the tokens."""
    texts: list[str] | None = None
    """The raw texts, for a static embedder that tokenises them itself (no tensors in ``inputs``)."""


@dataclass
class Model:
    """A loaded model, ready for hooks.

    ``module`` is the ``nn.Module`` whose ``named_modules()`` define the hook paths; ``prepare`` turns raw items
    (strings or HxW[xC] uint8 arrays) into a ``Batch``; ``forward`` runs the module on it; ``embed`` gives one
    vector per item for the model's role as an external encoder (MS).
    """

    name: str
    modality: Modality
    module: nn.Module
    prepare: Callable[[Sequence[Any]], Batch]
    forward: Callable[[Batch], Any]
    embed: Callable[[Batch], torch.Tensor]
    has_cls: bool
    fingerprint: str
    tokenizer: Any = None
    image_size: int | None = None
    source: str = ""

    def to_device(self, device: torch.device) -> Model:
        """Move the module to ``device``; ``forward`` and ``embed`` then move each batch's inputs there too."""
        if device.type == "cpu" and all(p.device.type == "cpu" for p in self.module.parameters()):
            return self
        self.module.to(device)
        forward, embed = self.forward, self.embed

        def moved(batch: Batch) -> Batch:
            inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.inputs.items()}
            return replace(batch, inputs=inputs)

        self.forward = lambda batch: forward(moved(batch))
        self.embed = lambda batch: embed(moved(batch))
        return self

    @property
    def vocab(self) -> list[str] | None:
        if self.tokenizer is None:
            return None
        size = len(self.tokenizer)
        return [str(t) for t in self.tokenizer.convert_ids_to_tokens(list(range(size)))]

    @torch.inference_mode()
    def embed_items(self, items: Sequence[Any], batch_size: int = 64) -> torch.Tensor:
        """Embeddings [N, e] of items, batched."""
        out = [self.embed(self.prepare(items[i : i + batch_size])).float().cpu()
               for i in range(0, len(items), batch_size)]
        return torch.cat(out) if out else torch.empty(0)


def file_sha256(*paths: str | Path) -> str:
    """Hash of weight files, so a store records exactly which weights produced it."""
    digest = hashlib.sha256()
    for path in sorted(str(p) for p in paths):
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def to_pixels(images: Sequence[np.ndarray], size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (or [0, 1] float) HxW / HxWxC images -> normalised float NCHW at ``size`` x ``size``.

    Images are grouped by shape so a dataset of equal-sized images is converted in one batched op.
    """
    out = torch.empty(len(images), 3, size, size)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        by_shape.setdefault(tuple(np.shape(img)), []).append(i)
    for shape, idx in by_shape.items():
        arr = np.stack([np.asarray(images[i]) for i in idx])
        x = torch.from_numpy(arr).float()
        if arr.dtype == np.uint8:
            x = x / 255.0
        if len(shape) == 2:
            x = x[:, None].expand(-1, 3, -1, -1)
        else:
            x = x[..., :3].permute(0, 3, 1, 2) if shape[-1] in (3, 4) else x[:, :1].expand(-1, 3, -1, -1)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        out[idx] = x
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (out - m) / s


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over real tokens of [B, T, d]."""
    if mask is None:
        return hidden.mean(1)
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1)

"""Reading a store: contiguous slices, random gathers and shuffled batches, all through memory maps."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import cast

import numpy as np
import torch

from monosemantic.errors import StoreError
from monosemantic.sources.datasets import ItemRecord
from monosemantic.store.manifest import ITEMS, VOCAB, Manifest
from monosemantic.store.shards import REBUILD, RESUME, open_shard, sha256_file, to_float32

HOLDOUT = 0.05
"""Share of a store's items held out from training; every SAE evaluation and score reads the same split, so
the default must be one number for the whole project."""


def nonfinite(x: torch.Tensor) -> torch.Tensor | None:
    """The mask of NaN/inf entries of a batch read from a store, or None when every entry is finite.

    One float64 reduction decides the common case: the sum of finite values is finite unless it overflows, and
    only then is the elementwise mask built.
    """
    if math.isfinite(float(x.sum(dtype=torch.float64))):
        return None
    mask = ~torch.isfinite(x)
    return mask if bool(mask.any()) else None


def acts_key(hook: str) -> str:
    return f"acts/{hook}"


class ActivationStore:
    """An activation store on disk. Open with ``ActivationStore.open(path)``."""

    def __init__(self, root: Path, manifest: Manifest, shards: list[dict[str, np.ndarray]]) -> None:
        self.root = root
        self.manifest = manifest
        self._shards = shards
        self._offsets = np.cumsum([0] + [s.rows for s in manifest.shards])

    @classmethod
    def open(cls, path: str | Path, *, verify: bool = False, allow_incomplete: bool = False) -> ActivationStore:
        """Open a store; every shard is checked against the manifest (and its sha256 with ``verify``)."""
        root = Path(path)
        manifest = Manifest.load(root)
        if not manifest.complete and not allow_incomplete:
            raise StoreError(
                f"{root} is an unfinished extraction ({manifest.items_done} of {manifest.n_items} items); "
                "run the same `monosemantic extract` command again to resume it"
            )
        fix = REBUILD if manifest.complete else RESUME
        shards = []
        for info in manifest.shards:
            path_i = root / info.file
            mapped = open_shard(path_i, fix)
            expected = {acts_key(h): (info.rows, meta["width"]) for h, meta in manifest.hooks.items()}
            expected |= {"item": (info.rows,), "position": (info.rows,)}
            for key, shape in expected.items():
                arr = mapped.get(key)
                if arr is None or arr.shape != shape:
                    got = None if arr is None else arr.shape
                    raise StoreError(
                        f"shard {path_i} does not match the manifest: {key!r} should be {shape}, found {got}; {fix}"
                    )
            if verify and sha256_file(path_i) != info.sha256:
                raise StoreError(f"shard {path_i} is corrupt (sha256 differs from the manifest); {fix}")
            shards.append(mapped)
        return cls(root, manifest, shards)

    # ------------------------------------------------------------------ shape
    @property
    def hooks(self) -> list[str]:
        return list(self.manifest.hooks)

    def width(self, hook: str | None = None) -> int:
        """Width d of ``hook``'s activation rows (each batch of that hook is [B, d])."""
        return int(self.manifest.hooks[self.hook(hook)]["width"])

    @property
    def n_rows(self) -> int:
        return self._offsets[-1].item()

    @property
    def n_items(self) -> int:
        return self.manifest.items_done

    def hook(self, hook: str | None = None) -> str:
        """The full name of ``hook`` in this store (a unique suffix will do; None: the store's only hook)."""
        if hook is None:
            if len(self.hooks) != 1:
                raise StoreError(f"{self.root} holds several hooks ({', '.join(self.hooks)}); name one")
            return self.hooks[0]
        if hook not in self.manifest.hooks:
            matches = [h for h in self.hooks if h.endswith("." + hook)]
            if len(matches) == 1:
                return matches[0]
            raise StoreError(f"{self.root} has no hook {hook!r}; it holds: {', '.join(self.hooks)}")
        return hook

    # ------------------------------------------------------------------ rows
    def rows(self, hook: str | None, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``start:stop`` of one hook as float32 [n, d]."""
        hook = self.hook(hook)
        stop = self.n_rows if stop is None else min(stop, self.n_rows)
        parts = []
        first = int(np.searchsorted(self._offsets, start, side="right")) - 1
        for s in range(max(first, 0), len(self._shards)):
            lo, hi = self._offsets[s], self._offsets[s + 1]
            if lo >= stop:
                break
            a, b = max(start, lo) - lo, min(stop, hi) - lo
            if b > a:
                parts.append(to_float32(self._shards[s][acts_key(hook)][a:b], self.manifest.dtype))
        if not parts:
            return torch.empty(0, self.width(hook))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def gather(self, hook: str | None, idx: np.ndarray) -> torch.Tensor:
        """Rows at ``idx`` (any order) as float32 [len(idx), d]."""
        hook = self.hook(hook)
        idx = np.asarray(idx, dtype=np.int64)
        out = torch.empty(len(idx), self.width(hook))
        shard_of = np.searchsorted(self._offsets, idx, side="right") - 1
        for s in np.unique(shard_of):
            sel = np.nonzero(shard_of == s)[0]
            local = idx[sel] - self._offsets[s]
            out[torch.from_numpy(sel)] = to_float32(self._shards[s][acts_key(hook)][local], self.manifest.dtype)
        return out

    def batches(
        self,
        hook: str | None,
        batch_size: int,
        *,
        rows: np.ndarray | None = None,
        seed: int = 0,
        epoch: int = 0,
        start: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ) -> Iterator[torch.Tensor]:
        """Shuffled float32 batches [batch_size, d] of ``hook``'s rows (all rows, or ``rows``): a permutation seeded
        by (seed, epoch); batch b goes to rank b % world_size.

        ``start`` skips this rank's first batches, so a resumed run sees exactly the batches it had not seen.
        """
        pool = np.arange(self.n_rows) if rows is None else np.asarray(rows, dtype=np.int64)
        order = pool[np.random.default_rng([seed, epoch]).permutation(len(pool))]
        n_batches = len(order) // batch_size if drop_last else -(-len(order) // batch_size)
        for b in range(rank + start * world_size, n_batches, world_size):
            # Sorting inside a batch keeps the batch's contents but reads the memory maps in order.
            yield self.gather(hook, np.sort(order[b * batch_size : (b + 1) * batch_size]))

    def n_batches(self, batch_size: int, rows: np.ndarray | None = None, world_size: int = 1) -> int:
        """Batches per epoch for one rank (drop_last)."""
        n = self.n_rows if rows is None else len(rows)
        return (n // batch_size) // world_size

    def split(self, holdout: float = HOLDOUT, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(train rows, held-out rows) as int64 row-index arrays, split by item (a share ``holdout`` of the items)
        so no item has rows on both sides."""
        if not 0 < holdout < 1:
            raise StoreError(f"holdout must be between 0 and 1, got {holdout}")
        n_eval = max(1, round(self.n_items * holdout))
        held = np.zeros(self.n_items, dtype=bool)
        held[np.random.default_rng(seed).permutation(self.n_items)[:n_eval]] = True
        mask = held[self.item_index]
        return np.nonzero(~mask)[0], np.nonzero(mask)[0]

    # ------------------------------------------------------------------ per-row and per-item data
    def _column(self, key: str, dtype: type) -> np.ndarray:
        if not self._shards:
            return np.empty(0, dtype=dtype)
        return np.concatenate([np.asarray(s[key], dtype=dtype) for s in self._shards])

    @cached_property
    def item_index(self) -> np.ndarray:
        """[n_rows] int64: the item each row came from."""
        return self._column("item", np.int64)

    @cached_property
    def positions(self) -> np.ndarray:
        """[n_rows] int32: the token position inside its item (-1 for pooled rows)."""
        return self._column("position", np.int32)

    @cached_property
    def token_ids(self) -> np.ndarray | None:
        """[n_rows] int32 token ids for text stores, else None."""
        return self._column("token", np.int32) if self._shards and "token" in self._shards[0] else None

    @cached_property
    def items(self) -> list[ItemRecord]:
        """The JSON record of every item (its text or image reference, and its labels), by item index."""
        path = self.root / ITEMS
        try:
            records = [json.loads(line) for line in path.read_text().splitlines() if line]
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path} is missing or damaged ({exc}); {REBUILD}") from None
        if len(records) < self.n_items:
            raise StoreError(f"{path} lists {len(records)} items but the store holds {self.n_items}; {REBUILD}")
        return cast(list[ItemRecord], records[: self.n_items])

    @cached_property
    def labels(self) -> np.ndarray | None:
        """[n_items] class ids (or [n_items, C] binary columns), or None when the data had no labels."""
        if not self.manifest.dataset.get("label_names"):
            return None
        records = cast(list[Mapping[str, object]], self.items)  # as read: a hand-edited line may lack its label
        try:
            return np.array([r["label"] for r in records], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{self.root / ITEMS} has items without a valid label ({exc!r}); {REBUILD}") from None

    @cached_property
    def row_labels(self) -> np.ndarray | None:
        """[n_rows, C] uint8 concept labels of every row: the row's own where the items carry per-token labels
        (``token_labels``: the concept index of each token, -1 for none), else its item's labels (class ids as
        one-hot columns over ``label_names``). None when the data had no labels."""
        labels = self.labels
        if labels is None:
            return None
        n_c = len(self.label_names)
        if labels.ndim == 1:
            per_item = np.zeros((self.n_items, n_c), dtype=np.uint8)
            per_item[np.arange(self.n_items), labels] = 1
        else:
            per_item = labels.astype(np.uint8)
        out = per_item[self.item_index]
        tagged = [(i, tags) for i, r in enumerate(self.items) if (tags := r.get("token_labels")) is not None]
        if tagged:
            # rows are written item by item, so each item's rows are one contiguous run
            order = np.argsort(self.item_index, kind="stable")
            bounds = np.searchsorted(self.item_index[order], np.arange(self.n_items + 1))
            pos = self.positions
            for item, tags in tagged:
                rows = order[bounds[item] : bounds[item + 1]]
                rows = rows[pos[rows] >= 0]  # pooled rows keep their item's labels
                tag = np.asarray(tags, dtype=np.int64)
                p = pos[rows]
                concept = np.where(p < len(tag), tag[np.minimum(p, max(len(tag) - 1, 0))] if len(tag) else -1, -1)
                out[rows] = 0
                hit = concept >= 0
                out[rows[hit], concept[hit]] = 1
        return out

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest.dataset.get("label_names") or [])

    @cached_property
    def vocab(self) -> list[str] | None:
        path = self.root / VOCAB
        return json.loads(path.read_text()) if path.is_file() else None

    def item_tokens(self, item: int) -> list[str]:
        """The token strings of one text item, in order (empty for images)."""
        if self.token_ids is None or self.vocab is None:
            return []
        rows = np.nonzero(self.item_index == item)[0]
        return [self.vocab[t] for t in self.token_ids[rows]]

    def __repr__(self) -> str:
        hooks = ", ".join(f"{h} (d={self.width(h)})" for h in self.hooks)
        return (
            f"ActivationStore({self.root}: {self.manifest.model['name']} on {self.manifest.dataset['name']}, "
            f"{self.n_items} items, {self.n_rows} rows, tokens={self.manifest.tokens}, {hooks})"
        )

"""Training batches from a store: seeded per-epoch permutations, a disjoint share per rank, exact resume.

Batch ``b`` of an epoch is rows ``order[b·B:(b+1)·B]`` of a permutation seeded by (seed, epoch) and goes to rank
``b % world_size`` (the store's own convention). Small hooks are read into memory once (a random gather from
memory-mapped shards costs ~100 ms per 4096-row batch, as much as a training step); larger ones are gathered
from the store by a background thread one batch ahead. Also here: the hook a config names, the NaN/inf check of
a batch, and the seeded row sample the input scale (and WSAE weights) are measured on.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from monosemantic.errors import UserError
from monosemantic.store import ActivationStore, nonfinite

if TYPE_CHECKING:
    from monosemantic.sae.trainconfig import TrainConfig

T = TypeVar("T")


class Batches:
    def __init__(self, store: ActivationStore, hook: str, rows: np.ndarray, batch_size: int, *, seed: int,
                 rank: int = 0, world_size: int = 1, preload_bytes: int = 4 << 30,
                 labels: np.ndarray | None = None) -> None:
        self.store, self.hook, self.rows = store, hook, np.asarray(rows, dtype=np.int64)
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world_size
        self.labels = None if labels is None else torch.from_numpy(np.ascontiguousarray(labels))
        """[n_rows, C] concept labels read with every batch (None: batches are activations only)."""
        self.memory: Tensor | None = None
        if store.n_rows * store.width(hook) * 4 <= preload_bytes:
            self.memory = store.rows(hook, 0, store.n_rows).contiguous()

    @property
    def per_epoch(self) -> int:
        """Batches per epoch for this rank."""
        return (len(self.rows) // self.batch_size) // self.world

    def indices(self, epoch: int, b: int) -> np.ndarray:
        order = self._order(epoch)
        return np.sort(order[b * self.batch_size : (b + 1) * self.batch_size])

    def _order(self, epoch: int) -> np.ndarray:
        if getattr(self, "_cached", (None, None))[0] != epoch:
            perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))
            self._cached = (epoch, self.rows[perm])
        return self._cached[1]

    def read(self, idx: np.ndarray) -> Tensor:
        if self.memory is not None:
            return self.memory.index_select(0, torch.from_numpy(idx))
        return self.store.gather(self.hook, idx)

    def global_batch(self, epoch: int, step_in_epoch: int) -> Tensor:
        """The union of every rank's share of one step (what a single process would see)."""
        first = step_in_epoch * self.world
        idx = np.concatenate([self.indices(epoch, first + r) for r in range(self.world)])
        return self.read(np.sort(idx))

    def read_labelled(self, idx: np.ndarray) -> tuple[Tensor, Tensor | None]:
        """Rows at ``idx`` and their float concept labels (None without labels)."""
        y = None if self.labels is None else self.labels.index_select(0, torch.from_numpy(idx)).float()
        return self.read(idx), y

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor | None]]:
        """This rank's batches of ``epoch`` (rows, labels or None), skipping its first ``start``."""
        ids = [self.indices(epoch, s * self.world + self.rank) for s in range(start, self.per_epoch)]
        if self.memory is not None:
            for idx in ids:
                yield self.read_labelled(idx)
            return
        yield from _prefetch(self.read_labelled, ids)


def _prefetch(read: Callable[[np.ndarray], T], ids: list[np.ndarray]) -> Iterator[T]:
    q: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def work() -> None:
        try:
            for idx in ids:
                if stop.is_set():
                    return
                q.put(read(idx))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put(exc)
        q.put(None)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a worker waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.01)


_NORM_SAMPLE_ROWS = 65_536


def resolve_hook(store: ActivationStore, hook: str | None) -> str:
    """The store's hook named ``hook`` (or a unique suffix of one); the only hook when None."""
    hooks = list(store.hooks)
    if hook is None:
        if len(hooks) != 1:
            raise UserError(f"the store holds several hooks ({', '.join(hooks)}); choose one with --hook")
        return hooks[0]
    if hook in hooks:
        return hook
    matches = [h for h in hooks if h.endswith("." + hook)]
    if len(matches) == 1:
        return matches[0]
    raise UserError(f"the store has no hook {hook!r}; it holds: {', '.join(hooks)}")


def check_finite(x: Tensor, what: str) -> None:
    if (mask := nonfinite(x)) is not None:
        raise UserError(f"{what} contains {int(mask.sum())} NaN or inf values; re-extract the store or drop those rows")


def scale_sample(tc: TrainConfig, store: ActivationStore, hook: str, rows: np.ndarray) -> Tensor:
    """The seeded sample of training rows the input scale (and the WSAE weights) are measured on."""
    rng = np.random.default_rng([tc.seed, 7])
    sample = np.sort(rng.choice(rows, size=min(len(rows), _NORM_SAMPLE_ROWS), replace=False))
    x = store.gather(hook, sample)
    check_finite(x, f"hook {hook!r} of the store")
    return x


def norm_scale(tc: TrainConfig, store: ActivationStore, hook: str, rows: np.ndarray, d_in: int) -> float:
    """The one scalar the inputs are multiplied by (``--input-scaling``), from the seeded row sample."""
    if tc.input_scaling == "none":
        return 1.0
    x = scale_sample(tc, store, hook, rows)
    mean_sq = float(x.double().pow(2).sum(1).mean())
    if mean_sq <= 0:
        raise UserError(f"hook {hook!r} of the store is all zeros; there is nothing to train on")
    target = float(d_in) if tc.input_scaling == "sqrt_d" else 1.0
    return math.sqrt(target / mean_sq)

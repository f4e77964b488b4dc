"""Training batches from a store: seeded per-epoch permutations, a disjoint share per rank, exact resume.

Batch ``b`` of an epoch is rows ``order[b·B:(b+1)·B]`` of a permutation seeded by (seed, epoch) and goes to rank
``b % world_size`` (the store's own convention). Small hooks are read into memory once (a random gather from
memory-mapped shards costs ~100 ms per 4096-row batch, as much as a training step); larger ones are gathered
from the store by a background thread one batch ahead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor


class Batches:
    def __init__(self, store: Any, hook: str, rows: np.ndarray, batch_size: int, *, seed: int, rank: int = 0,
                 world_size: int = 1, preload_bytes: int = 4 << 30) -> None:
        self.store, self.hook, self.rows = store, hook, np.asarray(rows, dtype=np.int64)
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world_size
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
        return self.store.gather(self.hook, idx)  # type: ignore[no-any-return]

    def global_batch(self, epoch: int, step_in_epoch: int) -> Tensor:
        """The union of every rank's share of one step (what a single process would see)."""
        first = step_in_epoch * self.world
        idx = np.concatenate([self.indices(epoch, first + r) for r in range(self.world)])
        return self.read(np.sort(idx))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Tensor]:
        """This rank's batches of ``epoch``, skipping its first ``start``."""
        ids = [self.indices(epoch, s * self.world + self.rank) for s in range(start, self.per_epoch)]
        if self.memory is not None:
            for idx in ids:
                yield self.read(idx)
            return
        yield from _prefetch(self.read, ids)


def _prefetch(read: Any, ids: list[np.ndarray]) -> Iterator[Tensor]:
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

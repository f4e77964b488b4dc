"""A printed summary of a store, for `monosemantic inspect` and the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monosemantic.store.reader import ActivationStore


def summarize(path: str | Path, *, verify: bool = False, sample: int = 20000) -> str:
    store = ActivationStore.open(path, verify=verify)
    m = store.manifest
    size = sum((store.root / s.file).stat().st_size for s in m.shards)
    lines = [
        f"store     {store.root}",
        f"model     {m.model['name']}  ({m.model.get('source', '')})",
        f"weights   sha256 {m.model.get('fingerprint', '')[:16]}",
        f"data      {m.dataset['name']}: {store.n_items:,} items, {store.n_rows:,} rows (tokens={m.tokens}), "
        f"{len(m.shards)} shards, {size / 2**20:,.1f} MiB {m.dtype}",
    ]
    if store.labels is not None:
        counts = np.bincount(store.labels) if store.labels.ndim == 1 else store.labels.sum(0)
        pairs = ", ".join(f"{n} {c}" for n, c in zip(store.label_names, counts, strict=False))
        lines.append(f"labels    {pairs}")
    if store.n_rows == 0:
        # Statistics of nothing are undefined; say so rather than fail (an empty store can come from write_store).
        lines += [f"hook      {hook}: width {store.width(hook)}, no rows" for hook in store.hooks]
        return "\n".join(lines)
    rows = np.random.default_rng(0).choice(store.n_rows, size=min(sample, store.n_rows), replace=False)
    for hook in store.hooks:
        x = store.gather(hook, np.sort(rows))
        norms = x.norm(dim=1)
        lines.append(
            f"hook      {hook}: width {store.width(hook)}, mean |x| {norms.mean():.3g}, max |x_i| "
            f"{x.abs().max():.3g}, mean activation {x.mean():.3g}"
        )
    return "\n".join(lines)

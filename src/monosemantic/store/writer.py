"""Writing a store shard by shard, in a background thread, so the model never waits for the disk.

Each shard holds whole items and is renamed into place only when complete; the manifest, rewritten atomically
after every shard, lists only complete shards. An interrupted extraction therefore resumes from the last shard
in the manifest, and a half-written file is never read as valid.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monosemantic.errors import StoreError
from monosemantic.files import make_readable, publish_folder, write_json
from monosemantic.store.manifest import FORMAT, ITEMS, MANIFEST, VOCAB, Manifest, ShardInfo
from monosemantic.store.reader import ActivationStore, acts_key
from monosemantic.store.shards import DTYPES, open_shard, write_shard

PARTIAL_SUFFIX = ".overwrite-partial"


class StoreWriter:
    """Writes a store shard by shard: `add` buffers whole items' rows (each hook [rows, d]), full shards are
    written in a background thread under a temporary name and renamed when complete, and `close` swaps the
    finished store into place and returns it as an `ActivationStore`. Made by `StoreWriter.open`, which resumes
    an interrupted store with the same settings."""

    def __init__(self, root: Path, manifest: Manifest, final: Path, shard_rows: int) -> None:
        self.root, self.manifest, self.final, self.shard_rows = root, manifest, final, shard_rows
        self._buffer: list[dict[str, torch.Tensor]] = []
        self._buffered_rows = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._pending: Future[None] | None = None

    @classmethod
    def open(
        cls,
        out: str | Path,
        manifest: Manifest,
        *,
        overwrite: bool = False,
        shard_rows: int = 1 << 16,
        records: Iterable[Mapping[str, Any]] = (),
        vocab: list[str] | None = None,
    ) -> StoreWriter:
        """Start a new store at ``out``, or resume the unfinished one there if its settings match.

        A finished store is never touched unless ``overwrite``; even then the new one is built beside it and
        swapped in only once complete.
        """
        final = Path(out)
        root = _build_folder(final, manifest, overwrite)
        resumed = cls._resume(root, manifest, scratch=root != final)
        if resumed is None:
            _start(root, final, manifest, records, vocab)
            resumed = manifest
        return cls(root, resumed, final, shard_rows)

    @staticmethod
    def _resume(root: Path, manifest: Manifest, *, scratch: bool = False) -> Manifest | None:
        """The unfinished manifest at ``root`` to continue, trimmed to its intact shards; None to start afresh.

        ``scratch`` marks our own temporary folder for an overwrite, which is simply redone when unreadable.
        """
        if not (root / MANIFEST).is_file():
            return None
        try:
            old = Manifest.load(root)
        except StoreError:
            if scratch:
                return None
            raise
        if old.complete or old.settings != manifest.settings:
            return None
        intact: list[ShardInfo] = []
        for shard in old.shards:
            try:
                open_shard(root / shard.file)
            except StoreError:
                # This shard and every later one are redone: shards hold consecutive items.
                break
            intact.append(shard)
        if len(intact) < len(old.shards):
            old.shards = intact
            old.items_done = intact[-1].items[1] if intact else 0
            old.n_rows = sum(s.rows for s in intact)
            old.save(root)
        listed = {s.file for s in old.shards}
        for path in root.iterdir():  # leftovers of the interrupted run: never trusted, always redone
            if (path.name.startswith(".") and path.name.endswith(".tmp")) or (
                path.name.startswith("shard-") and path.name not in listed
            ):
                path.unlink()
        return old

    @property
    def items_done(self) -> int:
        return self.manifest.items_done + self._buffered_items()

    def _buffered_items(self) -> int:
        return int(self._buffer[-1]["item"][-1]) + 1 - self.manifest.items_done if self._buffer else 0

    def add(
        self,
        acts: Mapping[str, torch.Tensor],
        item: torch.Tensor,
        position: torch.Tensor,
        token: torch.Tensor | None = None,
    ) -> None:
        """Buffer rows of whole items: ``acts`` hook -> [rows, d], ``item``, ``position`` (and ``token``) [rows];
        a shard is written once ``shard_rows`` rows are buffered."""
        dtype = DTYPES[self.manifest.dtype]
        entry = {acts_key(h): a.to(dtype) for h, a in acts.items()}
        entry["item"] = item.to(torch.int64)
        entry["position"] = position.to(torch.int32)
        if token is not None:
            entry["token"] = token.to(torch.int32)
        self._buffer.append(entry)
        self._buffered_rows += len(item)
        if self._buffered_rows >= self.shard_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        tensors = {k: torch.cat([b[k] for b in self._buffer]) for k in self._buffer[0]}
        self._buffer, self._buffered_rows = [], 0
        if self._pending is not None:
            self._pending.result()
        self._pending = self._pool.submit(self._write, tensors)

    def _write(self, tensors: dict[str, torch.Tensor]) -> None:
        m = self.manifest
        name = f"shard-{len(m.shards):05d}.safetensors"
        digest = write_shard(self.root / name, tensors)
        first, last = m.items_done, int(tensors["item"][-1]) + 1
        rows = len(tensors["item"])
        m.shards.append(ShardInfo(file=name, rows=rows, items=[first, last], sha256=digest))
        m.n_rows += rows
        m.items_done = last
        m.save(self.root)

    def close(self) -> ActivationStore:
        """Write what is buffered, mark the store complete and (for an overwrite) swap it into place."""
        self._flush()
        if self._pending is not None:
            self._pending.result()
        self._pool.shutdown()
        self.manifest.complete = True
        self.manifest.save(self.root)
        if self.root != self.final:
            publish_folder(self.root, self.final)
        else:
            make_readable(self.final)
        return ActivationStore.open(self.final)

    def abort(self) -> None:
        """Stop the writer thread, keeping complete shards for a later resume."""
        try:
            if self._pending is not None:
                self._pending.result()
        finally:
            self._pool.shutdown()


def _build_folder(final: Path, manifest: Manifest, overwrite: bool) -> Path:
    """Where to build the store: ``final`` itself when it is new, empty or an unfinished store with the same
    settings; with ``overwrite``, a scratch folder beside a store that is finished, damaged or set up otherwise."""
    if final.exists() and not final.is_dir():
        raise StoreError(f"--out {final} is a file; give a folder path (new or empty) for the store")
    if not final.exists() or not any(final.iterdir()):
        return final
    if not (final / MANIFEST).is_file():
        raise StoreError(f"{final} exists and is not an activation store; choose another --out")
    old = _earlier(final, overwrite)
    if old is not None and not old.complete and old.settings == manifest.settings:
        return final
    if not overwrite:
        state = "a finished store"
        if old is not None and not old.complete:
            keys = sorted(set(old.settings) | set(manifest.settings))
            differ = [k for k in keys if old.settings.get(k) != manifest.settings.get(k)]
            state = f"an unfinished store with other settings ({', '.join(differ)} differ)"
        raise StoreError(f"{final} already holds {state}; pass --overwrite to replace it")
    return final.with_name(final.name + PARTIAL_SUFFIX)


def _earlier(final: Path, overwrite: bool) -> Manifest | None:
    """The manifest of the store at ``final``; None for a damaged one that ``overwrite`` may replace."""
    try:
        return Manifest.load(final)
    except StoreError:
        # A damaged manifest still marks the folder as a store, so --overwrite may replace it; a manifest of
        # some other tool does not.
        if not _ours(final / MANIFEST):
            raise StoreError(
                f"{final / MANIFEST} is not an activation-store manifest, so {final} is not a store; "
                "choose another --out"
            ) from None
        if not overwrite:
            raise
        return None


def _start(root: Path, final: Path, manifest: Manifest, records: Iterable[Mapping[str, Any]],
           vocab: list[str] | None) -> None:
    """A fresh store at ``root``: the item records, the vocabulary and a manifest with no shards yet."""
    try:
        if root.exists() and root != final:
            shutil.rmtree(root)
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise StoreError(f"cannot create the store folder {root} ({why}); choose another --out") from None
    manifest.created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with open(root / f".{ITEMS}.tmp", "w") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    os.replace(root / f".{ITEMS}.tmp", root / ITEMS)
    if vocab is not None:
        write_json(root / VOCAB, vocab)
    manifest.save(root)


def _ours(path: Path) -> bool:
    """Whether a manifest that failed to load was written by us: unreadable JSON, or our format marker."""
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        return True
    return isinstance(data, dict) and data.get("format") == FORMAT


def write_store(
    path: str | Path,
    acts: Mapping[str, np.ndarray | torch.Tensor],
    *,
    item_index: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    label_names: list[str] | None = None,
    items: Sequence[Mapping[str, Any]] | None = None,
    model: str = "synthetic",
    dataset: str = "synthetic",
    tokens: str = "all",
    dtype: str = "float32",
    shard_rows: int = 1 << 16,
    overwrite: bool = False,
) -> ActivationStore:
    """Write in-memory activations (hook -> [rows, d]) as a store (tests, or activations computed elsewhere);
    ``item_index`` [rows] names each row's item (default: one item per row), ``labels`` [items] or
    [items, C]."""
    tensors = {h: torch.as_tensor(np.asarray(a), dtype=torch.float32) for h, a in acts.items()}
    n_rows = len(next(iter(tensors.values())))
    item_index = np.arange(n_rows) if item_index is None else np.asarray(item_index, dtype=np.int64)
    n_items = int(item_index.max()) + 1 if n_rows else 0
    if items is None:
        items = [{"kind": "vector"} for _ in range(n_items)]
    if labels is not None:
        items = [{**rec, "label": np.asarray(labels[i]).tolist()} for i, rec in enumerate(items)]
        label_names = label_names or [str(c) for c in range(int(np.max(labels)) + 1)]
    manifest = Manifest(
        model={"name": model, "source": model, "fingerprint": "", "modality": "vector"},
        dataset={"name": dataset, "source": dataset, "n_items": n_items, "label_names": label_names or []},
        hooks={h: {"width": int(t.shape[1])} for h, t in tensors.items()},
        tokens=tokens,
        dtype=dtype,
        settings={"model": model, "dataset": dataset, "hooks": sorted(tensors), "n_rows": n_rows},
    )
    writer = StoreWriter.open(path, manifest, overwrite=overwrite, shard_rows=shard_rows, records=items)
    positions = _positions(item_index)
    bounds = np.flatnonzero(np.diff(item_index)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [n_rows]])
    step = max(1, shard_rows * len(starts) // max(n_rows, 1))
    for a in range(0, len(starts), step):
        lo, hi = int(starts[a]), int(ends[min(a + step, len(starts)) - 1])
        if hi == lo:  # no rows at all: a shard of nothing has no last item to record
            continue
        writer.add(
            {h: t[lo:hi] for h, t in tensors.items()},
            torch.from_numpy(item_index[lo:hi]),
            torch.from_numpy(positions[lo:hi]),
        )
    return writer.close()


def _positions(item_index: np.ndarray) -> np.ndarray:
    """Position of each row inside its item (rows of an item are contiguous)."""
    if len(item_index) == 0:
        return np.empty(0, dtype=np.int32)
    start = np.r_[0, np.flatnonzero(np.diff(item_index)) + 1]
    lengths = np.diff(np.r_[start, len(item_index)])
    return (np.arange(len(item_index)) - np.repeat(start, lengths)).astype(np.int32)

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from monosemantic.errors import StoreError
from monosemantic.store import ActivationStore, pool_by_item, write_store
from monosemantic.store.manifest import Manifest


def _data(n_items: int = 60, per_item: int = 5, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    item = np.repeat(np.arange(n_items), per_item)
    return rng.normal(size=(len(item), d)).astype(np.float32), item


def test_roundtrip_slices_gathers_and_items(tmp_path: Path) -> None:
    x, item = _data()
    labels = np.arange(60) % 4
    store = write_store(tmp_path / "s", {"h": x, "g": 2 * x}, item_index=item, labels=labels, shard_rows=40)
    assert len(store.manifest.shards) > 3
    reopened = ActivationStore.open(tmp_path / "s", verify=True)
    assert reopened.n_rows == 300 and reopened.n_items == 60 and reopened.width("h") == 8
    np.testing.assert_allclose(reopened.rows("h").numpy(), x)
    np.testing.assert_allclose(reopened.rows("g", 37, 123).numpy(), 2 * x[37:123])
    idx = np.array([299, 0, 41, 40, 150])
    np.testing.assert_allclose(reopened.gather("h", idx).numpy(), x[idx])
    np.testing.assert_array_equal(reopened.item_index, item)
    np.testing.assert_array_equal(reopened.positions, np.tile(np.arange(5), 60))
    np.testing.assert_array_equal(reopened.labels, labels)


def test_bfloat16_store_reads_back_as_float32(tmp_path: Path) -> None:
    x, item = _data()
    store = write_store(tmp_path / "s", {"h": x}, item_index=item, dtype="bfloat16")
    expected = torch.from_numpy(x).bfloat16().float()
    assert torch.equal(store.rows("h"), expected)


def test_batches_are_seeded_disjoint_across_ranks_and_resumable(tmp_path: Path) -> None:
    x = np.arange(200, dtype=np.float32)[:, None].repeat(3, 1)
    store = write_store(tmp_path / "s", {"h": x}, shard_rows=64)
    first = [b[:, 0].long().tolist() for b in store.batches("h", 16, seed=3)]
    again = [b[:, 0].long().tolist() for b in store.batches("h", 16, seed=3)]
    other_epoch = [b[:, 0].long().tolist() for b in store.batches("h", 16, seed=3, epoch=1)]
    assert first == again and first != other_epoch
    assert len(first) == 12 and len({v for b in first for v in b}) == 192
    r0 = [b[:, 0].long().tolist() for b in store.batches("h", 16, seed=3, rank=0, world_size=2)]
    r1 = [b[:, 0].long().tolist() for b in store.batches("h", 16, seed=3, rank=1, world_size=2)]
    assert r0 == first[0::2] and r1 == first[1::2]
    assert not {v for b in r0 for v in b} & {v for b in r1 for v in b}
    resumed = [b[:, 0].long().tolist() for b in store.batches("h", 16, seed=3, rank=1, world_size=2, start=2)]
    assert resumed == r1[2:]


def test_split_is_by_item(tmp_path: Path) -> None:
    x, item = _data()
    store = write_store(tmp_path / "s", {"h": x}, item_index=item)
    train, held = store.split(holdout=0.2, seed=0)
    assert len(train) + len(held) == store.n_rows
    assert not set(item[train]) & set(item[held])
    assert len(set(item[held])) == 12


def test_pool_by_item_max_and_mean() -> None:
    values = torch.tensor([[1.0, -5.0], [3.0, -1.0], [2.0, 0.0]])
    item = np.array([0, 0, 1])
    assert torch.equal(pool_by_item(values, item, 2), torch.tensor([[3.0, -1.0], [2.0, 0.0]]))
    assert torch.allclose(pool_by_item(values, item, 2, "mean"), torch.tensor([[2.0, -3.0], [2.0, 0.0]]))


def _first_shard(root: Path) -> Path:
    return root / Manifest.load(root).shards[0].file


def test_corrupt_shard_names_the_file(tmp_path: Path) -> None:
    x, item = _data()
    write_store(tmp_path / "s", {"h": x}, item_index=item)
    shard = _first_shard(tmp_path / "s")
    raw = bytearray(shard.read_bytes())
    raw[0:8] = (10**12).to_bytes(8, "little")
    shard.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=str(shard)):
        ActivationStore.open(tmp_path / "s")


def test_truncated_shard_names_the_file(tmp_path: Path) -> None:
    x, item = _data()
    write_store(tmp_path / "s", {"h": x}, item_index=item)
    shard = _first_shard(tmp_path / "s")
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(StoreError, match=rf"{shard}.*truncated"):
        ActivationStore.open(tmp_path / "s")


def test_flipped_bytes_are_caught_by_verify(tmp_path: Path) -> None:
    x, item = _data()
    write_store(tmp_path / "s", {"h": x}, item_index=item)
    shard = _first_shard(tmp_path / "s")
    raw = bytearray(shard.read_bytes())
    raw[-5] ^= 0xFF
    shard.write_bytes(bytes(raw))
    ActivationStore.open(tmp_path / "s")  # sizes still match
    with pytest.raises(StoreError, match=rf"{shard}.*sha256"):
        ActivationStore.open(tmp_path / "s", verify=True)


def test_manifest_that_does_not_match_its_files(tmp_path: Path) -> None:
    x, item = _data()
    write_store(tmp_path / "s", {"h": x}, item_index=item)
    m = Manifest.load(tmp_path / "s")
    m.hooks["h"]["width"] = 9
    m.save(tmp_path / "s")
    with pytest.raises(StoreError, match=r"shard-00000\.safetensors does not match the manifest"):
        ActivationStore.open(tmp_path / "s")


def test_missing_store_and_existing_store_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no activation store"):
        ActivationStore.open(tmp_path / "nope")
    x, item = _data()
    write_store(tmp_path / "s", {"h": x}, item_index=item)
    with pytest.raises(StoreError, match="--overwrite"):
        write_store(tmp_path / "s", {"h": 2 * x}, item_index=item)
    np.testing.assert_allclose(ActivationStore.open(tmp_path / "s").rows("h").numpy(), x)
    replaced = write_store(tmp_path / "s", {"h": 2 * x}, item_index=item, overwrite=True)
    np.testing.assert_allclose(replaced.rows("h").numpy(), 2 * x)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not an activation store"):
        write_store(tmp_path / "other", {"h": x}, item_index=item, overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"

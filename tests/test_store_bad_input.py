"""Bad input around stores: damaged stores say how to recover, bad options and manifests fail in one line,
recorded data references survive a change of directory, and nothing the user has is lost."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from monosemantic.cli import main
from monosemantic.errors import StoreError, UserError
from monosemantic.sources import hf, load_dataset, load_model
from monosemantic.sources.datasets import fingerprint
from monosemantic.store import ActivationStore, StoreWriter, write_store
from monosemantic.store.manifest import MANIFEST, Manifest
from monosemantic.store.summary import summarize

EXTRACT = ["extract", "--model", "minilm", "--layer", "encoder.layer.1", "--data", "bbc-news"]


def _store(path: Path, scale: float = 1.0, **kw: Any) -> ActivationStore:
    x = scale * np.arange(24, dtype=np.float32).reshape(8, 3)
    return write_store(path, {"h": x}, item_index=np.repeat(np.arange(4), 2), shard_rows=2, **kw)


def _one_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# ---------------------------------------------------------------- 1: recovery advice and --overwrite


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_damaged_finished_store_advises_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    store = _store(tmp_path / "s")
    shard = store.root / store.manifest.shards[1].file
    if damage == "delete":
        shard.unlink()
    else:
        shard.write_bytes(shard.read_bytes()[:100])
    assert main(["inspect", str(tmp_path / "s")]) == 2
    err = _one_line(capsys, str(shard), "--overwrite")
    assert "resume" not in err
    # ... and the advice works: without --overwrite it is refused, with it the store is rebuilt.
    with pytest.raises(StoreError, match="--overwrite"):
        _store(tmp_path / "s")
    rebuilt = _store(tmp_path / "s", overwrite=True)
    assert ActivationStore.open(rebuilt.root, verify=True).n_rows == 8


def test_overwrite_replaces_a_store_whose_manifest_is_not_json(tmp_path: Path) -> None:
    _store(tmp_path / "s")
    (tmp_path / "s" / MANIFEST).write_text('{"format": broken')
    with pytest.raises(StoreError, match=r"not valid JSON.*--overwrite"):
        _store(tmp_path / "s", scale=2.0)
    store = _store(tmp_path / "s", scale=2.0, overwrite=True)
    assert store.rows("h")[1, 0].item() == 6.0


def test_overwrite_never_replaces_a_folder_that_is_not_a_store(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not an activation store"):
        _store(mine, overwrite=True)
    (mine / MANIFEST).write_text(json.dumps({"format": "someone-else", "files": []}))
    with pytest.raises(StoreError, match="is not a store; choose another --out"):
        _store(mine, overwrite=True)
    assert sorted(p.name for p in mine.iterdir()) == [MANIFEST, "notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep me"


def _unfinished(path: Path) -> Manifest:
    """An interrupted extraction: four shards of one item each, never closed."""
    manifest = Manifest(
        model={"name": "m", "source": "m", "fingerprint": "", "modality": "vector"},
        dataset={"name": "d", "source": "d", "n_items": 6, "label_names": []},
        hooks={"h": {"width": 3}},
        tokens="all",
        dtype="float32",
        settings={"run": 1},
    )
    writer = StoreWriter.open(path, manifest, shard_rows=2, records=[{"kind": "vector"}] * 6)
    for i in range(4):
        writer.add({"h": torch.full((2, 3), float(i))}, torch.tensor([i, i]), torch.tensor([0, 1]))
    writer.abort()
    return manifest


def test_unfinished_store_with_a_damaged_shard_resumes_from_the_intact_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _unfinished(tmp_path / "s")
    loaded = Manifest.load(tmp_path / "s")
    assert len(loaded.shards) == 4 and not loaded.complete
    shard = tmp_path / "s" / loaded.shards[1].file
    shard.write_bytes(b"\x00" * 3)
    with pytest.raises(StoreError, match="resumes"):
        ActivationStore.open(tmp_path / "s", allow_incomplete=True)
    writer = StoreWriter.open(tmp_path / "s", manifest, shard_rows=2)
    assert writer.items_done == 1 and [s.file for s in writer.manifest.shards] == [loaded.shards[0].file]
    for i in range(1, 6):
        writer.add({"h": torch.full((2, 3), float(i))}, torch.tensor([i, i]), torch.tensor([0, 1]))
    store = writer.close()
    assert store.n_items == 6 and store.rows("h")[::2, 0].tolist() == [0, 1, 2, 3, 4, 5]


def test_unfinished_store_with_other_settings_names_them(tmp_path: Path) -> None:
    import dataclasses

    manifest = _unfinished(tmp_path / "s")
    changed = dataclasses.replace(manifest, settings={"run": 1, "data_fingerprint": {"size": 3, "mtime_ns": 9}})
    with pytest.raises(StoreError, match=r"other settings \(data_fingerprint differ\); pass --overwrite"):
        StoreWriter.open(tmp_path / "s", changed, shard_rows=2)


# ---------------------------------------------------------------- 2 and 3: --out and option checks


def test_extract_out_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "results.txt"
    target.write_text("precious")
    assert main([*EXTRACT, "--max-items", "2", "--out", str(target)]) == 2
    _one_line(capsys, "is a file", "folder")
    assert target.read_text() == "precious"
    with pytest.raises(StoreError, match="is a file"):
        _store(target)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-items", "-5"),
        ("--max-items", "0"),
        ("--shard-rows", "0"),
        ("--max-length", "0"),
        ("--image-size", "0"),
        ("--batch-size", "-1"),
    ],
)
def test_extract_rejects_non_positive_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    assert main([*EXTRACT, option, value, "--out", str(tmp_path / "out")]) == 2
    _one_line(capsys, f"{option} must be at least 1", f"got {value}")
    assert not (tmp_path / "out").exists()


def test_inspect_an_empty_store(tmp_path: Path) -> None:
    write_store(tmp_path / "s", {"h": np.zeros((0, 3), np.float32)})
    text = summarize(tmp_path / "s")
    assert "0 items, 0 rows" in text and "no rows" in text


# ---------------------------------------------------------------- 4: hand-edited manifests


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(hooks=[]), "'hooks'"),
        (lambda d: d["model"].pop("name"), "'model.name'"),
        (lambda d: d.update(items_done=80), "'items_done'"),
        (lambda d: d["shards"][0].update(rows="many"), "'shards[0].rows'"),
        (lambda d: d.update(n_rows=5), "'n_rows'"),
        (lambda d: d["dataset"].update(n_items=2), "'dataset.n_items'"),
        (lambda d: d.update(dtype="int8"), "'dtype'"),
        (lambda d: d["hooks"]["h"].update(width=0), "'hooks.h'"),
        (lambda d: d.update(complete="yes"), "'complete'"),
        (lambda d: d["shards"][1].update(items=[3, 4]), "'shards[1].items'"),
        (lambda d: d["shards"][2].pop("sha256"), "'shards[2]'"),
        (lambda d: d.pop("tokens"), "'tokens'"),
    ],
)
def test_manifest_fields_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, field: str) -> None:
    _store(tmp_path / "s")
    path = tmp_path / "s" / MANIFEST
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    assert main(["inspect", str(tmp_path / "s")]) == 2
    _one_line(capsys, str(path), field)


# ---------------------------------------------------------------- 5 and 7: extracted stores


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A two-item extraction of a local JSONL file named by a relative path, under umask 022."""
    root = tmp_path_factory.mktemp("extract")
    (root / "cfg").mkdir()
    data = root / "cfg" / "notes.jsonl"
    data.write_text('{"text": "a cat sat"}\n{"text": "stocks fell"}\n{"text": "rain"}\n')
    old_cwd, old_mask = Path.cwd(), os.umask(0o022)
    os.chdir(root)
    try:
        rc = main(
            [
                *("extract", "--model", "minilm", "--layer", "encoder.layer.0", "--data", "cfg/notes.jsonl"),
                *("--max-items", "2", "--max-length", "8", "--out", "s"),
            ]
        )
    finally:
        os.chdir(old_cwd)
        os.umask(old_mask)
    assert rc == 0
    yield root / "s", data


def test_local_data_is_recorded_absolute_with_a_fingerprint(extracted: tuple[Path, Path]) -> None:
    store_path, data = extracted
    m = Manifest.load(store_path)
    assert m.settings["data"] == str(data) and m.dataset["ref"] == str(data)
    st = data.stat()
    assert m.dataset["fingerprint"] == {"size": st.st_size, "mtime_ns": st.st_mtime_ns} == fingerprint(str(data))
    # Another working directory finds the data again through the recorded reference.
    assert load_dataset(m.settings["data"]).load(0, 2) == ["a cat sat", "stocks fell"]


def test_missing_recorded_data_is_named_not_unknown(tmp_path: Path) -> None:
    gone = str(tmp_path / "cfg" / "notes.jsonl")
    with pytest.raises(UserError, match=r"recorded in the store .*s no longer exists") as info:
        load_dataset(gone, recorded_in=str(tmp_path / "s"))
    assert "unknown dataset" not in str(info.value)
    with pytest.raises(UserError, match=r"'cfg/notes.jsonl' does not exist"):
        load_dataset("cfg/notes.jsonl")
    with pytest.raises(UserError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


def test_fingerprint_of_bundled_and_folders(tmp_path: Path) -> None:
    assert fingerprint("bbc-news") is None
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"12345")
    before = fingerprint(str(tmp_path))
    assert before is not None and before["files"] == 1 and before["size"] == 5
    time.sleep(0.01)
    (tmp_path / "a" / "x.png").rename(tmp_path / "a" / "y.png")
    after = fingerprint(str(tmp_path))
    assert after is not None and after["mtime_ns"] > before["mtime_ns"]
    with pytest.raises(UserError, match="does not exist"):
        fingerprint(str(tmp_path / "nope.csv"))


def test_finished_store_files_are_readable_by_others(extracted: tuple[Path, Path], tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        _store(tmp_path / "w")
        _store(tmp_path / "w", scale=2.0, overwrite=True)
    finally:
        os.umask(old)
    for root in (extracted[0], tmp_path / "w"):
        assert stat.S_IMODE(root.stat().st_mode) == 0o755
        for f in root.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


# ---------------------------------------------------------------- 6: Hugging Face ids


def test_plain_hub_id_is_tried_as_a_hub_model_and_fails_fast_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    t0 = time.perf_counter()
    with pytest.raises(UserError) as info:
        load_model("bert-base-uncased")
    msg = str(info.value)
    assert "'bert-base-uncased'" in msg and "HF_HOME" in msg and "Hugging Face model that could be loaded" in msg
    # With the offline variables cleared, the hub is probed (the test guard refuses the connection) and the
    # message says it cannot be reached, quickly, instead of retrying.
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    with pytest.raises(UserError, match=r"'org-x/model-y'.*cannot be reached.*HF_HOME"):
        load_model("org-x/model-y")
    assert time.perf_counter() - t0 < 10


def test_hub_models_load_from_the_cache_before_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    cached: set[str] = {"gpt2"}

    def fake_load(model_id: str, local: bool, max_length: int, image_size: int | None) -> Any:
        calls.append(local)
        if local and model_id not in cached:
            raise OSError("not cached")
        return f"model {model_id}"

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setattr(hf, "_load", fake_load)
    monkeypatch.setattr(hf, "_hub_reachable", lambda timeout=3.0: True)
    assert load_model("gpt2") == "model gpt2" and calls == [True]
    calls.clear()
    assert load_model("org/new") == "model org/new" and calls == [True, False]


def test_an_unreadable_image_in_a_folder_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    folder = tmp_path / "imgs" / "cats"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((32, 32, 3), 120, dtype=np.uint8)).save(folder / "a.png")
    (folder / "b.png").write_text("this is not a picture")
    args = ["extract", "--model", "mobilenet_v2", "--layer", "features.2", "--data", str(tmp_path / "imgs"),
            "--tokens", "mean", "--batch-size", "1", "--out", str(tmp_path / "store")]
    assert main(args) == 2
    _one_line(capsys, "cannot read image", str((folder / "b.png").resolve()), "remove or replace")


def test_extract_on_a_device_this_machine_lacks_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main([*EXTRACT, "--out", str(tmp_path / "s"), "--device", "cuda"]) == 2
    _one_line(capsys, "--device cuda: CUDA is not available here", "--device cpu")
    assert not (tmp_path / "s").exists()

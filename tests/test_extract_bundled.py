"""Extraction with the real bundled models and data, checked against independent forward passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import monosemantic.store.extract as ex
from monosemantic import log
from monosemantic.experiments.extract import ExtractConfig, ExtractedHook, run
from monosemantic.sources import load_dataset, load_model
from monosemantic.store import ActivationStore

pytestmark = pytest.mark.slow


def extract(cfg: ExtractConfig) -> ActivationStore:
    with log.quiet():
        return run(cfg).open()


def test_minilm_all_tokens_match_hidden_states(tmp_path: Path) -> None:
    with log.quiet():
        result = run(
            ExtractConfig(
                model="minilm",
                layers=["encoder.layer.3"],
                data="bbc-news",
                out=tmp_path / "s",
                max_items=12,
                batch_size=5,
                max_length=32,
            ),
        )
    store = result.open()
    # the command prints the store as a reader shows it
    assert result.summary() == [repr(store)] and result.store == tmp_path / "s"
    assert (result.items, result.rows) == (store.n_items, store.n_rows)
    assert result.hooks == (ExtractedHook("encoder.layer.3", 384),)
    assert store.n_items == 12 and store.width("encoder.layer.3") == 384
    assert store.label_names == ["business", "entertainment", "politics", "sports", "tech"]
    model = load_model("minilm", max_length=32)
    texts = load_dataset("bbc-news").load(0, 12)
    with torch.inference_mode():
        enc = model.tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
        hs = model.module(**enc, output_hidden_states=True).hidden_states[4]  # [0] is the embedding output
    expected = hs[enc["attention_mask"].bool()]
    torch.testing.assert_close(store.rows("encoder.layer.3"), expected, atol=1e-4, rtol=1e-4)
    assert store.item_tokens(0)[0] == "[CLS]" and len(store.item_tokens(0)) == 32
    assert store.items[3]["text"] == texts[3]


def test_mobilenet_mean_pooled_matches_direct_features(tmp_path: Path) -> None:
    store = extract(
        ExtractConfig(
            model="mobilenet_v2",
            layers=["features.13", "features.6"],
            data="mnist-5k",
            out=tmp_path / "s",
            tokens="mean",
            max_items=20,
        ),
    )
    assert store.n_rows == 20 and store.width("features.13") == 96 and store.width("features.6") == 32
    model = load_model("mobilenet_v2", image_size=96)
    images = load_dataset("mnist-5k").load(0, 20)
    with torch.inference_mode():
        x = model.prepare(images).inputs["pixel_values"]
        direct = model.module.features[:14](x).mean(dim=(2, 3))
    torch.testing.assert_close(store.rows("features.13"), direct, atol=1e-4, rtol=1e-4)
    assert store.items[0]["ref"] == {"dataset": "mnist-5k", "index": 0}
    np.testing.assert_array_equal(store.labels, load_dataset("mnist-5k").labels[:20])


def test_efficientnet_on_digits_and_embeddings(tmp_path: Path) -> None:
    store = extract(
        ExtractConfig(
            model="efficientnet_lite0",
            layers=["_blocks.5"],
            data="digits",
            out=tmp_path / "s",
            tokens="max",
            max_items=8,
        ),
    )
    assert store.n_rows == 8 and np.isfinite(store.rows(None).numpy()).all()
    emb = load_model("efficientnet_lite0", image_size=96).embed_items(load_dataset("digits").load(0, 8))
    assert emb.shape == (8, 1280)


def test_smollm2_residual_stream(tmp_path: Path) -> None:
    store = extract(
        ExtractConfig(
            model="smollm2", layers=["model.layers.15"], data="bbc-news", out=tmp_path / "s", max_items=3, max_length=16
        ),
    )
    assert store.width("model.layers.15") == 576 and store.n_rows == 48
    assert store.positions.max() == 15


def test_interrupted_extraction_resumes_to_the_same_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = dict(
        model="minilm",
        layers=["encoder.layer.1"],
        data="bbc-news",
        max_items=24,
        batch_size=4,
        max_length=16,
        shard_rows=40,
    )
    whole = extract(ExtractConfig(out=tmp_path / "whole", **cfg))

    real, calls = ex.run_captured, {"n": 0}

    def dying(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 6:  # the probe, then 4 batches, then the "kill"
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ex, "run_captured", dying)
    with pytest.raises(KeyboardInterrupt):
        extract(ExtractConfig(out=tmp_path / "cut", **cfg))
    with pytest.raises(Exception, match="unfinished extraction"):
        ActivationStore.open(tmp_path / "cut")
    (tmp_path / "cut" / "shard-00099.safetensors").write_bytes(b"half a shard")  # stray partial file
    monkeypatch.setattr(ex, "run_captured", real)
    resumed = extract(ExtractConfig(out=tmp_path / "cut", **cfg))
    assert not (tmp_path / "cut" / "shard-00099.safetensors").exists()
    assert len(resumed.manifest.shards) == len(whole.manifest.shards)
    torch.testing.assert_close(resumed.rows(None), whole.rows(None))
    np.testing.assert_array_equal(resumed.item_index, whole.item_index)


def test_fashion_mnist_when_installed() -> None:
    import shutil
    import subprocess

    installed = (
        shutil.which("dpkg")
        and not subprocess.run(["dpkg", "-s", "dataset-fashion-mnist"], capture_output=True).returncode
    )
    if not installed:
        pytest.skip("Debian package dataset-fashion-mnist is not installed (make test installs it as root)")
    ds = load_dataset("fashion-mnist")
    assert len(ds) == 70000 and ds.native_size == 28 and ds.label_names[9] == "boot"
    assert np.bincount(ds.labels).tolist() == [7000] * 10

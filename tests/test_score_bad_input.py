"""`monosemantic score` on bad input: one-line errors, and nothing the user already has is lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from monosemantic import log
from monosemantic.cli import main
from monosemantic.errors import UserError
from monosemantic.experiments import score as scoring
from monosemantic.experiments.score import ScoreConfig, ScoreResult
from monosemantic.sae import SAE, SAEConfig
from monosemantic.store import ActivationStore, write_store

N_ITEMS, PER_ITEM, D = 40, 2, 6
SHAPE_HINT = "'embeddings' tensor of shape [n_items, dim]"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny two-class store (2 rows per item), an untrained TopK SAE on it, and precomputed embeddings."""
    root = tmp_path_factory.mktemp("score_bad")
    rng = np.random.default_rng(0)
    labels = np.arange(N_ITEMS) % 2
    rows = rng.normal(size=(N_ITEMS * PER_ITEM, D)).astype(np.float32)
    write_store(root / "store", {"h": rows}, item_index=np.repeat(np.arange(N_ITEMS), PER_ITEM), labels=labels)
    torch.manual_seed(0)
    SAE.create(SAEConfig(d_in=D, d_sae=12, architecture="topk", k=2)).save(root / "sae")
    save_file({"embeddings": torch.randn(N_ITEMS, 4)}, str(root / "emb.safetensors"))
    return {"root": root, "store": root / "store", "sae": root / "sae", "emb": root / "emb.safetensors"}


def score(cfg: ScoreConfig) -> ScoreResult:
    """The score experiment without its progress bar."""
    with log.quiet():
        return scoring.run(cfg)


def _cfg(env: dict[str, Path], out: Path, **kw: Any) -> ScoreConfig:
    return ScoreConfig(**{"acts": env["store"], "sae": [env["sae"]], "embeddings": env["emb"], "out": out, **kw})


def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str], command: str = "score") -> str:
    """Run the CLI, check the project rule (exit 2, one line, no traceback) and return that line."""
    rc = main([command, *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"monosemantic {command}: error:"), err
    return last


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["store", "inside_store", "sae"])
def test_out_never_replaces_an_input(
    env: dict[str, Path], where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = {"store": env["store"], "inside_store": env["store"] / "scores", "sae": env["sae"]}[where]
    before = _snapshot(env["store"]), _snapshot(env["sae"])
    args = ["--acts", str(env["store"]), "--sae", str(env["sae"]), "--embeddings", str(env["emb"]),
            "--out", str(out), "--overwrite"]
    assert "would overwrite the input" in _cli_error(args, capsys)
    assert (_snapshot(env["store"]), _snapshot(env["sae"])) == before
    ActivationStore.open(env["store"])


def test_out_may_not_hold_the_embeddings(env: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "scores"
    score(_cfg(env, out))
    emb = out / "emb.safetensors"
    save_file({"embeddings": torch.randn(N_ITEMS, 4)}, str(emb))
    with pytest.raises(UserError, match="would overwrite the input"):
        score(_cfg(env, out, overwrite=True, embeddings=emb))
    assert emb.is_file()


def test_out_is_a_file(env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    args = ["--acts", str(env["store"]), "--sae", str(env["sae"]), "--embeddings", str(env["emb"]),
            "--out", str(target)]
    assert "is a file; --out needs a folder" in _cli_error(args, capsys)
    assert target.read_text() == "mine"


def test_overwrite_replaces_only_an_earlier_score(env: dict[str, Path], tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match=r"not a score folder .*scores.json"):
        score(_cfg(env, foreign, overwrite=True))
    assert (foreign / "notes.txt").read_text() == "keep"

    out = tmp_path / "scores"
    score(_cfg(env, out))
    (out / "stale.txt").write_text("old")
    score(_cfg(env, out, overwrite=True))
    assert (out / "scores.json").is_file() and not (out / "stale.txt").exists()


def test_failed_write_keeps_earlier_result_and_leaves_no_temp(
    env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "scores"
    score(_cfg(env, out))
    before = _snapshot(out)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scoring, "save_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        score(_cfg(env, out, overwrite=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores"]
    assert _snapshot(out) == before


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"chunk_rows": 0}, "--chunk-rows must be a positive number"),
        ({"chunk_rows": -5}, "--chunk-rows must be a positive number"),
        ({"fms_p": [0]}, "--fms-p takes positive whole numbers"),
        ({"fms_p": [1, -2]}, "--fms-p takes positive whole numbers"),
        ({"fms_p": []}, "--fms-p takes positive whole numbers"),
    ],
)
def test_bad_numbers_fail_before_any_work(
    env: dict[str, Path], tmp_path: Path, kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        score(_cfg(env, tmp_path / "o", **kw))
    assert list(tmp_path.iterdir()) == []


def test_bad_numbers_on_the_command_line(env: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--acts", str(env["store"]), "--sae", str(env["sae"]), "--embeddings", str(env["emb"]),
            "--out", str(tmp_path / "o")]
    assert "got 0" in _cli_error([*base, "--chunk-rows", "0"], capsys)
    assert "got 0" in _cli_error([*base, "--fms-p", "0"], capsys)


def _bad_embeddings(kind: str, folder: Path) -> tuple[Path, str]:
    path = folder / f"{kind}.safetensors"
    if kind == "missing":
        return path, "does not exist"
    if kind == "wrong_key":
        save_file({"emb": torch.randn(N_ITEMS, 4)}, str(path))
        return path, "has no 'embeddings' tensor \\(it holds 'emb'\\)"
    if kind == "not_safetensors":
        path.write_text("#!/bin/bash\necho these are not embeddings\n")
        return path, "is not a readable safetensors file"
    if kind == "one_dim":
        save_file({"embeddings": torch.randn(N_ITEMS)}, str(path))
        return path, "has shape \\[40\\]; it must be \\[n_items, dim\\]"
    values = torch.randn(N_ITEMS, 4)
    values[7, 1] = float("nan") if kind == "nan" else float("inf")
    save_file({"embeddings": values}, str(path))
    return path, "NaN or infinite values in 1 of 40 rows \\(first: item 7\\)"


@pytest.mark.parametrize("kind", ["missing", "wrong_key", "not_safetensors", "one_dim", "nan", "inf"])
def test_bad_embeddings(env: dict[str, Path], tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    path, message = _bad_embeddings(kind, tmp_path)
    with pytest.raises(UserError, match=message) as info:
        score(_cfg(env, tmp_path / "o", embeddings=path))
    assert str(path) in str(info.value)
    if kind in ("missing", "wrong_key", "not_safetensors"):
        assert SHAPE_HINT in str(info.value)
    args = ["--acts", str(env["store"]), "--sae", str(env["sae"]), "--embeddings", str(path),
            "--out", str(tmp_path / "o")]
    assert str(path) in _cli_error(args, capsys)
    assert not (tmp_path / "o").exists()


def test_encoder_must_read_the_store_modality(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "text_store"
    write_store(store, {"h": np.ones((4, D), np.float32)}, labels=np.arange(4) % 2)
    # make it look like an extraction of the bundled text dataset, without running a text model
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["model"]["modality"] = "text"
    manifest["settings"]["data"] = "bbc-news"
    (store / "manifest.json").write_text(json.dumps(manifest))
    sae = tmp_path / "sae"
    SAE.create(SAEConfig(d_in=D, d_sae=8, architecture="topk", k=2)).save(sae)
    line = _cli_error(["--acts", str(store), "--sae", str(sae), "--encoder", "mobilenet_v2",
                       "--out", str(tmp_path / "o")], capsys)
    assert "'mobilenet_v2' reads image" in line and "--encoder wordllama" in line


def test_store_without_dataset_needs_embeddings(env: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no dataset to embed; pass --embeddings"):
        score(_cfg(env, tmp_path / "o", embeddings=None))


def test_nan_activations_are_refused(env: dict[str, Path], tmp_path: Path) -> None:
    rows = np.ones((N_ITEMS * PER_ITEM, D), np.float32)
    rows[13, 2] = np.nan
    store = write_store(tmp_path / "nan_store", {"h": rows}, item_index=np.repeat(np.arange(N_ITEMS), PER_ITEM),
                        labels=np.arange(N_ITEMS) % 2).root
    with pytest.raises(UserError, match=r"hook 'h' .*NaN or inf values \(first at row 13, item 6\)"):
        score(ScoreConfig(acts=store, sae=[env["sae"]], embeddings=env["emb"], out=tmp_path / "o", chunk_rows=8))
    assert not (tmp_path / "o").exists()


def test_report_on_a_score_folder(env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scores"
    score(_cfg(env, out))
    line = _cli_error([str(out)], capsys, command="report")
    assert "no scores yet" not in line
    assert "monosemantic run" in line and "run.json" in line and "scores.json" in line and "units.csv" in line


def test_data_changed_since_extraction_is_refused(tmp_path: Path) -> None:
    from monosemantic.sources.datasets import fingerprint

    data = tmp_path / "notes.jsonl"
    data.write_text("".join(json.dumps({"text": f"note {i}", "label": i % 2}) + "\n" for i in range(4)))
    store = tmp_path / "store"
    write_store(store, {"h": np.ones((4, D), np.float32)}, labels=np.arange(4) % 2)
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["model"]["modality"] = "text"
    manifest["settings"]["data"] = str(data)
    manifest["dataset"]["fingerprint"] = fingerprint(str(data))
    (store / "manifest.json").write_text(json.dumps(manifest))
    opened = ActivationStore.open(store)
    scoring._check_data_unchanged(opened, str(data))  # unchanged: no complaint
    data.write_text(data.read_text().replace("note 0", "a much longer first note"))
    sae = tmp_path / "sae"
    SAE.create(SAEConfig(d_in=D, d_sae=8, architecture="topk", k=2)).save(sae)
    with pytest.raises(UserError, match=r"changed since the store .* was extracted"):
        score(ScoreConfig(acts=store, sae=[sae], out=tmp_path / "o"))


def test_two_saes_of_one_name_are_refused(env: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    shutil.copytree(env["sae"], tmp_path / "b" / env["sae"].name)
    with pytest.raises(UserError, match="share the name"):
        score(_cfg(env, tmp_path / "o", sae=[env["sae"], tmp_path / "b"]))


def test_fractional_labels_are_refused(env: dict[str, Path], tmp_path: Path) -> None:
    np.save(tmp_path / "lab.npy", np.random.default_rng(0).random(N_ITEMS))
    with pytest.raises(UserError, match="fractional values"):
        score(_cfg(env, tmp_path / "o", labels=tmp_path / "lab.npy"))
    np.save(tmp_path / "ok.npy", (np.arange(N_ITEMS) % 3).astype(np.float64))  # whole numbers stored as floats
    result = score(_cfg(env, tmp_path / "o2", labels=tmp_path / "ok.npy"))
    assert result.label_names == ["0", "1", "2"]

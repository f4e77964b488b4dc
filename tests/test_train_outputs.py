"""Training never replaces what is not an SAE, refuses out-of-range numbers before any work, and leaves its
results readable by others."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monosemantic import log
from monosemantic.errors import UserError
from monosemantic.experiments.train import TrainResult, run
from monosemantic.sae import SAE, TrainConfig, train
from monosemantic.sae.trainconfig import train_config
from monosemantic.store import write_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x = np.random.default_rng(0).standard_normal((3000, 12)).astype(np.float32)
    path = tmp_path_factory.mktemp("acts") / "store"
    write_store(path, {"h": x}, item_index=np.arange(3000) // 4)
    return path


def cfg(store: Path, out: Path, **kw) -> TrainConfig:
    base = dict(acts=store, out=out, arch="topk", d_sae=[24], k=[3], tokens="3K", batch_size=256,
                progress=False, threads=1, checkpoint_every=0, device="cpu")
    base.update(kw)
    return train_config(base)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_overwrite_replaces_an_sae_but_never_the_store_or_a_sweep_folder(store, tmp_path):
    store_before = _tree(store)
    with pytest.raises(UserError, match="input"):
        train(cfg(store, store, overwrite=True))
    with pytest.raises(UserError, match="input"):
        train(cfg(store, store / "inside", overwrite=True))
    assert _tree(store) == store_before

    sweep = tmp_path / "sweep"
    train(cfg(store, sweep, k=[2, 3]))
    (sweep / "notes.txt").write_text("mine")
    sweep_before = _tree(sweep)
    with pytest.raises(UserError, match="not an SAE folder"):
        train(cfg(store, sweep, k=[4], overwrite=True))  # one SAE would go to <out> itself, replacing the sweep
    assert _tree(sweep) == sweep_before

    (one,) = train(cfg(store, tmp_path / "one"))
    w0 = (one / "sae_weights.safetensors").read_bytes()
    (again,) = train(cfg(store, tmp_path / "one", seed=5, overwrite=True))
    assert again == one and (one / "sae_weights.safetensors").read_bytes() != w0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left behind


def test_out_that_is_a_file_is_refused(store, tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("keep me")
    with pytest.raises(UserError, match="is a file"):
        train(cfg(store, f, overwrite=True))
    assert f.read_text() == "keep me"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"log_every": 0}, "--log-every must be at least 1"),
        ({"eval_rows": 0}, "--eval-rows must be at least 1"),
        ({"lr": -1.0}, "--lr must be greater than 0"),
        ({"holdout": 1.5}, "--holdout"),
        ({"k": [0]}, "--k values must be positive"),
        ({"l1_coefficient": [0.1]}, "--l1 does not apply to topk"),
        ({"group_fraction": [0.5, 0.5]}, "--group-fraction does not apply to topk; it is for matryoshka"),
        ({"lr": float("nan")}, "--lr must be a finite number, got nan"),
        ({"grad_clip": float("inf")}, "--grad-clip must be a finite number, got inf"),
        ({"width": [4.0, float("nan")]}, "--width must be a finite number"),
        ({"auxk_alpha": float("nan")}, "--auxk-alpha must be a finite number"),
        ({"arch": "jumprelu", "bandwidth": float("inf")}, "--bandwidth must be a finite number"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
    ],
)
def test_numbers_and_options_are_checked_before_any_work(store, tmp_path, change, needle):
    with pytest.raises(UserError, match=needle.replace("-", r"\-")):
        train(cfg(store, tmp_path / "o", **change))
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


def test_cli_bad_number_is_one_line(store, tmp_path):
    r = subprocess.run([sys.executable, "-m", "monosemantic", "train", "--acts", str(store), "--out",
                        str(tmp_path / "o"), "--log-every", "0", "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == ["monosemantic train: error: --log-every must be at least 1, got 0"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_cli_non_finite_learning_rate_is_one_line(store, tmp_path, value):
    r = subprocess.run([sys.executable, "-m", "monosemantic", "train", "--acts", str(store), "--out",
                        str(tmp_path / "o"), f"--lr={value}", "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--lr must be a finite number" in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_finished_sae_is_readable_by_group_and_others(store, tmp_path):
    old = os.umask(0o022)
    try:
        (folder,) = train(cfg(store, tmp_path / "perm"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    for f in folder.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


def test_a_damaged_cfg_names_the_folder(store, tmp_path):
    (folder,) = train(cfg(store, tmp_path / "sae"))
    text = (folder / "cfg.json").read_text().replace('"d_sae"', '"d_sae_removed"')
    (folder / "cfg.json").write_text(text)
    with pytest.raises(UserError, match=rf"{folder}.*incomplete"):
        SAE.load(folder)


def test_an_empty_out_folder_is_used(store, tmp_path):
    (tmp_path / "empty").mkdir()
    (folder,) = train(cfg(store, tmp_path / "empty"))
    assert folder == tmp_path / "empty" and (folder / "cfg.json").is_file()


def test_the_train_command_returns_its_folders(store, tmp_path, capsys):
    with log.quiet():  # quiet wins over --progress: no bar
        result = run(cfg(store, tmp_path / "sweep", k=[2, 3], progress=True))
    assert capsys.readouterr().err == ""
    assert isinstance(result, TrainResult)
    assert result.folders == [tmp_path / "sweep" / "topk-24-k2", tmp_path / "sweep" / "topk-24-k3"]
    assert result.summary() == [str(f) for f in result.folders]
    assert all((f / "eval.json").is_file() for f in result.folders)

"""Training end to end on small synthetic stores: recovery, sweeps, exact resume, CLI and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from monosemantic.errors import UserError
from monosemantic.sae import SAE, TrainConfig, train
from monosemantic.sae.trainconfig import train_config
from monosemantic.store import write_store

D = 16


def planted(n: int = 12_000, d: int = D, atoms: int = 48, seed: int = 0, p: float = 0.06):
    """x = sparse codes @ unit dictionary + noise + offset: a TopK SAE should explain most variance."""
    rng = np.random.default_rng(seed)
    dic = rng.standard_normal((atoms, d))
    dic /= np.linalg.norm(dic, axis=1, keepdims=True)
    codes = (rng.random((n, atoms)) < p) * rng.exponential(1.0, (n, atoms))
    x = codes @ dic + 0.02 * rng.standard_normal((n, d)) + 0.3
    return x.astype(np.float32), dic


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, _ = planted()
    path = tmp_path_factory.mktemp("sae") / "store"
    write_store(path, {"blocks.1": x}, item_index=np.arange(len(x)) // 8)
    return path


def cfg(store: Path, out: Path, **kw) -> TrainConfig:
    base = dict(acts=store, out=out, arch="topk", d_sae=[64], k=[4], tokens="60K", batch_size=512, lr=4e-3,
                progress=False, threads=1, checkpoint_every=0, log_every=5, device="cpu")
    base.update(kw)
    return train_config(base)


def test_topk_learns_planted_dictionary_and_writes_a_full_folder(store_dir, tmp_path):
    (folder,) = train(cfg(store_dir, tmp_path / "sae", tokens="150K"))
    names = {p.name for p in folder.iterdir()}
    assert {"cfg.json", "sae_weights.safetensors", "eval.json", "train_log.jsonl", "sparsity.safetensors"} <= names
    ev = json.loads((folder / "eval.json").read_text())
    assert ev["fvu"] < 0.3 and ev["l0"] <= 4.0
    log = [json.loads(ln) for ln in (folder / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["fvu"] < log[0]["fvu"]
    assert {"mse", "auxk", "fvu", "l0", "dead_fraction", "step", "tokens"} <= set(log[0])
    sae = SAE.load(folder)
    meta = sae.cfg.metadata
    assert meta["hook_name"] == "blocks.1" and meta["model_name"] == "synthetic"
    assert meta["monosemantic"]["store"] == str(store_dir.resolve())
    # held-out FVU recomputed independently from the saved SAE on raw store rows
    from monosemantic.store import ActivationStore

    st = ActivationStore.open(store_dir)
    _, ev_rows = st.split(holdout=0.05, seed=0)
    x = st.gather("blocks.1", ev_rows).double()
    with torch.no_grad():
        e = x - sae(x.float()).double()
    fvu = float(((e - e.mean(0)) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())
    assert fvu == pytest.approx(ev["fvu"], rel=1e-4)
    assert not (tmp_path / "sae.partial").exists()


def test_sweep_trains_side_by_side_from_one_pass(store_dir, tmp_path):
    out = tmp_path / "sweep"
    folders = train(cfg(store_dir, out, d_sae=[32, 64], k=[2, 4], tokens="20K"))
    assert sorted(f.name for f in folders) == ["topk-32-k2", "topk-32-k4", "topk-64-k2", "topk-64-k4"]
    single = train(cfg(store_dir, tmp_path / "one", d_sae=[64], k=[2], tokens="20K"))[0]
    a, b = SAE.load(out / "topk-64-k2"), SAE.load(single)
    for n in ("W_enc", "W_dec", "b_enc", "b_dec"):
        assert torch.equal(getattr(a, n), getattr(b, n)), "a sweep member must train exactly as if alone"


@pytest.mark.parametrize("arch", ["batchtopk", "matryoshka", "jumprelu", "relu"])
def test_other_architectures_train_and_reload(store_dir, tmp_path, arch):
    kw = {"arch": arch, "tokens": "30K"}
    if arch == "matryoshka":
        kw["group_fraction"] = [0.25, 0.75]
    if arch in ("jumprelu", "relu"):
        kw["k"] = []
    (folder,) = train(cfg(store_dir, tmp_path / arch, **kw))
    ev = json.loads((folder / "eval.json").read_text())
    assert 0 <= ev["fvu"] < 1.0
    sae = SAE.load(folder)
    assert sae.name == arch
    if arch == "matryoshka":
        assert sae.cfg.group_sizes == [16, 48]
        assert json.loads((folder / "cfg.json").read_text())["metadata"]["monosemantic"]["group_sizes"] == [16, 48]


def test_resume_after_interrupt_equals_uninterrupted_run(store_dir, tmp_path):
    full = train(cfg(store_dir, tmp_path / "full", tokens="12K", checkpoint_every=4))[0]
    c = cfg(store_dir, tmp_path / "cut", tokens="12K", checkpoint_every=4)
    assert train(c, stop_after=10) == []  # "killed" at step 10; the last checkpoint is at step 8
    assert (tmp_path / "cut.partial" / "checkpoint.pt").exists() and not (tmp_path / "cut").exists()
    with pytest.raises(UserError, match="--resume"):
        train(c)
    c = replace(c, resume=True)
    resumed = train(c)[0]
    a, b = SAE.load(full), SAE.load(resumed)
    for n in ("W_enc", "W_dec", "b_enc", "b_dec"):
        assert torch.equal(getattr(a, n), getattr(b, n)), n
    log = [json.loads(ln) for ln in (resumed / "train_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log]
    assert steps == sorted(set(steps)), "the resumed log must not repeat steps"
    elapsed = [r["elapsed_s"] for r in log]
    assert elapsed == sorted(elapsed), "training time continues across the resume instead of restarting at 0"


def test_resume_refuses_a_store_of_another_width(store_dir, tmp_path):
    c = cfg(store_dir, tmp_path / "r", tokens="8K", checkpoint_every=2)
    train(c, stop_after=3)
    other = tmp_path / "wide"
    write_store(other, {"blocks.1": np.ones((2000, D + 4), np.float32)}, item_index=np.arange(2000) // 4)
    c2 = cfg(other, tmp_path / "r", tokens="8K", resume=True)
    with pytest.raises(UserError, match="width"):
        train(c2)


def test_bad_input_is_a_clear_user_error(store_dir, tmp_path):
    with pytest.raises(UserError, match="no activation store"):
        train(cfg(tmp_path / "nowhere", tmp_path / "o"))
    with pytest.raises(UserError, match=r"impossible|between 1"):
        train(cfg(store_dir, tmp_path / "o", d_sae=[8], k=[9]))
    with pytest.raises(UserError, match="sum to 1"):
        train(cfg(store_dir, tmp_path / "o", arch="matryoshka", group_fraction=[0.5, 0.6]))
    with pytest.raises(UserError, match="tokens"):
        train(cfg(store_dir, tmp_path / "o", tokens="lots"))
    bad = tmp_path / "nan"
    x = np.random.default_rng(0).standard_normal((3000, D)).astype(np.float32)
    x[1234, 3] = np.nan
    write_store(bad, {"h": x}, item_index=np.arange(3000) // 4)
    with pytest.raises(UserError, match="NaN or inf"):
        train(cfg(bad, tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_a_finished_sae_is_never_overwritten(store_dir, tmp_path):
    (folder,) = train(cfg(store_dir, tmp_path / "done", tokens="4K"))
    before = (folder / "sae_weights.safetensors").read_bytes()
    with pytest.raises(UserError, match="already exists"):
        train(cfg(store_dir, tmp_path / "done", tokens="4K", seed=1))
    assert (folder / "sae_weights.safetensors").read_bytes() == before


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monosemantic", "train", *args], capture_output=True, text=True)


def test_cli_trains_from_options_and_from_toml(store_dir, tmp_path):
    r = _cli("--acts", str(store_dir), "--arch", "topk", "--d-sae", "32", "--k", "4", "--tokens", "5K",
             "--batch-size", "512", "--out", str(tmp_path / "cli"), "--no-progress", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cli" / "cfg.json").exists()
    assert r.stdout.splitlines() == [str(tmp_path / "cli")]  # the folder, printed once
    toml = tmp_path / "t.toml"
    toml.write_text(f'acts = "{store_dir}"\narch = "topk"\nwidth = [2.0]\nk = [4.0]\ntokens = "5K"\n'
                    f'batch_size = 512\nout = "{tmp_path / "toml"}"\nprogress = false\nthreads = 1\n')
    r = _cli("--config", str(toml))
    assert r.returncode == 0, r.stderr
    assert SAE.load(tmp_path / "toml").cfg.d_sae == 32
    r = _cli("--config", str(toml), "--k", "40")  # option overrides the file; 40 > d_sae
    assert r.returncode == 2 and "k=40" in r.stderr and "Traceback" not in r.stderr
    toml.write_text('acts = "x"\nwidht = [2.0]\n')
    r = _cli("--config", str(toml))
    assert r.returncode == 2 and "widht" in r.stderr
    r = _cli("--acts", str(tmp_path / "missing"), "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "missing" in r.stderr and "Traceback" not in r.stderr

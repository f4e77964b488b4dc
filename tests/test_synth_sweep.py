"""`monosemantic synth`: the trainer recovers planted features at high sparsity, the sweep writes its table and
page, and impossible settings fail in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from monosemantic import log
from monosemantic.cli import main
from monosemantic.experiments.synth import SynthConfig, expected_k, run
from monosemantic.metrics.recovery import recovery
from monosemantic.report.sections.synth import KIND, pareto_front
from monosemantic.sae import SAE, train, train_config
from monosemantic.synthetic import load_ground_truth, superposition_store

pytestmark = pytest.mark.usefixtures("one_thread")


def test_topk_trained_by_our_trainer_recovers_sparse_features(tmp_path: Path) -> None:
    store = superposition_store(tmp_path / "s", 64, 16, 0.99, 40_000, seed=0, labels="none")
    gt = load_ground_truth(store)
    tc = train_config(dict(acts=tmp_path / "s", out=tmp_path / "sae", arch="topk", d_sae=[128], k=[1],
                           tokens="300K", batch_size=1024, progress=False, checkpoint_every=0, device="cpu"))
    sae = SAE.load(train(tc)[0])
    with torch.no_grad():
        got = recovery(sae.W_dec, gt.w_p)
    assert got.mmcs_gt >= 0.9, got.mmcs_gt


def test_a_small_sweep_writes_rows_csv_and_page(tmp_path: Path) -> None:
    cfg = SynthConfig(out=tmp_path / "synth", n_features=24, n_dims=8, sparsity=[0.5, 0.95], width=[24],
                      archs=["topk", "relu"], alphas=[0.0, 1.0], n_samples=3000, train_tokens="10K", batch_size=256)
    with log.quiet():
        result = run(cfg)
    rows = result.to_json()["rows"]
    assert [(r.sparsity, r.arch, r.alpha) for r in result.rows] == [(r["sparsity"], r["arch"], r["alpha"])
                                                                     for r in rows]
    assert len(rows) == 2 * 2 * 2
    assert {(r["sparsity"], r["arch"], r["alpha"]) for r in rows} == {
        (s, a, al) for s in (0.5, 0.95) for a in ("topk", "relu") for al in (0.0, 1.0)}
    for r in rows:
        assert 0 <= r["mmcs_gt"] <= 1 and 0 <= r["frac_recovered@0.9"] <= 1 and r["l_gt"] >= 0
        assert r["k"] == (expected_k(24, r["sparsity"], 24) if r["arch"] == "topk" else None)
    topk = next(r for r in rows if r["arch"] == "topk" and r["sparsity"] == 0.95)
    assert topk["l0"] <= expected_k(24, 0.95, 24) + 1e-6
    out = tmp_path / "synth"
    assert sorted(p.name for p in out.iterdir()) == ["synth.csv", "synth.html", "synth.json"]
    assert len((out / "synth.csv").read_text().splitlines()) == 1 + len(rows)
    page = (out / "synth.html").read_text()
    assert "Pareto front" in page and page.count("<img src='data:image/png;base64,") == 4
    assert KIND.find(out) == json.loads((out / "synth.json").read_text()) == result.to_json()


def test_pareto_front_keeps_only_undominated_points() -> None:
    pts = [(1.0, 0.5), (2.0, 0.4), (2.0, 0.9), (3.0, 0.8), (4.0, 0.95)]
    assert pareto_front(pts) == [(1.0, 0.5), (2.0, 0.9), (4.0, 0.95)]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--n-dims", "30", "--n-features", "20"], "--n-dims must be between 1 and --n-features"),
        (["--sparsity", "1.0"], "--sparsity values must lie in [0, 1)"),
        (["--archs", "gated"], "unknown architecture 'gated'"),
        (["--alphas=-1"], "--alphas values must be at least 0"),
    ],
)
def test_impossible_settings_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args, needle) -> None:
    assert main(["synth", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err, err
    assert not (tmp_path / "o").exists()

"""`monosemantic atoms`: neurons, SAE features and threshold-SAE atoms of one layer scored side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from monosemantic import log
from monosemantic.cli import main
from monosemantic.experiments.atoms import AtomsConfig, run
from monosemantic.report.sections.atoms import KIND
from monosemantic.sae import train, train_config
from monosemantic.store import write_store

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    dic = rng.standard_normal((48, 16))
    dic /= np.linalg.norm(dic, axis=1, keepdims=True)
    codes = (rng.random((8000, 48)) < 0.05) * rng.uniform(0.5, 1.5, (8000, 48))
    root = tmp_path_factory.mktemp("atoms")
    write_store(root / "store", {"h": (codes @ dic).astype(np.float32)}, item_index=np.arange(8000) // 4)
    tc = train_config(dict(acts=root / "store", out=root / "sae", arch="topk", d_sae=[48], k=[3], tokens="40K",
                           batch_size=512, progress=False, checkpoint_every=0, device="cpu", threads=1))
    train(tc)
    return root / "store", root / "sae"


def test_atoms_scores_every_unit_set_and_writes_its_page(layer: tuple[Path, Path], tmp_path: Path) -> None:
    store, sae = layer
    cfg = AtomsConfig(acts=store, sae=[sae], out=tmp_path / "atoms", capacities=[1.0, 2.0], train_tokens="20K",
                      target_l0=3.0, rows=300, metric_rows=4000, device="cpu")
    with log.quiet():
        result = run(cfg)
    units = {u.id: u for u in result.units}
    assert list(units) == ["neurons", "sae", "threshold x1", "threshold x2"]
    neurons = units["neurons"]
    assert neurons.r2 == 1.0 and 12 < neurons.mean_k <= 16 and neurons.n_units == 16
    # a sample using most of the 16 neurons is unique only if μ·(2K − 1) < 1: far from it for these neurons
    assert neurons.coherence_aip > 0.1 and neurons.unique_aip < 0.2
    sae_row = units["sae"]
    assert sae_row.n_units == 48 and sae_row.mean_k <= 3.0 + 1e-9 and 0.5 < sae_row.r2 <= 1.0
    assert 0.0 <= sae_row.unique_aip <= 1.0 and 0.0 <= sae_row.q_star_aip <= 1.0
    assert units["threshold x2"].n_units == 32
    angles = result.angles.activations
    assert sum(angles.euclidean) == sum(angles.aip) == angles.n_pairs
    out = tmp_path / "atoms"
    assert {"atoms.json", "atoms.csv", "atoms.html"} <= {p.name for p in out.iterdir()}
    assert KIND.find(out) == json.loads((out / "atoms.json").read_text())
    assert (out / "atoms.html").read_text().count("data:image/png;base64,") == 3


def test_an_sae_of_another_width_is_one_line(layer: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = layer
    other = tmp_path / "other-store"
    write_store(other, {"h": np.random.default_rng(1).standard_normal((2000, 8)).astype(np.float32)},
                item_index=np.arange(2000))
    wide = tmp_path / "wide"
    train(train_config(dict(acts=other, out=wide, arch="topk", d_sae=[16], k=[2], tokens="4K", batch_size=256,
                            progress=False, checkpoint_every=0, device="cpu", threads=1)))
    assert main(["atoms", "--acts", str(store), "--sae", str(wide), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "reads width 8 but hook 'h' of the store has width 16" in err, err
    assert main(["atoms", "--acts", str(store), "--capacities", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--capacities must be positive" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

"""`monosemantic score`: neurons and SAE latents scored side by side, and its bad-input messages."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from monosemantic import log
from monosemantic import metrics as M
from monosemantic.cli import main
from monosemantic.errors import UserError
from monosemantic.experiments.score import ScoreConfig, run
from monosemantic.sae import train
from monosemantic.sae.trainconfig import TrainConfig
from monosemantic.store import pool_by_item, write_store


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A token-level store (4 rows per item) whose items carry planted class directions, and a TopK SAE on it."""
    root = tmp_path_factory.mktemp("score")
    rng = np.random.default_rng(0)
    n_items, per, d = 300, 4, 12
    labels = rng.integers(0, 3, n_items)
    dirs = rng.normal(size=(3, d))
    rows = np.repeat(dirs[labels], per, axis=0) * rng.uniform(0.5, 1.5, (n_items * per, 1))
    rows += 0.3 * rng.normal(size=rows.shape)
    item_index = np.repeat(np.arange(n_items), per)
    write_store(root / "store", {"h": rows.astype(np.float32)}, item_index=item_index, labels=labels,
                label_names=["a", "b", "c"])
    emb = np.eye(3)[labels] + 0.1 * rng.normal(size=(n_items, 3))
    save_file({"embeddings": torch.tensor(emb, dtype=torch.float32)}, str(root / "emb.safetensors"))
    train(TrainConfig(acts=root / "store", out=root / "sae", arch="topk", d_sae=[24], k=[3], tokens="40K",
                      batch_size=256, progress=False))
    return {"root": root, "store": root / "store", "sae": root / "sae", "emb": root / "emb.safetensors"}


def test_scores_neurons_and_latents(setup: dict[str, Path]) -> None:
    out = setup["root"] / "scores"
    with log.quiet():
        result = run(ScoreConfig(acts=setup["store"], sae=[setup["sae"]], embeddings=setup["emb"], out=out))
    ids = [s.id for s in result.unit_sets]
    assert ids[0] == "neurons" and len(ids) == 2
    neurons, sae = result.unit_sets
    assert neurons.width == 12 and sae.width == 24 and sae.sae is not None and sae.sae.heldout is not None
    assert sae.sae.heldout.fvu is not None
    assert neurons.labels is not None and neurons.sae is None

    # Independent check of the neuron MS: max-pool by item by hand, then the metric itself.
    from safetensors.torch import load_file

    from monosemantic.store import ActivationStore

    store = ActivationStore.open(setup["store"])
    pooled = pool_by_item(store.rows("h"), store.item_index, store.n_items, "max")
    expected = M.monosemanticity_score(pooled, load_file(str(setup["emb"]))["embeddings"])
    np.testing.assert_allclose(neurons.ms.mean, float(expected.nanmean()), rtol=1e-6)
    fms = neurons.labels.fms
    assert 1 in fms.fms and set(fms.per_concept) == {"a", "b", "c"}
    # balanced FMS by default: each concept on its items and as many others, and the summary says so
    assert fms.variant == "balanced"
    counts = np.bincount(store.labels, minlength=3)
    assert [fms.per_concept[c].n_rows for c in "abc"] == [2 * min(k, store.n_items - k) for k in counts.tolist()]
    want = M.fms(pooled, torch.as_tensor(store.labels), p=(1, 5))
    assert fms.fms[1] == pytest.approx(want["fms_mean"][1], abs=1e-12)

    with open(out / "units.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 + 24 and {r["set"] for r in rows} == {"neurons", sae.id}
    on_disk = json.loads((out / "scores.json").read_text())
    assert on_disk["encoder"] == "emb.safetensors" and on_disk == json.loads(json.dumps(result.to_json()))
    assert "fms@1" in on_disk["unit_sets"][0]["fms"] and on_disk["unit_sets"][1]["fvu"] is not None


def test_unbalanced_fms_from_the_cli(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "scores"
    rc = main(["score", "--acts", str(setup["store"]), "--sae", str(setup["sae"]), "--embeddings",
               str(setup["emb"]), "--out", str(out), "--no-fms-balance", "--fms-p", "1"])
    assert rc == 0
    neurons = json.loads((out / "scores.json").read_text())["unit_sets"][0]
    assert neurons["fms"]["variant"] == "unbalanced"
    assert {e["n_rows"] for e in neurons["fms"]["per_concept"].values()} == {300}  # every item, every concept

    from monosemantic.store import ActivationStore

    store = ActivationStore.open(setup["store"])
    pooled = pool_by_item(store.rows("h"), store.item_index, store.n_items, "max")
    want = M.fms(pooled, torch.as_tensor(store.labels), p=1, balance=False)
    assert neurons["fms"]["fms@1"] == pytest.approx(want["fms_mean"][1], abs=1e-12)


def test_refuses_existing_output(setup: dict[str, Path]) -> None:
    out = setup["root"] / "keep"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    for overwrite in (False, True):  # a folder of other files is never a score folder to replace
        with pytest.raises(UserError, match=r"not a score folder.*choose another --out"):
            run(ScoreConfig(acts=setup["store"], sae=[setup["sae"]], embeddings=setup["emb"], out=out,
                            overwrite=overwrite))
    assert (out / "mine.txt").exists()


def test_bad_inputs(setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = write_store(tmp_path / "wide", {"h": np.ones((20, 7), np.float32)}, labels=np.arange(20) % 2)
    rc = main(["score", "--acts", str(other.root), "--sae", str(setup["sae"]), "--embeddings", str(setup["emb"]),
               "--out", str(tmp_path / "o1")])
    assert rc == 2 and "reads width 12" in capsys.readouterr().err

    bad_emb = tmp_path / "emb.safetensors"
    save_file({"embeddings": torch.ones(5, 3)}, str(bad_emb))
    with pytest.raises(UserError, match="5 rows but the store has 300 items"):
        run(ScoreConfig(acts=setup["store"], sae=[setup["sae"]], embeddings=bad_emb, out=tmp_path / "o2"))

    labels = tmp_path / "labels.txt"
    labels.write_text("x\n" * 300)
    with pytest.raises(UserError, match="single class"):
        run(ScoreConfig(acts=setup["store"], sae=[setup["sae"]], embeddings=setup["emb"], labels=labels,
                        out=tmp_path / "o3"))
    labels.write_text("x\ny\n")
    with pytest.raises(UserError, match="2 labels but the store has 300 items"):
        run(ScoreConfig(acts=setup["store"], sae=[setup["sae"]], embeddings=setup["emb"], labels=labels,
                        out=tmp_path / "o4"))
    with pytest.raises(UserError, match="not an SAE folder"):
        run(ScoreConfig(acts=setup["store"], sae=[tmp_path], embeddings=setup["emb"], out=tmp_path / "o5"))


def test_hierarchy_depth_and_rank_normalised_sets(setup: dict[str, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A Matryoshka SAE gets a per-group depth under a label hierarchy; every unit set gets MedSAE's rank-normalised
    label correlation and entropy, consistent with the per-class scores it comes from."""
    from monosemantic.sae.trainconfig import train_config

    (mat,) = train(train_config(dict(acts=setup["store"], out=tmp_path / "mat", arch="matryoshka", d_sae=[24], k=[3],
                                     group_fraction=[0.25, 0.75], tokens="40K", batch_size=256, progress=False)))
    hier = tmp_path / "h.toml"
    hier.write_text('a = "X"\nb = "X"\nc = "Y"\n')
    with log.quiet():
        result = run(ScoreConfig(acts=setup["store"], sae=[setup["sae"], mat], embeddings=setup["emb"],
                                 out=tmp_path / "scores", hierarchy=str(hier)))
    neurons, topk, matry = result.unit_sets
    assert topk.hierarchy is None and neurons.hierarchy is None  # only nested groups have a depth
    h = matry.hierarchy
    assert h is not None
    assert [g.size for g in h.groups] == [6, 18] and h.paths == [["X", "a"], ["X", "b"], ["Y", "c"]]
    assert all(g.mean_depth is None or 0 <= g.mean_depth <= 2 for g in h.groups)
    assert [lv.level for lv in h.levels] == [1, 2] and len(h.levels[1].nodes) == 3
    for c in range(3):  # per class: the set with the highest CorrScore ranks 1, the lowest 0
        col = [s.labels.corr_per_class[c] for s in result.unit_sets]
        ranks = [s.rank_norm.corr_per_class[c] for s in result.unit_sets]
        assert ranks[int(np.argmax(col))] == 1.0 and ranks[int(np.argmin(col))] == 0.0
    assert all(0 <= s.rank_norm.entropy_mean <= 1 for s in result.unit_sets)
    unit_sets = result.to_json()["unit_sets"]
    assert "hierarchy" not in unit_sets[0] and "hierarchy" not in unit_sets[1] and "hierarchy" in unit_sets[2]
    from monosemantic.report.blocks import hierarchy_block, summary_table

    track = {"name": "t", "modality": "text", "unit_sets": unit_sets}
    html = hierarchy_block(track, 0)
    assert "Matryoshka groups and the label hierarchy" in html and html.count("group 0") + html.count("group 1") == 5
    assert "Rank ρ" in summary_table(track, 0) and hierarchy_block({"unit_sets": unit_sets[:1]}, 0) == ""
    # a hierarchy that does not cover the labels is one line, exit 2
    hier.write_text('a = "X"\n')
    rc = main(["score", "--acts", str(setup["store"]), "--sae", str(mat), "--embeddings", str(setup["emb"]),
               "--out", str(tmp_path / "s2"), "--hierarchy", str(hier)])
    err = capsys.readouterr().err
    assert rc == 2 and "no parent for the label(s) ['b', 'c']" in err and "Traceback" not in err

"""`monosemantic run`: a tiny real pipeline, stage caching, and config errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from monosemantic.cli import main
from monosemantic.errors import UserError
from monosemantic.experiments.pipeline.config import load_run_config
from monosemantic.experiments.run import run as run_pipeline

pytestmark = pytest.mark.slow

TINY = """
title = "tiny"
out = "{out}"

[[tracks]]
name = "img"
model = "mobilenet_v2"
layer = "features.6"
data = "digits"
tokens = "mean"
max_items = 240
archs = ["topk"]
expansions = [2]
ks = [{k}]
train_tokens = "30K"
batch_size = 128
encoder = "efficientnet_lite0"
n_cards = 2

[[tracks]]
name = "txt"
model = "minilm"
layer = "encoder.layer.1"
data = "bbc-news"
max_items = 40
max_length = 24
archs = ["matryoshka"]
expansions = [2]
ks = [8]
train_tokens = "20K"
batch_size = 256
encoder = "minilm"
encoder_max_length = 24
n_cards = 2
"""


def _config(tmp_path: Path, k: int = 4) -> Path:
    path = tmp_path / f"run-{k}.toml"
    path.write_text(TINY.format(out=tmp_path / "run", k=k))
    return path


def test_tiny_run_caches_stages_and_redoes_only_what_changed(tmp_path: Path) -> None:
    report = run_pipeline(load_run_config(_config(tmp_path))).report
    assert report.is_file() and report.name == "report.html"
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    first = {k: v["hash"] for k, v in run["stages"].items()}
    assert set(first) == {f"{t}/{s}" for t in ("img", "txt") for s in ("extract", "embed", "score")} | {
        "img/train-topk", "txt/train-matryoshka"}
    data = json.loads((tmp_path / "run" / "report_data.json").read_text())
    img = data["tracks"][0]
    assert img["unit_sets"][0]["id"] == "neurons" and len(img["unit_sets"]) == 2
    assert img["unit_sets"][1]["id"] == "topk-64-k4"  # a lone SAE is named like a sweep's, not by stage hash
    assert img["cards"] and img["cards"][0]["top"][0]["image"].startswith("data:image/png;base64,")
    txt = data["tracks"][1]
    assert txt["cards"][0]["top"][0]["tokens"]

    mtimes = {p: p.stat().st_mtime for p in (tmp_path / "run" / "stores").rglob("manifest.json")}
    run_pipeline(load_run_config(_config(tmp_path)))  # everything cached
    assert {p: p.stat().st_mtime for p in mtimes} == mtimes

    run_pipeline(load_run_config(_config(tmp_path, k=6)))  # only img train, img score change
    after = {k: v["hash"] for k, v in json.loads((tmp_path / "run" / "run.json").read_text())["stages"].items()}
    changed = {k for k in first if first[k] != after[k]}
    assert changed == {"img/train-topk", "img/score"}


def test_config_errors_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tracks]]\nname = "a"\nmodel = "minilm"\nlayer = "x"\ndata = "bbc-news"\nexpansion = [2]\n')
    with pytest.raises(UserError, match=r"unknown key 'expansion'.*valid keys: archs"):
        load_run_config(bad)
    bad.write_text('[[tracks]]\nname = "a"\nmodel = "minilm"\nlayer = "x"\ndata = "bbc-news"\nks = "8"\n')
    assert main(["run", str(bad)]) == 2
    assert "tracks[0].ks must be a list of a number" in capsys.readouterr().err


def test_older_run_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"format_version": 0, "stages": {}}))
    with pytest.raises(UserError, match="older monosemantic format"):
        run_pipeline(load_run_config(_config(tmp_path)))


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('archs = ["topk"]', 'archs = ["topkk"]', "unknown SAE architecture 'topkk'"),
        ('train_tokens = "30K"', 'train_tokens = "5X"', "cannot read '5X'"),
        ("batch_size = 128", "batch_size = 0", "--batch-size must be at least 1"),
        ("n_cards = 2\n\n", "n_cards = -3\n\n", "n_cards must be at least 0"),
        ("expansions = [2]\nks = [{k}]", "expansions = []\nks = [{k}]", "expansions must each list"),
        ('data = "bbc-news"', 'data = "notes/nowhere.jsonl"', "track 'txt': data file or folder"),
    ],
)
def test_settings_are_checked_before_any_stage_runs(tmp_path: Path, old: str, new: str, needle: str) -> None:
    assert old in TINY
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace(old, new, 1).format(out=tmp_path / "run", k=4))
    with pytest.raises(UserError, match=re.escape(needle)):
        load_run_config(path)
    assert not (tmp_path / "run").exists()


def test_k_too_large_for_the_layer_fails_before_embedding(tmp_path: Path) -> None:
    # features.6 of MobileNetV2 is 32 wide; x2 gives 64 latents, fewer than k = 100
    with pytest.raises(UserError, match=r"track 'img', topk \(layer width 32\).*k=100 is impossible"):
        run_pipeline(load_run_config(_config(tmp_path, k=100)))
    assert not (tmp_path / "run" / "embeddings").exists()


def test_damaged_run_record_and_foreign_out_are_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{not json")
    with pytest.raises(UserError, match=r"run\.json is damaged"):
        run_pipeline(load_run_config(_config(tmp_path)))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep")
    with pytest.raises(UserError, match="not a run folder"):
        run_pipeline(load_run_config(_config(tmp_path), out=str(mine)))
    afile = tmp_path / "file.txt"
    afile.write_text("keep")
    with pytest.raises(UserError, match="is a file"):
        run_pipeline(load_run_config(_config(tmp_path), out=str(afile)))
    assert (mine / "thesis.tex").read_text() == "keep" and afile.read_text() == "keep"


def test_editing_local_data_or_model_changes_the_extract_stage(tmp_path: Path, monkeypatch) -> None:
    from monosemantic.experiments.pipeline.config import TrackConfig
    from monosemantic.experiments.pipeline.stages import digest, extract_inputs

    monkeypatch.chdir(tmp_path)
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"text": "first note"}\n')
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    track = TrackConfig(name="t", model="model", layer="x", data="notes.jsonl")
    first = digest(extract_inputs(track))
    assert extract_inputs(track)["data"] == str(notes)  # recorded absolute, found again from any folder
    assert digest(extract_inputs(track)) == first  # nothing changed, same stage
    notes.write_text('{"text": "a different, longer note"}\n')
    second = digest(extract_inputs(track))
    assert second != first
    (model / "config.json").write_text('{"changed": true}')
    assert digest(extract_inputs(track)) != second
    bundled = TrackConfig(name="t", model="minilm", layer="x", data="bbc-news")
    assert extract_inputs(bundled)["data"] == "bbc-news" and "data_fingerprint" not in extract_inputs(bundled)


def test_bundled_demo_stage_hashes_are_stable(tmp_path: Path) -> None:
    # runs/demo folders made before local-data fingerprints must stay cached: these hashes were recorded then
    from monosemantic.cli.demo import demo_config_text
    from monosemantic.experiments.pipeline.stages import digest, extract_inputs

    (tmp_path / "demo.toml").write_text(demo_config_text())
    cfg = load_run_config(tmp_path / "demo.toml")
    got = {t.name: digest({"stage": f"{t.name}/extract", **extract_inputs(t)}) for t in cfg.tracks}
    assert got == {"vision": "eec65b2fc88d", "text": "9e226f9f1c6f"}


def test_coefficient_archs_get_l1s_and_no_ks(tmp_path: Path) -> None:
    path = tmp_path / "mixed.toml"
    path.write_text(TINY.replace('archs = ["topk"]', 'archs = ["topk", "relu", "jumprelu"]\nl1s = [0.1]', 1)
                    .format(out=tmp_path / "run", k=4))
    track = load_run_config(path).tracks[0]
    topk, relu, jump = (track.train_config(a, 0) for a in ("topk", "relu", "jumprelu"))
    assert (topk.k, topk.l1_coefficient) == ([4], [])
    assert (relu.k, relu.l1_coefficient) == ([], [0.1]) and (jump.k, jump.l1_coefficient) == ([], [0.1])

"""A `[[steer]]` run track end to end on the bundled SmolLM2 and tweets (tiny sizes): both SAEs trained, their
concept latents scored, an α sweep, and the report's steering section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monosemantic.errors import UserError
from monosemantic.experiments.pipeline.config import load_run_config
from monosemantic.experiments.run import run as run_pipeline

pytestmark = pytest.mark.slow

TINY = """
title = "tiny steering"
out = "{out}"
threads = 1

[[steer]]
name = "att"
task = "attitude"
max_items = 160
max_length = 32
expansion = 1
k = 32
train_tokens = "16K"
batch_size = 512
fms_rows = 80
n_prompts = 3
alphas = [0.0, 0.2]
max_new_tokens = 4
"""


def test_steer_track_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(TINY.format(out=tmp_path / "run"))
    report = run_pipeline(load_run_config(path)).report
    result = json.loads((tmp_path / "run" / "steer" / "steer.json").read_text())
    assert result["format"] == "monosemantic-steer" and len(result["tracks"]) == 1
    t = result["tracks"][0]
    assert t["concepts"] == ["positive"] and t["fms_variant"] == "balanced" and t["d_sae"] == 576
    gsae, vanilla = t["sae"]["gsae"], t["sae"]["vanilla"]
    assert gsae["latents"] == [0] and gsae["root"] is not None  # the reserved latent is steered, the free root kept
    assert vanilla["latents"] == [max(r, 0) for r in vanilla["root"]]  # the vanilla SAE steers its tree's root
    for s in (gsae, vanilla):
        assert 0.0 <= s["fms@1"] <= 1.0 and 0.0 <= s["fms@5"] <= 1.0
        assert s["auroc_mean"] is None or 0.0 <= s["auroc_mean"] <= 1.0
    sweep = t["sweep"]
    assert [(r["method"], r["alpha"]) for r in sweep["rows"]] == [("vanilla", 0.0), ("vanilla", 0.2), ("gsae", 0.0),
                                                                   ("gsae", 0.2)]
    base = sweep["baseline"]
    for r in sweep["rows"]:
        if r["alpha"] == 0.0:  # α = 0 is the unsteered model: same texts, same scores
            assert r["examples"] == base["examples"] and r["success_rate"] == base["success_rate"]
            assert r["ppl_ratio"] == pytest.approx(1.0)
    assert set(sweep["headline"]) <= {"vanilla", "gsae"}
    html = report.read_text()
    assert "id=steer" in html and "G-SAE" in html and "FMS@1" in html
    # a re-run finds every stage cached and gives the same result
    run_pipeline(load_run_config(path))
    again = json.loads((tmp_path / "run" / "steer" / "steer.json").read_text())
    assert again["tracks"][0]["sweep"]["rows"] == sweep["rows"]


def test_steer_track_config_errors(tmp_path: Path) -> None:
    bad = {"task = \"attitude\"": "task = \"toxicity\"", "n_prompts = 3": "n_prompts = 0",
           "alphas = [0.0, 0.2]": "alphas = [0.0, nan]"}
    for old, new in bad.items():
        path = tmp_path / "bad.toml"
        path.write_text(TINY.format(out=tmp_path / "run").replace(old, new))
        with pytest.raises(UserError) as err:
            load_run_config(path)
        assert "\n" not in str(err.value) and ("att" in str(err.value) or "steer[0]" in str(err.value))

"""`monosemantic knowledge` end to end on a tiny LLaMA saved to a folder (it answers Paris to everything), with a
residual SAE whose latent 0 writes the answer and an MLP-activation SAE; the outputs, the report section, and bad
input as one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import knowledge_tiny as tiny
from monosemantic.cli import main

FAST = ["--n", "1", "--n", "2", "--edit-facts", "2", "--edit-n", "2", "--ppl-texts", "2", "--ppl-tokens", "16",
        "--unrelated", "24", "--test-units", "2", "--device", "cpu"]
GROUPED = [{**row, "group": "north"} for row in tiny.FACTS[:3]] + tiny.FACTS[3:]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("knowledge")
    out = {"model": tiny.save_model(root / "tiny-llama"), "facts": tiny.write_facts(root / "facts.jsonl", GROUPED)}
    out["resid"] = tiny.resid_sae().save(root / "resid")
    out["mlp"] = tiny.mlp_sae().save(root / "mlp")
    out["wide"] = tiny.resid_sae(d_in=16).save(root / "wide")
    out["elsewhere"] = tiny.resid_sae(hook="model.layers.7").save(root / "elsewhere")
    out["other_model"] = tiny.resid_sae(model_name="minilm").save(root / "other-model")
    return out


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["knowledge", *args])
    got = capsys.readouterr()
    return code, got.out, got.err


@pytest.mark.usefixtures("one_thread")
def test_knowledge_runs_end_to_end_and_writes_its_results(setup, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = _run(["--model", str(setup["model"]), "--sae", str(setup["resid"]), "--sae",
                              str(setup["mlp"]), "--facts", str(setup["facts"]), "--out", str(out),
                              "--save-patches", "--edit-sets", *FAST], capsys)
    assert code == 0, err
    assert "4 of 4 facts known" in stdout
    result = json.loads((out / "knowledge.json").read_text())
    assert result["format"] == "monosemantic-knowledge" and result["version"] == 1 and result["n_facts"] == 4
    abl = {(r["units"], r["control"], r["n"]): r["delta_prob"] for r in result["ablation"]}
    resid = "residual:" + tiny.RESID
    assert abl[(resid, False, 1)] > 0.9 > abs(abl[(resid, True, 1)])  # the answer-writing latent vs random ones
    assert {r["units"] for r in result["ablation"]} == {resid, "mlp:" + tiny.MLP, "neurons"}
    summary = {s["units"]: s for s in result["related_test"]["summary"]}
    assert set(summary) == {resid, "mlp:" + tiny.MLP, "neurons"}
    methods = {(e["method"], e["target"]): e for e in result["edit"]["summary"]}
    assert set(methods) == {(m, t) for m in ("FeatureEdit (columns)", "FeatureEdit (block)", "neurons",
                                             "neurons (same columns)") for t in ("facts", "sets")}
    for (_, target), e in methods.items():
        assert 0 <= e["reliability"] <= 1 and 0 <= e["locality"] <= 1
        assert e["n_facts"] == (2 if target == "facts" else 1)
    with open(out / "edits.csv") as fh:
        edits = list(csv.DictReader(fh))
    assert {e["target"] for e in edits} == {"Xland", "Yland", "group north"}
    for target in ("Xland", "group north"):
        cols = {e["method"]: int(e["n_columns"]) for e in edits if e["target"] == target}
        assert cols["neurons (same columns)"] == cols["FeatureEdit (columns)"] > cols["neurons"] > 0
    with open(out / "ablation.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 2 * 2 * result["n_prompts"]
    assert (out / "units.csv").stat().st_size > 0 and (out / "edits.csv").stat().st_size > 0
    assert len(list((out / "patches").iterdir())) == 12
    html = (out / "knowledge.html").read_text()
    assert "Knowledge: features vs neurons" in html and "Xland" in html and "FeatureEdit (columns)" in html
    assert result["cards"][0]["features"][resid][0]["id"] == 0

    from fixtures.report_run import make_report_data
    from monosemantic.report import render_report
    from monosemantic.report.sections.knowledge import KIND

    assert KIND.find(out)["n_facts"] == 4
    (out / "report_data.json").write_text(json.dumps(make_report_data("tiny", seed=1)))  # as if in a run folder
    page = render_report(out).read_text()
    assert "<section id=knowledge>" in page and "href='#knowledge'" in page
    (out / "report_data.json").unlink()
    (out / "report.html").unlink()
    (out / "figures.json").unlink()
    code, _, err = _run(["--model", str(setup["model"]), "--sae", str(setup["resid"]), "--facts",
                         str(setup["facts"]), "--out", str(out), *FAST], capsys)
    assert code == 2 and "--overwrite" in err


@pytest.mark.usefixtures("one_thread")
def test_the_api_returns_the_result_it_writes(setup, tmp_path):
    from monosemantic import log
    from monosemantic.experiments.knowledge import EditsSkipped, KnowledgeConfig, run
    from monosemantic.report.sections.knowledge import KIND

    cfg = KnowledgeConfig(sae=[setup["resid"]], out=tmp_path / "api", model=str(setup["model"]),
                          facts=str(setup["facts"]), n=[1], edit_facts=0, unrelated=8, test_units=2, device="cpu")
    with log.quiet():
        result = run(cfg)
    assert result.n_facts == 4 and result.edit == EditsSkipped("--edit-facts 0")
    assert [s.units for s in result.related_test.summary] == ["residual:" + tiny.RESID, "neurons"]
    assert KIND.find(tmp_path / "api") == result.to_json()  # the typed result is what knowledge.json holds
    assert result.summary()[0] == "4 of 4 facts known, 9 prompts" and result.summary()[-1] == str(cfg.out)


@pytest.mark.parametrize("case, needle", [
    ("wide", "reads width 16 but hook 'model.layers.1' of this model gives width 32"),
    ("elsewhere", "unknown hook 'model.layers.7'"),
    ("other_model", "was trained on model 'minilm'"),
    ("missing_fields", "lacks answer"),
    ("unknown_relation", "unknown relation 'discovered_by'"),
    ("unknown_facts", "unknown facts 'capitols'"),
    ("never_right", "answers none of the 1 facts"),
])
@pytest.mark.usefixtures("one_thread")
def test_bad_input_is_one_line_and_exit_2(setup, tmp_path, capsys, case, needle):
    sae, facts = setup["resid"], str(setup["facts"])
    if case in ("wide", "elsewhere", "other_model"):
        sae = setup[case]
    elif case == "missing_fields":
        facts = str(tiny.write_facts(tmp_path / "f.jsonl", [{"subject": "A", "relation": "capitals",
                                                             "prompt": "The capital of A is"}]))
    elif case == "unknown_relation":
        facts = str(tiny.write_facts(tmp_path / "f.jsonl", [{"subject": "A", "relation": "discovered_by",
                                                             "answer": "x"}]))
    elif case == "unknown_facts":
        facts = "capitols"
    elif case == "never_right":
        facts = str(tiny.write_facts(tmp_path / "f.jsonl", [{"subject": "Xland", "relation": "capitals",
                                                             "prompt": "The capital of Xland is", "answer": "Rome"}]))
    code, _, err = _run(["--model", str(setup["model"]), "--sae", str(sae), "--facts", facts, "--out",
                         str(tmp_path / "out"), *FAST], capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]  # progress lines may come first
    assert needle in last and last.startswith("monosemantic knowledge: error: "), err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_options_are_refused_before_loading(tmp_path, setup, capsys):
    for args, needle in ((["--n", "0"], "--n must be at least 1"), (["--edit-mode", "rows"], "unknown --edit-mode"),
                         (["--format", "poem"], "unknown --format"), (["--edit-threshold", "1.5"], "[0, 1)")):
        code, _, err = _run(["--sae", str(setup["resid"]), "--out", str(tmp_path / "o"), *args], capsys)
        assert code == 2 and needle in err and err.count("\n") == 1

"""The report's sections are found by one scan of ``monosemantic.report.sections``; a stand-alone result in a run
folder becomes a section of the report and a page of its own; the templates' layout rule; the figure drawings."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

import monosemantic.report.sections as sections_pkg
from fixtures.report_run import make_report_data
from monosemantic.experiments.report import ReportConfig, run
from monosemantic.report import render_report, result_page, write_result_page
from monosemantic.report.figures import figure_specs
from monosemantic.report.plots import DRAWINGS
from monosemantic.report.sections import atoms, names, section, sections, steer
from monosemantic.report.templating import ENV, spaceless
from test_report import HOSTILE, write_run


def test_every_section_module_is_found_with_its_template() -> None:
    modules = [importlib.import_module(f"monosemantic.report.sections.{m.name}")
               for m in pkgutil.iter_modules(sections_pkg.__path__)]
    shown = [m for m in modules if hasattr(m, "context")]
    assert {s.kind for s in sections()} == {m.KIND for m in shown} and names.KIND not in {s.kind for s in sections()}
    assert [s.order for s in sections()] == sorted(s.order for s in sections())
    assert [s.anchor for s in sections()] == ["compare", "synth", "atoms", "steer", "knowledge", "vision-steer"]
    for s in sections():
        assert ENV.get_template(s.template) is not None
        assert section(s.kind) is s
    with pytest.raises(LookupError, match="no report section shows names results"):
        section(names.KIND)


def _atoms_result(model: str) -> dict[str, Any]:
    unit = {"kind": "neurons", "id": "neurons", "n_units": 4, "mean_k": 3.5, "r2": 1.0, "r2_whitened": 1.0,
            "unique_aip": 0.25, "q_star_aip": 0.25, "unique_euclidean": 0.5, "q_star_euclidean": 0.5,
            "coherence_aip": 0.1, "coherence_euclidean": None}
    return {**atoms.KIND.header(), "model": model, "hook": "h", "width": 4, "dataset": "d", "metric_rows": 1000,
            "scored_rows": 200, "singular_moment": [], "units": [unit], "angles": {"activations": None}}


def test_a_result_in_the_run_folder_is_a_section_and_a_page(tmp_path: Path) -> None:
    data = make_report_data("tiny")
    data["tracks"] = data["tracks"][1:]
    run_dir = write_run(tmp_path / "run", data)
    (run_dir / "atoms").mkdir()
    (run_dir / "atoms" / "atoms.json").write_text(json.dumps(_atoms_result(HOSTILE)))
    page = render_report(run_dir).read_text()
    assert "<li><a href='#atoms'>Neurons, features and atoms</a></li>" in page
    body = re.search(r"<section id=atoms>.*?</section>", page, re.S).group(0)
    assert "H = 4" in body and "1,000 rows" in body and "<td class=n>3.5</td>" in body and "<td class=n>–</td>" in body
    assert HOSTILE not in page and "&lt;/script&gt;" in body  # the model's name is shown as text
    (tmp_path / "out").mkdir()  # a result's folder, which its experiment made
    path = write_result_page(tmp_path / "out", atoms.KIND, _atoms_result("m"))
    assert path == tmp_path / "out" / "atoms.html"
    alone = path.read_text()
    assert alone.startswith("<!doctype html><html lang=en><head><meta charset=utf-8><title>monosemantic atoms</title>")
    assert "<main><section id=atoms>" in alone and "<script" not in alone
    with pytest.raises(LookupError, match="steer results have no page of their own"):
        write_result_page(tmp_path / "out", steer.KIND, {})
    assert result_page(atoms.KIND, _atoms_result("m")) == alone


def test_a_result_of_another_kind_is_no_section(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", {**make_report_data("tiny"), "tracks": []})
    (run_dir / "atoms.json").write_text(json.dumps({**_atoms_result("m"), "format": "monosemantic-synth"}))
    page = render_report(run_dir).read_text()
    assert "href='#atoms'" not in page and "<section id=atoms>" not in page


def test_the_report_experiment_returns_the_page(tmp_path: Path) -> None:
    data = make_report_data("tiny")
    data["tracks"] = data["tracks"][1:]
    run_dir = write_run(tmp_path / "run", data)
    result = run(ReportConfig(run_dir=run_dir, out=tmp_path / "r.html"))
    assert result.report == tmp_path / "r.html" and result.report.is_file() and result.screenshot is None
    assert result.summary() == [str(tmp_path / "r.html")]


def test_line_breaks_in_templates_vanish_next_to_tags_and_are_spaces_in_text() -> None:
    source = "<p>one\n    two {{ x }}\n    three</p>\n  <i>a</i>\n  {% if y %}\n    b{% endif %}\nc\n<b>d</b>"
    assert spaceless(source) == "<p>one two {{ x }} three</p><i>a</i>{% if y %}b{% endif %}c<b>d</b>"


def test_every_figure_kind_has_its_drawing() -> None:
    assert {spec.kind for spec in figure_specs(make_report_data("tiny"))} == set(DRAWINGS)

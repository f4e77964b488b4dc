"""The report in a real browser: headless Chromium loads it from disk, runs its script, logs no error.

Chromium comes from PATH (or MONOSEMANTIC_CHROMIUM); where it is missing the set-up installs it with apt when it
can (root with apt-get), else every test here skips with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fixtures.browser import chromium_or_reason, load_page
from fixtures.report_run import make_report_data
from monosemantic.experiments.report import ReportConfig, run
from monosemantic.report import render_report, screenshot
from monosemantic.report.browser import CHROMIUM_ENV
from test_report import HOSTILE, hostile_data, write_run


@pytest.fixture(scope="session")
def chromium() -> str:
    path, reason = chromium_or_reason()
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The tiny synthetic run with user text replaced by hostile markup everywhere it can appear."""
    data = hostile_data()
    return data, render_report(write_run(tmp_path_factory.mktemp("browser-run"), data))


@pytest.fixture(scope="module")
def page(report: tuple[dict[str, Any], Path], chromium: str) -> Any:
    return load_page(report[1], chromium=chromium)


def _body_attrs(dom: str) -> str:
    return re.search(r"<body([^>]*)>", dom).group(1)


def test_page_renders_every_part(report: tuple[dict[str, Any], Path], page: Any) -> None:
    data, _ = report
    dom = page.dom
    assert 'data-ready="1"' in _body_attrs(dom), "report.js did not run to its end"
    for t, track in enumerate(data["tracks"]):
        summary = re.search(rf'<table class="summary" id="t{t}-summary-table">(.*?)</table>', dom, re.S)
        assert summary and summary.group(1).count("<tr class=") == len(track["unit_sets"])
        assert f'id="t{t}-plots"' in dom
        # The features table is built by script: its body must hold rows, 50 to a page.
        table = re.search(rf'<div class="ftable" data-track="{t}">.*?<tbody>(.*?)</tbody>', dom, re.S)
        assert table and table.group(1).count("<tr>") == min(50, len(track["features"]))
    plots = re.findall(r'<figure class="plot"[^>]*>.*?<img src="data:image/png;base64,', dom, re.S)
    assert len(plots) >= 8
    assert len(re.findall(r'<article class="card"', dom)) == sum(len(t["cards"]) for t in data["tracks"])


def test_table_is_sorted_by_ms_by_default(report: tuple[dict[str, Any], Path], page: Any) -> None:
    data, _ = report
    track = data["tracks"][0]
    shown = [f for f in track["features"] if f["ms"] is not None and f.get("active_items", 16) >= 16]
    best = max(shown, key=lambda f: f["ms"])  # the table opens filtered to units active on >= 16 items
    table = re.search(r'<div class="ftable" data-track="0">.*?<tbody>(.*?)</tbody>', page.dom, re.S).group(1)
    first = re.search(r"<tr>(.*?)</tr>", table, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", first, re.S)]
    assert cells[:2] == [best["set"], str(best["id"])]
    assert float(cells[2]) == pytest.approx(best["ms"], rel=1e-3)


def test_no_errors_and_no_injected_script(page: Any) -> None:
    assert page.errors == [], page.errors
    assert re.search(r'<pre id="js-errors" hidden="">\s*</pre>', page.dom), "the page's error hook caught an error"
    assert "data-pwned" not in _body_attrs(page.dom)
    title = re.search(r"<title>(.*?)</title>", page.dom, re.S).group(1)
    assert "&lt;/script&gt;" in title and "<script" not in title  # shown as text
    assert HOSTILE.split("<")[0] == ""  # the hostile text really starts with markup


def test_error_detection_works(tmp_path: Path, chromium: str) -> None:
    """The no-error checks above would catch a broken script: both the console and the page's hook see it."""
    run = write_run(tmp_path / "run", _text_only())
    path = render_report(run)
    broken = path.read_text().replace("document.body.setAttribute(\"data-ready\"", "undefinedFunction();(0")
    path.write_text(broken)
    loaded = load_page(path, chromium=chromium)
    assert loaded.errors and any("undefinedFunction" in line for line in loaded.errors)
    assert re.search(r'<pre id="js-errors">Error: .*undefinedFunction', loaded.dom)


def test_screenshot(report: tuple[dict[str, Any], Path], chromium: str, tmp_path: Path) -> None:
    png = screenshot(report[1], tmp_path / "report.png", width=1200, height=900, chromium=chromium)
    print(f"screenshot: {png}")
    img = np.asarray(Image.open(png).convert("RGB"), dtype=np.float32)
    assert img.shape == (900, 1200, 3)
    # A real page, not a blank or error screen: mostly white, with dark text and coloured tiles somewhere.
    assert (img.mean(axis=2) > 240).mean() > 0.5
    assert (img.mean(axis=2) < 80).mean() > 0.005
    assert img.std() > 20


def _text_only() -> dict[str, Any]:
    data = make_report_data("tiny")
    data["tracks"] = data["tracks"][1:]
    return json.loads(json.dumps(data))


def test_the_report_command_takes_its_screenshot(tmp_path: Path, chromium: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHROMIUM_ENV, chromium)
    run_dir = write_run(tmp_path / "run", _text_only())
    result = run(ReportConfig(run_dir=run_dir, screenshot=tmp_path / "top.png"))
    assert result.summary() == [f"screenshot: {tmp_path / 'top.png'}", str(run_dir / "report.html")]
    assert Image.open(tmp_path / "top.png").size == (1400, 1000)

"""report stage: one self-contained HTML report (plus ``figures.json``) from a run's ``report_data.json``.

``build_report_data(title, tracks)`` makes the report data from a run's score folders; ``render_report(run_dir)``
reads it, finds the run's stand-alone results (one section each, see ``monosemantic.report.sections``) and writes
``RUN_DIR/report.html``; ``write_result_page(folder, kind, result)`` writes one result's section as a page of its
own; ``screenshot(html, png)`` photographs a page with headless Chromium.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the names are, for readers and the type checker; at run time they load on first use
    from monosemantic.report.browser import find_chromium, screenshot
    from monosemantic.report.data import FORMAT_VERSION, ReportData, ScoredTrack, build_report_data, load_report_data
    from monosemantic.report.render import figures_path, render_report, result_page, write_result_page

_HOMES = {
    "find_chromium": "browser", "screenshot": "browser",
    "FORMAT_VERSION": "data", "ReportData": "data", "ScoredTrack": "data", "build_report_data": "data",
    "load_report_data": "data",
    "figures_path": "render", "render_report": "render", "result_page": "render", "write_result_page": "render",
}
"""Where each name of this package lives. Importing one module of the package (``report.scores``, a section)
then loads that module alone, not matplotlib and jinja2 with the renderer."""

__all__ = [
    "FORMAT_VERSION",
    "ReportData",
    "ScoredTrack",
    "build_report_data",
    "figures_path",
    "find_chromium",
    "load_report_data",
    "render_report",
    "result_page",
    "screenshot",
    "write_result_page",
]


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value

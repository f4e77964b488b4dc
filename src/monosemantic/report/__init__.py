"""report stage: one self-contained HTML report (plus ``figures.json``) from a run's ``report_data.json``.

``build_report_data(title, tracks)`` makes the report data from a run's score folders; ``render_report(run_dir)``
reads it, finds the run's stand-alone results (one section each, see ``monosemantic.report.sections``) and writes
``RUN_DIR/report.html``; ``write_result_page(folder, kind, result)`` writes one result's section as a page of its
own; ``screenshot(html, png)`` photographs a page with headless Chromium.
"""

from monosemantic.report.browser import find_chromium, screenshot
from monosemantic.report.data import FORMAT_VERSION, ReportData, ScoredTrack, build_report_data, load_report_data
from monosemantic.report.render import figures_path, render_report, result_page, write_result_page

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

"""report stage: one self-contained HTML report (plus ``figures.json``) from a run's ``report_data.json``.

``render_report(run_dir)`` reads the data the pipeline wrote after scoring and writes ``RUN_DIR/report.html``;
``screenshot(html, png)`` photographs it with headless Chromium.
"""

from monosemantic.report.browser import find_chromium, load_page, screenshot
from monosemantic.report.data import FORMAT_VERSION, load_report_data
from monosemantic.report.render import figures_path, render_report

__all__ = [
    "FORMAT_VERSION",
    "figures_path",
    "find_chromium",
    "load_page",
    "load_report_data",
    "render_report",
    "screenshot",
]

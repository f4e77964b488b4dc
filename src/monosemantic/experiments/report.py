"""``monosemantic report RUN_DIR``: render a run's scores as one self-contained HTML page (plus ``figures.json``),
optionally photograph it with headless Chromium and open it in a browser."""

from __future__ import annotations

import webbrowser
from dataclasses import dataclass
from pathlib import Path

from monosemantic.experiment import Command, Result, Summary
from monosemantic.report import render_report, screenshot


@dataclass(frozen=True)
class ReportConfig:
    """Render a run folder as one self-contained HTML report."""

    run_dir: Path
    """run folder written by `monosemantic run CONFIG`"""
    out: Path | None = None
    """write the HTML here instead of RUN_DIR/report.html"""
    open: bool = False
    """open the report in the default web browser"""
    screenshot: Path | None = None
    """also save a 1400-pixel-wide screenshot of the top of the report (needs Chromium)"""


@dataclass(frozen=True)
class ReportResult(Result):
    """Where the report went."""

    report: Path
    """The HTML page (its figure data, ``figures.json``, lies beside it)."""
    screenshot: Path | None
    """The screenshot, when one was asked for."""
    opened: bool | None
    """Whether a web browser was started (None: none was asked for)."""

    def write(self, folder: Path) -> None:
        """Nothing more to save: ``run`` writes the page and its figure data where ``--out`` says, each atomically
        (the page may go into a folder that holds other files, so it is not staged as a folder)."""

    def summary(self) -> Summary:
        lines = [] if self.screenshot is None else [f"screenshot: {self.screenshot}"]
        if self.opened is False:
            lines.append("note: no web browser could be started; open the file below by hand")
        return [*lines, str(self.report)]


def run(cfg: ReportConfig) -> ReportResult:
    """Render ``cfg.run_dir`` (see ``monosemantic.report.render_report``), then the screenshot and the browser."""
    path = render_report(cfg.run_dir, cfg.out)
    shot = screenshot(path, cfg.screenshot) if cfg.screenshot else None
    opened = webbrowser.open(path.resolve().as_uri()) if cfg.open else None
    return ReportResult(report=path, screenshot=shot, opened=opened)


COMMAND = Command(
    "report", ReportConfig, run,
    description="Read RUN_DIR/report_data.json (written by `monosemantic run` after scoring) and write "
    "RUN_DIR/report.html: a summary of every SAE against the raw neurons, plots, a sortable features "
    "table and a card per selected feature. The page works offline; the data of every plot goes to "
    "figures.json beside it. The last line printed is the report's path.",
    positional=("run_dir",), metavars={"out": "FILE", "screenshot": "PNG"},
)

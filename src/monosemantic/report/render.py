"""``render_report``: one self-contained HTML file (plots, images, CSS and JS inline) plus ``figures.json``.

The page is the run's tracks (from ``report_data.json``) followed by one section per stand-alone result found in
the run folder: every section module of ``monosemantic.report.sections`` is asked, in one loop, for its result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from markupsafe import Markup

from monosemantic.errors import UserError
from monosemantic.files import write_atomic
from monosemantic.report.blocks import kpi_context, track_context
from monosemantic.report.cards import ImageClasses
from monosemantic.report.data import DATA_NAME, FORMAT_VERSION, RUN_NAME, load_report_data
from monosemantic.report.figures import FigureSpec, figure_specs
from monosemantic.report.plots import png
from monosemantic.report.sections import Section, section, sections
from monosemantic.report.sections.names import attach_names, find_names
from monosemantic.report.templating import ENV, asset, render
from monosemantic.results import JSONDict, ResultKind

Pngs = dict[str, tuple[str, int]]
"""Figure id -> (PNG data URI, width in CSS pixels)."""
Found = tuple[Section, JSONDict]
"""A section and the result it shows."""

REPORT_NAME = "report.html"
GENERATOR_MARK = "monosemantic report"
FIGURES_NAME = "figures.json"


def figures_path(html_path: Path) -> Path:
    """The figure data of ``html_path``: ``figures.json`` beside ``report.html``, else ``NAME.figures.json``."""
    if html_path.name == REPORT_NAME:
        return html_path.with_name(FIGURES_NAME)
    return html_path.with_name(html_path.stem + "." + FIGURES_NAME)


def found_sections(run_dir: Path | str) -> list[Found]:
    """Every stand-alone result in the run folder that a section shows, in page order."""
    return [(s, result) for s in sections() if (result := s.kind.find(run_dir)) is not None]


def render_report(run_dir: Path | str, out: Path | str | None = None) -> Path:
    """Render ``RUN_DIR/report_data.json`` to ``out`` (default ``RUN_DIR/report.html``) and return its path.

    ``out`` may be a file or an existing folder. The figure data goes beside the HTML (see ``figures_path``). Both
    files are written under a temporary name and renamed, so an interrupted render never leaves half a report.
    """
    run_dir = Path(run_dir)
    data = attach_names(load_report_data(run_dir), find_names(run_dir))
    found = found_sections(run_dir)
    html_path = run_dir / REPORT_NAME if out is None else Path(out)
    if html_path.is_dir():
        html_path = html_path / REPORT_NAME
    if out is not None:  # RUN_DIR/report.html is the run's own; a chosen path may hold anything
        _check_replaceable(html_path, f"<meta name=generator content='{GENERATOR_MARK} (format")
        _check_replaceable(figures_path(html_path), '"figures"')
    html_path.parent.mkdir(parents=True, exist_ok=True)
    specs = figure_specs(data)
    figures_json = {"format_version": FORMAT_VERSION, "title": data.get("title"),
                    "figures": [spec.to_json() for spec in specs]}
    page = build_html(data, found, {spec.id: png(spec) for spec in specs}, specs, figures_path(html_path).name)
    write_atomic(figures_path(html_path), json.dumps(figures_json, indent=1, allow_nan=False))
    write_atomic(html_path, page)
    return html_path


def _check_replaceable(path: Path, mark: str) -> None:
    """An existing file is replaced only if it is an earlier report (or its figure data): never a user's file,
    and never the run's report_data.json."""
    if path.name in (DATA_NAME, RUN_NAME):
        raise UserError(f"{path} is the run's own record; choose another --out for the report")
    if not path.exists():
        return
    head = ""
    if path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    if mark not in head:
        raise UserError(f"{path} exists and is not a monosemantic report; choose another --out")


def build_html(data: JSONDict, found: Sequence[Found] = (), pngs: Pngs | None = None,
               specs: Sequence[FigureSpec] = (), figures_name: str = FIGURES_NAME) -> str:
    """The whole page as one string (no external resources): the tracks of ``data``, then the ``found`` sections."""
    images = ImageClasses()
    pngs = pngs or {}
    tracks = data["tracks"]
    views = [track_context(tr, t, [s for s in specs if s.id.startswith(f"t{t}-")], pngs, images)
             for t, tr in enumerate(tracks)]
    meta = [x for x in (
        data.get("created"),
        f"monosemantic {data['monosemantic_version']}" if data.get("monosemantic_version") else None,
        f"{len(tracks)} track{'s' if len(tracks) != 1 else ''}",
    ) if x]
    return render(
        "page.html.j2", title=str(data.get("title") or "monosemantic report"), generator=GENERATOR_MARK,
        format_version=FORMAT_VERSION, css=asset("report.css"), js=asset("report.js"), meta=meta,
        headline=data.get("headline") or [], kpi_tiles=[kpi_context(tr, t) for t, tr in enumerate(tracks)],
        tracks=views, images=images.css(), figures_name=figures_name,
        sections=[{"anchor": s.anchor, "title": s.kind.title, "html": section_html(s, result)} for s, result in found],
    )


def section_html(s: Section, result: JSONDict) -> Markup:
    """The HTML of section ``s`` showing ``result`` (a ``<section>`` element)."""
    return Markup(ENV.get_template(s.template).render(anchor=s.anchor, **s.context(result)))


def result_page(kind: ResultKind, result: JSONDict) -> str:
    """The section that shows results of ``kind`` as a page of its own (CSS inline, works offline)."""
    s = section(kind)
    module = ENV.get_template(s.template).make_module({"anchor": s.anchor, **s.context(result)})
    title = getattr(module, "page_title", f"monosemantic {kind.name}")
    return render("result_page.html.j2", title=title, css=asset("report.css"),
                  style=getattr(module, "page_style", ""), body=module)


def write_result_page(folder: Path | str, kind: ResultKind, result: JSONDict) -> Path:
    """``FOLDER/<kind.page>``: the result's section on a page of its own, written atomically."""
    if kind.page is None:
        raise LookupError(f"{kind.name} results have no page of their own")
    path = Path(folder) / kind.page
    write_atomic(path, result_page(kind, result))
    return path

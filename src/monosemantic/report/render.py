"""``render_report``: one self-contained HTML file (plots, images, CSS and JS inline) plus ``figures.json``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from monosemantic.errors import UserError
from monosemantic.files import write_atomic
from monosemantic.report.blocks import esc, facts, features_block, kpi_tiles, summary_table
from monosemantic.report.cards import ImageClasses, cards_block
from monosemantic.report.data import DATA_NAME, FORMAT_VERSION, load_report_data
from monosemantic.report.figures import draw, figure_specs, to_png_data_uri
from monosemantic.report.hierarchy_section import hierarchy_block
from monosemantic.report.sections.atoms import atoms_section, find_atoms
from monosemantic.report.sections.compare import compare_section, find_compare
from monosemantic.report.sections.knowledge import find_knowledge, knowledge_section
from monosemantic.report.sections.names import attach_names, find_names, names_note
from monosemantic.report.sections.steer import find_steer, steer_section
from monosemantic.report.sections.steer_measure import find_vision_steer, vision_steer_section
from monosemantic.report.sections.synth import find_synth, synth_section

Pngs = dict[str, tuple[str, int]]
"""Figure id -> (PNG data URI, width in CSS pixels)."""

REPORT_NAME = "report.html"
GENERATOR_MARK = "monosemantic report"
FIGURES_NAME = "figures.json"

# Installed before anything else runs, so even an error while the page's own script loads is caught and shown.
_ERROR_HOOK = (
    "<script>window.__reportErrors=[];window.addEventListener('error',function(e){"
    "window.__reportErrors.push(String(e.message||e));var n=document.getElementById('js-errors');"
    "if(n){n.hidden=false;n.textContent+='Error: '+(e.message||e)+'\\n';}});</script>"
)


def figures_path(html_path: Path) -> Path:
    """The figure data of ``html_path``: ``figures.json`` beside ``report.html``, else ``NAME.figures.json``."""
    if html_path.name == REPORT_NAME:
        return html_path.with_name(FIGURES_NAME)
    return html_path.with_name(html_path.stem + "." + FIGURES_NAME)


def render_report(run_dir: Path | str, out: Path | str | None = None) -> Path:
    """Render ``RUN_DIR/report_data.json`` to ``out`` (default ``RUN_DIR/report.html``) and return its path.

    ``out`` may be a file or an existing folder. The figure data goes beside the HTML (see ``figures_path``). Both
    files are written under a temporary name and renamed, so an interrupted render never leaves half a report.
    """
    run_dir = Path(run_dir)
    data = attach_names(load_report_data(run_dir), find_names(run_dir))
    if (compared := find_compare(run_dir)) is not None:
        data = {**data, "compare": compared}
    if (synth := find_synth(run_dir)) is not None:
        data = {**data, "synth": synth}
    if (atoms := find_atoms(run_dir)) is not None:
        data = {**data, "atoms": atoms}
    if (steered := find_steer(run_dir)) is not None:
        data = {**data, "steer": steered}
    if (known := find_knowledge(run_dir)) is not None:
        data = {**data, "knowledge": known}
    if (vsteer := find_vision_steer(run_dir)) is not None:
        data = {**data, "steer_measure": vsteer}
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
    page = build_html(data, {spec.id: _png(spec) for spec in specs}, specs, figures_path(html_path).name)
    write_atomic(figures_path(html_path), json.dumps(figures_json, indent=1, allow_nan=False))
    write_atomic(html_path, page)
    return html_path


def _check_replaceable(path: Path, mark: str) -> None:
    """An existing file is replaced only if it is an earlier report (or its figure data): never a user's file,
    and never the run's report_data.json."""
    if path.name in (DATA_NAME, "run.json"):
        raise UserError(f"{path} is the run's own record; choose another --out for the report")
    if not path.exists():
        return
    head = ""
    if path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    if mark not in head:
        raise UserError(f"{path} exists and is not a monosemantic report; choose another --out")


def _png(spec: Any) -> tuple[str, int]:
    """The figure as a PNG data URI and its width in CSS pixels (96 per inch, so every plot's text is one size)."""
    fig = draw(spec)
    try:
        return to_png_data_uri(fig), round(fig.get_size_inches()[0] * 96)
    finally:
        fig.clear()


def _asset(name: str) -> str:
    return resources.files("monosemantic.report").joinpath(name).read_text(encoding="utf-8")


def build_html(data: dict[str, Any], pngs: Pngs, specs: list[Any], figures_name: str) -> str:
    """The whole page as one string (no external resources)."""
    images = ImageClasses()
    title = str(data.get("title") or "monosemantic report")
    tracks = data["tracks"]
    toc = "".join(
        f"<li><a href='#t{t}'>{esc(tr['name'])}</a><ul>"
        f"<li><a href='#t{t}-summary'>Summary</a></li><li><a href='#t{t}-plots'>Plots</a></li>"
        f"<li><a href='#t{t}-features'>Features</a></li><li><a href='#t{t}-cards'>Feature cards</a></li></ul></li>"
        for t, tr in enumerate(tracks)
    )
    headline = "".join(f"<li>{esc(line)}</li>" for line in data.get("headline") or [])
    overview = (
        "<section id=overview><h2>Overview</h2>"
        + (f"<ul class=headline>{headline}</ul>" if headline else "")
        + "".join(kpi_tiles(tr, t) for t, tr in enumerate(tracks))
        + "<p class=legend-note>MS: MonoSemanticity score (activation-weighted similarity of the inputs a unit fires"
        " on, in an external encoder's space; higher is more monosemantic). FMS: feature monosemanticity score of the"
        " best single unit for a labelled concept (@1 and @5: after removing the 1 or 5 best units).</p></section>"
    )
    body = "".join(_track(tr, t, pngs, specs, images) for t, tr in enumerate(tracks))
    if data.get("compare"):  # a `monosemantic compare` result saved in the run folder
        body += compare_section(data["compare"])
        toc += "<li><a href='#compare'>Comparing feature spaces</a></li>"
    if data.get("synth"):  # a `monosemantic synth` sweep saved in the run folder
        body += synth_section(data["synth"])
        toc += "<li><a href='#synth'>Synthetic superposition</a></li>"
    if data.get("atoms"):  # a `monosemantic atoms` result saved in the run folder
        body += atoms_section(data["atoms"])
        toc += "<li><a href='#atoms'>Neurons, features and atoms</a></li>"
    if data.get("steer"):  # the [[steer]] tracks of the run
        body += steer_section(data["steer"])
        toc += "<li><a href='#steer'>Steering: vanilla SAE vs G-SAE</a></li>"
    if data.get("knowledge"):  # a `monosemantic knowledge` result saved in the run folder
        body += knowledge_section(data["knowledge"])
        toc += "<li><a href='#knowledge'>Knowledge: features vs neurons</a></li>"
    if data.get("steer_measure"):  # a `monosemantic steer-measure` result saved in the run folder
        body += vision_steer_section(data["steer_measure"])
        toc += "<li><a href='#vision-steer'>Steering through a vision encoder</a></li>"
    meta = " · ".join(
        esc(x) for x in (
            data.get("created"),
            f"monosemantic {data['monosemantic_version']}" if data.get("monosemantic_version") else None,
            f"{len(tracks)} track{'s' if len(tracks) != 1 else ''}",
        ) if x
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<meta name=generator content='{GENERATOR_MARK} (format {FORMAT_VERSION})'>"
        f"<title>{esc(title)}</title>{_ERROR_HOOK}<style>{_asset('report.css')}</style>"
        f"<style>{images.css()}</style></head><body>"
        "<pre id=js-errors hidden></pre>"
        f"<header class=top><div class=brand>monosemantic report</div><h1>{esc(title)}</h1>"
        f"<p class=meta>{meta}</p></header>"
        f"<div class=layout><nav class=toc aria-label=Contents><div class=toc-title>Contents</div><ul>"
        f"<li><a href='#overview'>Overview</a></li>{toc}</ul></nav><main>{overview}{body}"
        f"<footer>Every plot's data is in <a href='{esc(figures_name)}'>{esc(figures_name)}</a> beside this file. "
        "Generated by monosemantic.</footer></main></div>"
        f"<script>{_asset('report.js')}</script></body></html>"
    )


def _track(track: dict[str, Any], t: int, pngs: Pngs, specs: list[Any], images: ImageClasses) -> str:
    card_keys = {(str(c["set"]), str(c["id"])) for c in track.get("cards") or []}
    figures = "".join(
        f"<figure class=plot id='{esc(spec.id)}'><figcaption><b>{esc(spec.title)}</b> {esc(spec.caption)}"
        f"</figcaption><img src='{pngs[spec.id][0]}' width={pngs[spec.id][1]} alt='{esc(spec.title)}'>"
        "</figure>"
        for spec in specs
        if spec.id.startswith(f"t{t}-")
    ) or "<p class=note>No plot data in this run.</p>"
    n_features = len(track.get("features") or [])
    n_cards = len(track.get("cards") or [])
    return (
        f"<section class=track id='t{t}'><h2>{esc(track['name'])} <span class=modality>{esc(track['modality'])}"
        f"</span></h2>{facts(track)}"
        f"<h3 id='t{t}-summary'>Summary</h3>{summary_table(track, t)}{hierarchy_block(track, t)}"
        f"<h3 id='t{t}-plots'>Plots</h3><div class=plots>{figures}</div>"
        f"<h3 id='t{t}-features'>Features <small>{n_features:,} units</small></h3>"
        f"{names_note(track)}{features_block(track, t, card_keys)}"
        f"<h3 id='t{t}-cards'>Feature cards <small>{n_cards:,} selected units</small></h3>"
        f"{cards_block(track, t, images)}</section>"
    )

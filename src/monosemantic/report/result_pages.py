"""What the sections of stand-alone results (compare, synth, atoms) share: finding their JSON in a run folder, a
table of per-row values, a figure block, and the section written as a page of its own beside the JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from monosemantic.files import write_atomic
from monosemantic.report.blocks import esc


def find_result(run_dir: Path | str, name: str, fmt: str) -> dict[str, Any] | None:
    """``RUN_DIR/NAME`` or ``RUN_DIR/<stem>/NAME`` when it holds JSON whose ``format`` is ``fmt``; else None."""
    stem = Path(name).stem
    for path in (Path(run_dir) / name, Path(run_dir) / stem / name):
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                return None
            return data if data.get("format") == fmt else None
    return None


def _cell(value: Any, digits: int | None) -> str:
    if value is None:
        return "–"
    if digits is None or isinstance(value, str):
        return esc(value)
    return f"{value:.{digits}f}"


def value_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, int | None]]) -> str:
    """A summary table: one row per dict, columns (key, header, decimals or None for text); missing values '–'."""
    head = "".join(f"<th>{esc(label)}</th>" for _, label, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td class=n>{_cell(r.get(key), d)}</td>" for key, _, d in columns) + "</tr>"
        for r in rows
    )
    return (f"<div class=table-wrap><table class=summary><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            "</table></div>")


def figure_blocks(figures: Sequence[tuple[str, str, str]]) -> str:
    """(title, caption, PNG data URI) of each plot as the report's figure blocks."""
    return "".join(
        f"<figure class=plot><figcaption><b>{esc(t)}</b> {esc(c)}</figcaption><img src='{uri}' alt='{esc(t)}'>"
        "</figure>"
        for t, c, uri in figures
    )


def write_page(folder: Path | str, page_name: str, title: str, section: str) -> Path:
    """``FOLDER/PAGE_NAME``: one section on a page of its own (CSS inline, works offline)."""
    css = resources.files("monosemantic.report").joinpath("report.css").read_text(encoding="utf-8")
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>"
            f"<style>{css}</style></head><body><main>{section}</main></body></html>")
    path = Path(folder) / page_name
    write_atomic(path, page)
    return path

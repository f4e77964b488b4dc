"""Automated names in the report: on feature cards, as a searchable column of the features table, and a summary
line per track, escaped like every other run text; runs without names.json render as before."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fixtures.report_run import make_report_data
from monosemantic.report import render_report
from monosemantic.report.sections.names import find_names
from test_report import HOSTILE, islands, write_run


def _names_doc(track: dict[str, Any], named: list[tuple[str, int, str]]) -> dict[str, Any]:
    rows = [{"set": s, "latent": j, "name": n, "description": f"about {n}", "parse_ok": True,
             "judges": {"minilm": {"precision": 0.8, "recall": 0.6, "f1": 0.6857}}} for s, j, n in named]
    rows.append({"set": named[0][0], "latent": 999, "name": "", "description": "", "parse_ok": False,
                 "judges": {}})
    return {"format": "monosemantic-names", "version": 1, "model": track["model"], "hook": track["hook"],
            "dataset": track["dataset"], "latents": rows,
            "summary": {"namer": "smollm2", "n_latents": len(rows), "parse_failure_rate": 1 / len(rows),
                        "judges": {"minilm": {"names": {"f1": 0.5}, "names_parsed": {"f1": 0.6857},
                                               "control": {"f1": 0.31}}}}}


@pytest.fixture(scope="module")
def named_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    data = make_report_data("tiny", seed=1)
    run = write_run(tmp_path_factory.mktemp("named-run"), data)
    text = data["tracks"][1]
    card = text["cards"][1]
    # the first row of the table as report.js draws it: highest MS among units active on at least 16 items
    top = max((f for f in text["features"] if (f.get("active_items") or 0) >= 16 and f.get("ms") is not None),
              key=lambda f: f["ms"])
    named = [(str(card["set"]), int(card["id"]), "Football clubs"), ("neurons", 3, HOSTILE),
             (str(top["set"]), int(top["id"]), "Top table latent")]
    (run / "names").mkdir()
    (run / "names" / "names.json").write_text(json.dumps(_names_doc(text, named)))
    return data, render_report(run).read_text(encoding="utf-8")


def test_names_on_cards_and_in_the_table(named_run: tuple[dict[str, Any], str]) -> None:
    data, page = named_run
    text = data["tracks"][1]
    card = text["cards"][1]
    block = re.search(rf"<article class=card id='c1-\d+-{card['id']}'.*?</article>", page, re.S)
    assert block and "<b>Football clubs</b>" in block.group(0) and "about Football clubs" in block.group(0)
    assert "F1 (minilm) 0.69" in block.group(0)
    image_table, text_table = islands(page)
    assert "name" not in image_table  # the names file is for the text track's model, hook and dataset only
    rows = {(text_table["sets"][s], i): n for s, i, n in zip(text_table["set"], text_table["id"], text_table["name"],
                                                             strict=True)}
    assert rows[(str(card["set"]), card["id"])] == "Football clubs"
    assert rows[("neurons", 3)] == HOSTILE
    assert sum(n is not None for n in text_table["name"]) == 3  # the unparsed name is left out
    assert "or a name" in page and "data-col='name'" in page
    assert "Automated names: 4 latents" in page and "mean F1 0.69 vs 0.31 with shuffled names" in page


def test_hostile_names_are_escaped(named_run: tuple[dict[str, Any], str]) -> None:
    _, page = named_run
    for m in re.finditer(r"<div class=c-name[^>]*>(.*?)</div>", page, re.S):
        assert "<script" not in m.group(1) and "<img" not in m.group(1)
    assert "<img src=x onerror" not in page


def test_runs_without_names_are_unchanged(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", make_report_data("tiny", seed=1))
    (run / "names.json").write_text("{not json")  # a damaged or foreign names file is ignored, not fatal
    (run / "scores").mkdir()
    (run / "scores" / "names.json").write_text(json.dumps({"format": "other"}))
    assert find_names(run) == []
    page = render_report(run).read_text(encoding="utf-8")
    assert "c-name" not in page.split("</style>")[-1] and "Automated names" not in page
    assert all("name" not in t for t in islands(page))


def test_names_in_the_browser(named_run: tuple[dict[str, Any], str], tmp_path: Path) -> None:
    from fixtures.browser import chromium_or_reason, load_page

    chromium, reason = chromium_or_reason()
    if chromium is None:
        pytest.skip(reason)
    path = tmp_path / "report.html"
    path.write_text(named_run[1], encoding="utf-8")
    loaded = load_page(path, chromium=chromium)
    assert not [line for line in loaded.console if "Uncaught" in line or "Error" in line]
    assert "Top table latent</td>" in loaded.dom  # report.js drew the name column
    assert 'data-pwned' not in loaded.dom.split("<body", 1)[1].split(">", 1)[0]

"""The documentation site: a strict offline build, and every tutorial's code run as a reader would run it.

Tutorials are executed block by block in a fresh folder: ```python blocks share one namespace per page, ```bash
blocks may hold only `monosemantic ...` commands (run in-process through the CLI's `main`, which must return 0),
and a fenced block with ``title="NAME"`` (a config file) is written to NAME first. A block preceded by
``<!-- docs-test: skip (reason) -->`` is shown but not run (a hub download, `make demo`, opening a browser).
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))

FENCE = re.compile(
    r"(?P<skip><!-- docs-test: skip[^>]*-->\s*\n)?^```(?P<lang>\w+)(?P<attrs>[^\n]*)\n(?P<body>.*?)^```\s*$",
    re.M | re.S,
)


@dataclass
class Block:
    lang: str
    body: str
    title: str | None
    skip: bool
    line: int


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        title = re.search(r'title="([^"]+)"', m["attrs"])
        out.append(Block(m["lang"], m["body"], title[1] if title else None, bool(m["skip"]),
                         text.count("\n", 0, m.start("body"))))
    return out


def commands(body: str) -> list[str]:
    """The shell commands of a bash block: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip() and not line.lstrip()
            .startswith("#")]


def run_page(page: Path) -> dict[str, Any]:
    from monosemantic.cli import main

    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    for b in blocks(page):
        where = f"{page.relative_to(ROOT)}:{b.line}"
        if b.skip:
            continue
        if b.title:
            Path(b.title).parent.mkdir(parents=True, exist_ok=True)
            Path(b.title).write_text(b.body)
        elif b.lang == "python":
            start = time.perf_counter()
            exec(compile(b.body, where, "exec"), namespace)  # running the tutorial is the test
            print(f"{time.perf_counter() - start:6.1f} s  {where} (python)")
        elif b.lang == "bash":
            for cmd in commands(b.body):
                argv = shlex.split(cmd)
                assert argv[0] == "monosemantic", f"{where}: only monosemantic commands run in tests: {cmd!r}"
                start = time.perf_counter()
                err = io.StringIO()
                with contextlib.redirect_stderr(err):
                    code = main(argv[1:])
                assert code == 0, f"{where}: {cmd!r} failed with exit code {code}: {err.getvalue()[-2000:]}"
                print(f"{time.perf_counter() - start:6.1f} s  {where} {cmd[:60]}")
    return namespace


def _json(path: str) -> Any:
    return json.loads(Path(path).read_text())


# What each page promises its reader, checked on what its code left behind (files, and the page's Python names).
def _check_first(ns: dict[str, Any]) -> None:
    assert tuple(ns["batch"].shape) == (1024, 384)
    sets = _json("scores/minilm-l3/scores.json")["unit_sets"]
    assert [s["id"] for s in sets] == ["neurons", "minilm-topk"]
    assert sets[1]["width"] == 1536 and sets[1]["l0"] == 16
    assert all(math.isfinite(s["ms"]["mean"]) and 0 <= s["fms"]["fms@1"] <= 1 for s in sets)
    data = _json("runs/first/report_data.json")
    assert data["title"] == "First run" and [t["name"] for t in data["tracks"]] == ["text"]
    assert "First run" in Path("runs/first/report.html").read_text()


def _check_own(ns: dict[str, Any]) -> None:
    assert ns["store"].label_names == ["money", "sport"] and ns["store"].n_items == 200
    assert ns["sae"].cfg.d_sae == 256 and tuple(ns["items"].shape) == (200, 256)
    assert ns["ms_sae"].shape == (256,) and math.isfinite(float(ns["ms_neurons"].nanmean()))
    assert 0 <= ns["fms"].fms_mean[1] <= 1


def _check_sweeps(ns: dict[str, Any]) -> None:
    sets = {s["id"]: s for s in _json("scores/sweep/scores.json")["unit_sets"]}
    assert set(sets) == {"neurons", "topk-768-k8", "topk-768-k16", "topk-1536-k8", "topk-1536-k16"}
    assert all(sets[f"topk-{w}-k{k}"]["k"] == k for w in (768, 1536) for k in (8, 16))
    with open("scores/sweep/units.csv") as f:
        assert sum(1 for _ in f) == 1 + 384 + 2 * 768 + 2 * 1536


def _check_steering(ns: dict[str, Any]) -> None:
    rows = [json.loads(line) for line in Path("runs/steer.jsonl").read_text().splitlines()]
    assert [r["alpha"] for r in rows] == [0.1, 0.3] and all(r["latents"] == [0] for r in rows)
    assert all(r["baseline"] == rows[0]["baseline"] for r in rows)  # one unsteered continuation per prompt
    assert [g.prompt for g in ns["steered"]] == ns["prompts"]


def _check_compare(ns: dict[str, Any]) -> None:
    result = _json("runs/compare/compare.json")
    sae_cells = {(c["a"], c["b"]) for c in result["cells"] if c["kind"] == "sae"}
    assert sae_cells == {("minilm-l2", "smol-l9"), ("minilm-l4", "smol-l9")}
    assert result["unit"] == "word" and len(ns["pairs"]) > 0


def _check_synth(ns: dict[str, Any]) -> None:
    rows = _json("runs/synth/synth.json")["rows"]
    assert len(rows) == 2 * 2 * 2 and {r["arch"] for r in rows} == {"topk", "relu"}
    assert ns["r"].mmcs_gt > 0.8  # TopK with k = 1 at S = 0.99 finds the features, as the page says
    units = {u["id"] for u in _json("runs/atoms/atoms.json")["units"]}
    assert "neurons" in units and "minilm-topk" in units and len(units) == 3


def _check_knowledge(ns: dict[str, Any]) -> None:
    result = _json("runs/knowledge/knowledge.json")
    assert result["n_facts"] >= 1 and {r["n"] for r in result["ablation"]} == {5}
    assert {e["method"] for e in result["edit"]["summary"]} >= {"neurons"}
    assert Path("runs/knowledge/knowledge.html").is_file()


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "first-ten-minutes": _check_first,
    "own-model": _check_own,
    "sweeps-and-report": _check_sweeps,
    "steering": _check_steering,
    "compare": _check_compare,
    "synth-atoms": _check_synth,
    "knowledge": _check_knowledge,
}


def test_every_tutorial_has_runnable_code_and_a_check() -> None:
    assert {p.stem for p in TUTORIALS} >= set(CHECKS), "a tutorial listed here is missing from docs/tutorials"
    for page in TUTORIALS:
        run = [b for b in blocks(page) if not b.skip]
        assert any(b.lang in ("python", "bash") and not b.title for b in run), f"{page.name} runs no code"
        assert page.stem in CHECKS, f"{page.name} has no output check in tests/test_docs.py"


_MODELS: dict[tuple, object] = {}


@pytest.fixture(scope="module", autouse=True)
def _forget_models() -> Iterator[None]:
    """The remembered models (SmolLM2 alone is about 0.5 GB) are released before the rest of the suite runs."""
    yield
    _MODELS.clear()
    gc.collect()


def _load_each_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command loads its model afresh, as it must for a user; across the pages of this test the same
    bundled models would load a dozen times, so the real loader's result is remembered (tutorials never change a
    model's weights, and steering removes its hooks)."""
    import monosemantic.sources as sources
    import monosemantic.sources.models as models

    real = sources.load_model

    def cached(spec: str, **kw: object) -> object:
        key = (spec, *sorted(kw.items()))
        if key not in _MODELS:
            _MODELS[key] = real(spec, **kw)
        return _MODELS[key]

    monkeypatch.setattr(sources, "load_model", cached)
    monkeypatch.setattr(models, "load_model", cached)  # what load_model_for (extract, embed) calls


@pytest.mark.slow
@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    monkeypatch.chdir(tmp_path)
    _load_each_model_once(monkeypatch)
    CHECKS[page.stem](run_page(page))


def test_strict_build_works_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)], cwd=ROOT,
                          capture_output=True, text=True, env={**_env(), "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, f"mkdocs build --strict failed (pip install -e '.[docs]'):\n{proc.stderr[-4000:]}"
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 20
    for page in pages:
        html = page.read_text()
        # a page that opens from disk must fetch nothing: no CDN script (Material's offline plugin would add one
        # from unpkg.com unless mkdocs.yml names a local copy), stylesheet, image or font
        assert not re.search(r"""<(script|img|iframe|source)[^>]+src=["']https?://""", html), page
        assert not re.search(r"""<link[^>]+href=["']https?://""", html), page
        assert "fonts.googleapis" not in html, page
    api = (site / "api" / "metrics.html").read_text()
    for name in ("monosemantic.metrics.monosemanticity_score", "monosemantic.metrics.fms.fms"):
        assert f'id="{name}"' in api, name
    assert "activations: [N, K]" in api  # docstrings render, shapes included
    # links must name their .html file, or they break under file://
    index = (site / "index.html").read_text()
    assert 'href="tutorials/first-ten-minutes.html"' in index
    assert (site / "search" / "search_index.js").is_file()  # the offline plugin's search works from disk


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)

"""The report renderer: self-contained HTML, escaping of hostile text, table data, figure data, missing stages."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from fixtures.report_run import make_report_data
from monosemantic.cli import main
from monosemantic.errors import UserError
from monosemantic.report import FORMAT_VERSION, figures_path, load_report_data, render_report

HOSTILE = (
    "</script><script>document.body.setAttribute('data-pwned','1')</script>"
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\"> & $x^2$ \u2028 '\"<!--"
)
BAD_IMAGES = ("javascript:alert(1)", "http://example.com/x.png", 'data:image/png;base64,AAAA");}body{display:none}')


def write_run(run_dir: Path, data: dict[str, Any]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report_data.json").write_text(json.dumps(data), encoding="utf-8")
    return run_dir


def hostile_data() -> dict[str, Any]:
    """The tiny synthetic run with user text replaced by markup, script and mathtext everywhere it can appear."""
    data = make_report_data("tiny", seed=1)
    data["title"] = HOSTILE
    data["headline"] = [HOSTILE]
    image, text = data["tracks"]
    image["name"] = HOSTILE
    image["dataset"] = HOSTILE
    image["features"][0]["best_label"] = HOSTILE
    image["unit_sets"][1]["fms"]["per_concept"][HOSTILE] = {"fms@1": 0.5, "fms@5": 0.4}
    card = image["cards"][0]
    card["label_hist"] = {HOSTILE: 3, "1": 2}
    for ex, bad in zip(card["top"], BAD_IMAGES, strict=False):
        ex["image"] = bad
    snippet = text["cards"][0]["top"][0]
    snippet["tokens"] = ["plain", " " + HOSTILE, " end"]
    snippet["weights"] = [0.0, 0.5, 1.0]
    snippet["acts"] = [0.0, 1.25, 2.5]
    snippet["label"] = HOSTILE
    return data


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    data = hostile_data()
    run = write_run(tmp_path_factory.mktemp("run"), data)
    path = render_report(run)
    return data, path, path.read_text(encoding="utf-8")


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser's parser sees them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def attr(self, name: str) -> list[str]:
        return [a[name] or "" for _, a in self.tags if name in a]


def islands(page: str) -> list[Any]:
    return [json.loads(m) for m in re.findall(r"<script type='application/json' class=f-data>(.*?)</script>", page)]


def test_report_is_self_contained(rendered: tuple[dict[str, Any], Path, str]) -> None:
    _, path, page = rendered
    assert path.name == "report.html" and figures_path(path).is_file()
    # Nothing loads from anywhere else: every src/url is a data URI, every link an anchor or the figure data.
    tags = Tags(page)
    assert tags.attr("src") and all(src.startswith("data:image/png;base64,") for src in tags.attr("src"))
    assert all(u.startswith("data:image/") for u in re.findall(r"url\(\"?([^\")]+)", page))
    assert all(h.startswith("#") or h == "figures.json" for h in tags.attr("href"))
    assert not [t for t, _ in tags.tags if t in ("link", "iframe", "object", "embed", "base")]
    assert "@import" not in page
    assert len(page) < 3_000_000


def test_hostile_text_is_escaped(rendered: tuple[dict[str, Any], Path, str]) -> None:
    _, _, page = rendered
    tags = Tags(page)
    # The early error hook, one JSON island per track and report.js: no script or handler from the data.
    assert [t for t, _ in tags.tags].count("script") == 1 + 2 + 1
    assert not [a for _, attrs in tags.tags for a in attrs if a.startswith("on")]
    assert "data-pwned','1')</script>" not in page
    assert "<img src=x" not in page
    assert str(escape(HOSTILE)) in page  # shown as text, not dropped
    # The JSON islands give the exact strings back to the page's script.
    image_island = islands(page)[0]
    assert HOSTILE in image_island["labels"]


def test_bad_image_uris_are_dropped(rendered: tuple[dict[str, Any], Path, str]) -> None:
    _, _, page = rendered
    for bad in BAD_IMAGES:
        assert bad not in page
    assert page.count("class='th missing'") == len(BAD_IMAGES)


def test_token_highlight_follows_weights(rendered: tuple[dict[str, Any], Path, str]) -> None:
    _, _, page = rendered
    start = page.index("<span class=tok title='weight 0.00 · activation 0.000'>plain</span>")
    snippet = page[start : page.index("</div>", start)]
    hot = re.findall(r"<span class=tok style='background:rgba\(234,106,18,([0-9.]+)\)' title='([^']*)'>", snippet)
    assert [(float(a), tip) for a, tip in hot] == [
        (0.5, "weight 0.50 · activation 1.250"),
        (1.0, "weight 1.00 · activation 2.500"),
    ]
    # The token's leading space stays outside the highlight.
    assert " <span class=tok style='background:rgba(234,106,18,1.00)' title='weight 1.00 · activation 2.500'>end<" in (
        snippet
    )


def test_features_table_data_matches_input(rendered: tuple[dict[str, Any], Path, str]) -> None:
    data, _, page = rendered
    for track, island in zip(data["tracks"], islands(page), strict=True):
        features = track["features"]
        assert len(island["id"]) == len(features)
        cards = {(c["set"], c["id"]) for c in track["cards"]}
        for i, f in enumerate(features):
            assert island["sets"][island["set"][i]] == f["set"] and island["id"][i] == f["id"]
            for col, key in (("ms", "ms"), ("fms", "fms"), ("fr", "firing_rate"), ("corr", "best_corr")):
                if f[key] is None:
                    assert island[col][i] is None
                else:
                    assert island[col][i] == pytest.approx(f[key], rel=1e-3, abs=1e-9)
            assert island["active"][i] == f["active_items"]
            label = None if island["label"][i] < 0 else island["labels"][island["label"][i]]
            assert label == f["best_label"]
            assert island["card"][i] == ((f["set"], f["id"]) in cards)
            if island["card"][i]:  # the table's link target exists
                set_index = [s["id"] for s in track["unit_sets"]].index(f["set"])
                t = data["tracks"].index(track)
                assert f"id='c{t}-{set_index}-{f['id']}'" in page


def test_summary_and_figures(rendered: tuple[dict[str, Any], Path, str]) -> None:
    data, path, page = rendered
    figures = json.loads(figures_path(path).read_text())
    assert figures["format_version"] == FORMAT_VERSION
    by_id = {f["id"]: f for f in figures["figures"]}
    kinds = {f["kind"] for f in figures["figures"] if f["id"].startswith("t0-")}
    assert kinds == {"ms_distribution", "ms_vs_size", "training", "fms_per_concept", "ms_vs_firing"}
    assert page.count("<figure class=plot") == len(by_id)
    # The plotted MS values are exactly the finite per-unit values of the data.
    for unit_set, plotted in zip(data["tracks"][1]["unit_sets"], by_id["t1-ms_distribution"]["data"]["sets"],
                                 strict=True):
        finite = [v for v in unit_set["ms"]["values"] if v is not None and math.isfinite(v)]
        assert plotted["values"] == finite and plotted["dead"] == len(unit_set["ms"]["values"]) - len(finite)
    sizes = by_id["t0-ms_vs_size"]["data"]
    assert sizes["neurons_mean"] == data["tracks"][0]["unit_sets"][0]["ms"]["mean"]
    assert [s["id"] for s in sizes["saes"]] == [s["id"] for s in data["tracks"][0]["unit_sets"][1:]]
    # Every unit set has a summary row, with its mean MS, and the neurons row is marked as the baseline.
    for t, track in enumerate(data["tracks"]):
        table = re.search(rf"<table class=summary id='t{t}-summary-table'>(.*?)</table>", page, re.S).group(1)
        assert table.count("<tr class=") == len(track["unit_sets"])
        for s in track["unit_sets"]:
            assert f"<span class=v>{s['ms']['mean']:.2f}" in table
        assert "<tr class='baseline'>" in table


def test_output_path_and_overwrite(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", make_report_data("tiny"))
    data = load_report_data(run)
    data["tracks"] = data["tracks"][1:]  # one text track keeps this render quick
    for unit_set in data["tracks"][0]["unit_sets"]:
        unit_set.pop("training", None)
    write_run(run, data)
    (run / "report.html").write_text("old")
    out = render_report(run)
    assert out == run / "report.html" and out.read_text().startswith("<!doctype html>")
    custom = render_report(run, tmp_path / "elsewhere" / "mine.html")
    assert custom.is_file() and (tmp_path / "elsewhere" / "mine.figures.json").is_file()
    in_dir = render_report(run, tmp_path / "elsewhere")
    assert in_dir == tmp_path / "elsewhere" / "report.html"
    assert render_report(run, custom) == custom  # an earlier report is replaced
    mine = tmp_path / "notes.html"
    mine.write_text("<p>my notes</p>")
    for target in (mine, run / "report_data.json"):  # a user's file, or the report's own input: never replaced
        before = target.read_bytes()
        with pytest.raises(UserError, match=r"(not a monosemantic report|the run.s own record); choose another --out"):
            render_report(run, target)
        assert target.read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_neurons_only_track_with_nan_scores(tmp_path: Path) -> None:
    data = make_report_data("tiny")
    track = data["tracks"][1]
    track["unit_sets"] = track["unit_sets"][:1]
    track["unit_sets"][0]["ms"]["values"][:3] = [None, float("nan"), None]
    track["unit_sets"][0]["fms"] = None
    track["features"] = [f for f in track["features"] if f["set"] == "neurons"]
    track["features"][0]["ms"] = float("nan")
    track["cards"] = []
    data["tracks"] = [track]
    run = tmp_path / "run"
    run.mkdir()
    (run / "report_data.json").write_text(json.dumps(data))  # allow_nan: NaN literals as Python writes them
    page = render_report(run).read_text()
    assert "This run selected no units for cards" in page
    assert islands(page)[0]["ms"][0] is None
    figures = json.loads(figures_path(run / "report.html").read_text())["figures"]
    assert [f["kind"] for f in figures] == ["ms_distribution", "ms_vs_firing"]
    assert figures[0]["data"]["sets"][0]["dead"] == 3


# --------------------------------------------------------------------------------------- missing stages


def test_missing_report_data_names_the_stages(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no scores yet.*monosemantic run CONFIG.*extract, train, score"):
        load_report_data(tmp_path)


def test_first_unfinished_stage_is_named(tmp_path: Path) -> None:
    stages = {"extract": {"done": True}, "train": "running", "score": False}
    (tmp_path / "run.json").write_text(json.dumps({"config": "demo.toml", "stages": stages}))
    with pytest.raises(UserError, match=r"stage 'train' has not finished.*monosemantic run demo.toml.*"
                                        r"`monosemantic train` for that stage alone"):
        load_report_data(tmp_path)
    # The pipeline's own keys: one stage per track and SAE, each a record with "done"; config is a table.
    stages = {
        "img/extract": {"hash": "a", "done": True},
        "img/embed": {"hash": "b", "done": True},
        "img/train-topk": {"hash": "c", "done": False},
        "img/score": {"hash": "d", "done": False},
    }
    (tmp_path / "run.json").write_text(json.dumps({"config": {"title": "t"}, "stages": stages}))
    with pytest.raises(UserError, match=r"stage 'img/train-topk' has not finished.*`monosemantic run CONFIG`.*"
                                        r"`monosemantic train` for that stage alone"):
        load_report_data(tmp_path)
    stages = {"extract": "done", "train": "done", "score": "done"}
    (tmp_path / "run.json").write_text(json.dumps({"stages": stages}))
    with pytest.raises(UserError, match=r"every stage marked done but no report_data.json"):
        load_report_data(tmp_path)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.pop("format_version"), r"older format \(report data format_version none"),
        (lambda d: d.update(format_version=0), r"older format .*re-run `monosemantic run CONFIG`"),
        (lambda d: d.update(format_version=FORMAT_VERSION + 1), "newer than this monosemantic"),
        (lambda d: d["tracks"][0]["unit_sets"][1].pop("ms"), r"tracks\[0\]\.unit_sets\[1\] has no 'ms'"),
        (lambda d: d["tracks"][1].update(modality="audio"), r"tracks\[1\]\.modality is 'audio'"),
        (lambda d: d["tracks"][0]["cards"][0].update(set="nope"), r"cards\[0\]\.set 'nope' is not a unit set"),
        (lambda d: d.update(tracks={}), "'tracks' must be a list"),
    ],
)
def test_bad_report_data(tmp_path: Path, mutate: Any, needle: str) -> None:
    data = make_report_data("tiny")
    mutate(data)
    write_run(tmp_path, data)
    with pytest.raises(UserError, match=needle):
        load_report_data(tmp_path)


def test_unreadable_and_absent_inputs(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_report_data(tmp_path / "nope")
    (tmp_path / "report_data.json").write_text('{"format_version": 1,\n "tracks": [')
    with pytest.raises(UserError, match=r"not valid JSON \(line 2"):
        load_report_data(tmp_path)


def test_cli_errors_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "monosemantic report: error:" in err[0] and "no scores yet" in err[0]


def test_cli_prints_the_path_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_report_data("tiny")
    data["tracks"] = data["tracks"][1:]
    run = write_run(tmp_path / "run", data)
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "r.html")

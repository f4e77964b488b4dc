"""The user-study harness: agreement against brute force, the simulated participant on a real scored layer, and
the study page in headless Chromium (answers chosen on the page come back as a pairs.csv that `agree` reads)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures.browser import chromium_or_reason, load_page
from monosemantic import log
from monosemantic.cli import main
from monosemantic.errors import UserError
from monosemantic.experiments.extract import ExtractConfig
from monosemantic.experiments.extract import run as extract
from monosemantic.experiments.score import ScoreConfig
from monosemantic.experiments.score import run as score
from monosemantic.experiments.study import AgreeConfig, StudyConfig, agree, build_page, read_units, simulate
from monosemantic.metrics.agreement import agreement, label_purity, simulated_preferences
from monosemantic.sae import train
from monosemantic.sae.trainconfig import train_config


def test_agreement_against_a_loop() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random(200), rng.random(200)
    r = rng.choice([-1.0, 0.0, 2.0], 200)
    x[:5] = y[:5]  # equal scores: no verdict
    res = agreement(x, y, r, bin_width=0.25)
    used = [(a - b, v) for a, b, v in zip(x, y, r, strict=True) if a != b and v != 0]
    assert res.n == len(used) and res.ties == 200 - len(used)
    assert res.overall == pytest.approx(np.mean([np.sign(d) == np.sign(v) for d, v in used]))
    for b in res.bins:
        inside = [(d, v) for d, v in used if b.lo <= abs(d) < b.hi]
        assert b.n == len(inside) and b.agreement == pytest.approx(np.mean([np.sign(d) == np.sign(v)
                                                                            for d, v in inside]))
    assert agreement(x, y, np.sign(y - x), lower_is_better=True).overall == 1.0
    assert label_purity(torch.tensor([[1, 1, 2, -1], [0, 1, 2, 3]])).tolist() == [2 / 3, 0.25]
    assert simulated_preferences([0.9, 0.1], [0.2, 0.8], noise=0.0).tolist() == [1.0, -1.0]
    with pytest.raises(UserError, match="one value per pair"):
        agreement([1.0], [1.0, 2.0], [1.0])


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """MobileNetV2 features.13 on 600 MNIST digits, one TopK SAE, scored (MS against EfficientNet-Lite0)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("study")
    with log.quiet():
        extract(ExtractConfig(model="mobilenet_v2", layers=["features.13"], data="mnist-5k", out=root / "store",
                              tokens="mean", max_items=600))
    train(train_config(dict(acts=root / "store", out=root / "sae", arch="topk", d_sae=[192], k=[8], tokens="200K",
                            batch_size=256, progress=False)))
    with log.quiet():
        score(ScoreConfig(acts=root / "store", sae=[root / "sae"], out=root / "scores"))
    return {"root": root, "store": root / "store", "sae": root / "sae", "scores": root / "scores"}


def test_simulated_participant_agrees_with_ms(scored: dict[str, Path]) -> None:
    out = scored["root"] / "sim"
    res = simulate(StudyConfig(scores=scored["scores"], acts=scored["store"], out=out, pairs=300, noise=0.05))
    table = res.agreement
    # the participant follows labels: the label-derived score must side with it, the firing rate must not
    assert table["best_corr"].n >= 250 and table["best_corr"].overall > 0.7
    assert table["best_corr"].overall > table["firing_rate"].overall + 0.15
    ms = table["ms"]
    assert ms.n >= 250 and 0 <= ms.overall <= 1 and sum(b.n for b in ms.bins) == ms.n
    assert json.loads((out / "agreement.json").read_text()) == json.loads(json.dumps(res.to_json()))
    assert res.to_json()["pairs"] == 300 == len(res.answers)
    # the CLI reads back the simulated answers and gives the same table
    table = agree(AgreeConfig(pairs=out / "pairs.csv", units=scored["scores"] / "units.csv", score=["ms"])).agreement
    assert table["ms"].overall == pytest.approx(ms.overall)


def test_study_bad_inputs(scored: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    units = scored["scores"] / "units.csv"
    bad = tmp_path / "p.csv"
    bad.write_text("unit_x,unit_y\nneurons/0,neurons/1\n")
    assert main(["study", "agree", "--pairs", str(bad), "--units", str(units)]) == 2
    assert "lacks the column(s) ['R_user']" in capsys.readouterr().err
    bad.write_text("unit_x,unit_y,R_user\nneurons/0,nope/3,1\n")
    assert main(["study", "agree", "--pairs", str(bad), "--units", str(units)]) == 2
    err = capsys.readouterr().err
    assert "unknown unit 'nope/3'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["study", "page", "--scores", str(scored["scores"]), "--acts", str(scored["store"]), "--out",
                 str(tmp_path / "s.txt")]) == 2
    assert ".html file" in capsys.readouterr().err
    other = tmp_path / "other"  # a store the scores were not computed on: the top items would index past its end
    with log.quiet():
        extract(ExtractConfig(model="mobilenet_v2", layers=["features.6"], data="digits", out=other, tokens="mean",
                              max_items=20))
    assert main(["study", "simulate", "--scores", str(scored["scores"]), "--acts", str(other), "--out",
                 str(tmp_path / "sim")]) == 2
    err = capsys.readouterr().err
    assert "pass the store the scores were computed on" in err and "Traceback" not in err


def test_study_page_in_a_browser(scored: dict[str, Path], tmp_path: Path) -> None:
    page = tmp_path / "study.html"
    built = build_page(StudyConfig(scores=scored["scores"], acts=scored["store"], out=page, pairs=6, seed=3))
    html = page.read_text()
    assert html == built.html and built.pairs == 6
    assert html.count("class=pair ") == 6 and "MS" not in re.sub(r"<script.*?</script>|<style.*?</style>", "", html,
                                                                flags=re.S)  # blind: no scores shown
    chromium, reason = chromium_or_reason()
    if chromium is None:
        pytest.skip(reason)
    loaded = load_page(page, chromium=chromium, fragment="answers=LRTLRL")
    assert not loaded.errors and 'data-answered="6"' in loaded.dom
    text = re.search(r'<textarea id="csv" readonly="">(.*?)</textarea>', loaded.dom, re.S).group(1)
    rows = list(csv.DictReader(text.strip().splitlines()))
    meta = json.loads(re.search(r'<script type="application/json" id="pairs">(.*?)</script>', html.replace(
        "type=application/json id=pairs", 'type="application/json" id="pairs"'), re.S).group(1))
    for row, m, side in zip(rows, meta, "LRTLRL", strict=True):
        assert (row["unit_x"], row["unit_y"]) == (m["x"], m["y"])
        expected = 0 if side == "T" else (1 if (side == "L") != m["swap"] else -1)
        assert int(row["R_user"]) == expected
    answers = tmp_path / "pairs.csv"
    answers.write_text(text)
    table = agree(AgreeConfig(pairs=answers, units=scored["scores"] / "units.csv", score=["ms"])).agreement
    assert table["ms"].n + table["ms"].ties == 6 and set(read_units(scored["scores"] / "units.csv")) >= {
        r["unit_x"] for r in rows}

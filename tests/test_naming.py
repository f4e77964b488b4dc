"""`monosemantic name`: P/R/F1 arithmetic, parse failures counted, cached answers, the shuffled control, and the
CLI's bad input (one line, exit 2), all with fake namers and judges on a tiny hand-made store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from monosemantic import log
from monosemantic.cli import main
from monosemantic.errors import UserError
from monosemantic.experiments.name import NameConfig, NamesResult, run
from monosemantic.experiments.score import ScoreConfig
from monosemantic.experiments.score import run as score
from monosemantic.naming import (
    AnswerCache,
    Example,
    Judge,
    Naming,
    derangement,
    fit_threshold,
    parse_naming,
    precision_recall_f1,
)
from monosemantic.naming.evaluate import judge_one
from monosemantic.naming.select import LatentExamples
from monosemantic.naming.text import EmbeddingJudge, LabelJudge, LabelNamer, LMJudge, LMNamer, auc
from monosemantic.sae import SAE, SAEConfig
from monosemantic.store import write_store

N = 60
TOPICS = ["sport", "money", "music"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """60 one-row text items in three labelled topics. Neuron 0 fires on every 'sport' item and (weakly) on four
    'money' items, neuron 1 exactly on 'money', neuron 2 exactly on 'music', neuron 3 never."""
    root = tmp_path_factory.mktemp("naming")
    labels = np.arange(N) % 3
    acts = np.zeros((N, 4), dtype=np.float32)
    for i in range(N):
        acts[i, labels[i]] = 1.0 + i / 100
    acts[[1, 4, 7, 10], 0] = 0.5
    items = [{"kind": "text", "text": f"item {i} about {TOPICS[labels[i]]} and more words"} for i in range(N)]
    write_store(root / "store", {"h": acts}, labels=labels, label_names=TOPICS, items=items)
    torch.manual_seed(0)
    SAE.create(SAEConfig(d_in=4, d_sae=8, architecture="topk", k=2)).save(root / "sae")
    save_file({"embeddings": torch.randn(N, 5)}, str(root / "emb.safetensors"))
    score(ScoreConfig(acts=root / "store", sae=[root / "sae"], embeddings=root / "emb.safetensors",
                      out=root / "scores"))
    return {"root": root, "store": root / "store", "scores": root / "scores", "sae": root / "sae"}


def name_latents(cfg: NameConfig, **kw: Any) -> NamesResult:
    with log.quiet():
        return run(cfg, **kw)


def _cfg(env: dict[str, Path], out: Path, **kw: Any) -> NameConfig:
    base: dict[str, Any] = {"scores": env["scores"], "out": out, "sets": ["neurons"], "latents": 5, "shown": 6,
                            "judged": 5, "min_active": 10, "cache": env["root"] / "unused.sqlite"}
    return NameConfig(**{**base, **kw})


class ItemJudge(Judge):
    """Says yes to even item ids, whatever the name: decisions known in advance."""

    id = "even"
    threshold = 0.5

    def scores(self, concept: str, description: str, examples: Sequence[Example]) -> list[float]:
        del concept, description  # the decisions do not depend on the name
        return [float(ex.item % 2 == 0) for ex in examples]


def test_precision_recall_f1_by_hand() -> None:
    # tp 2 (items 0, 4), fp 1 (item 1), fn 1 (item 2)
    assert asdict(precision_recall_f1([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])) == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    # tp 1, fp 3, fn 0: P 1/4, R 1, F1 2·(1/4)/(5/4) = 0.4
    assert asdict(precision_recall_f1([1, 1, 1, 1], [1, 0, 0, 0])) == pytest.approx(
        {"precision": 0.25, "recall": 1.0, "f1": 0.4})
    # nothing predicted: scikit-learn's zero_division=0
    assert asdict(precision_recall_f1([0, 0], [1, 0])) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_judge_one_and_auc_by_hand() -> None:
    items = [0, 1, 2, 3, 4, 5]  # the judge says yes to 0, 2, 4
    truth = [1, 1, 1, 0, 0, 0]  # tp 2 (0, 2), fp 1 (4), fn 1 (1): P = R = F1 = 2/3
    ex = LatentExamples("s", 7, [], [Example(i) for i in items], truth, [], [])
    res = judge_one(ItemJudge(), Naming("x", "y", True), ex)
    assert (res.precision, res.recall, res.f1) == (0.6667, 0.6667, 0.6667)
    # positives score (1, 0, 1), negatives (0, 1, 0): 9 pairs, wins 4 + ties 4 · 0.5 -> 6 / 9
    assert res.auc == pytest.approx(0.6667)
    failed = judge_one(ItemJudge(), Naming("", "", False), ex)  # an unparsed name matches nothing
    assert (failed.precision, failed.recall, failed.f1, failed.auc) == (0.0, 0.0, 0.0, None)
    assert auc([0.9, 0.8, 0.1], [1, 0, 0]) == 1.0


def test_fit_threshold_balanced_accuracy() -> None:
    assert fit_threshold([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == pytest.approx(0.5)
    t = fit_threshold([0.1, 0.7, 0.3, 0.9], [0, 0, 1, 1])  # best J = 0.5 for cuts 0.2 and 0.8: middle one kept
    assert 0.1 < t < 0.9


def test_derangement_has_no_fixed_point() -> None:
    for n in (2, 3, 10):
        perm = derangement(n, seed=1)
        assert sorted(perm) == list(range(n)) and all(perm[i] != i for i in range(n))
    assert derangement(1, 0) == [0]


@pytest.mark.parametrize("raw, ok, name", [
    ("Name: Football results\nDescription: Scores of football matches. More text", True, "Football results"),
    ('{"concept": "Stock markets", "description": "Shares and prices"}', True, "Stock markets"),
    ("Name: **Music**  Description: songs and albums.", True, "Music"),
    ("I think these are about sport.", False, ""),
    ("Name: one two three four five six seven eight nine ten\nDescription: too long a name.", False, ""),
    ("Name: x\nDescription:", False, ""),
    ("", False, ""),
])
def test_parse_naming(raw: str, ok: bool, name: str) -> None:
    got = parse_naming(raw)
    assert (got.ok, got.concept) == (ok, name)
    if ok:
        assert got.description and "More text" not in got.description


def test_label_namer_and_judge_and_control(env: dict[str, Path], tmp_path: Path) -> None:
    res = name_latents(_cfg(env, tmp_path / "n", namer="labels", judge="auto"))
    rows = {r.latent: r for r in res.latents}
    assert sorted(rows) == [0, 1, 2]  # neuron 3 never fires
    assert [rows[j].name for j in (0, 1, 2)] == TOPICS
    assert rows[0].extra == {"label": "sport", "share": 1.0}  # the weak 'money' items are held out or not shown
    assert res.to_json()["latents"][0]["share"] == 1.0  # the label namer's share is a field of the latent's JSON
    for j in (0, 1, 2):
        got = rows[j].judges["labels"]
        assert (got.verdict.precision, got.verdict.recall, got.verdict.f1) == (1.0, 1.0, 1.0)
        # another topic's name: no held-out positive carries it -> recall 0
        assert got.control is not None and got.control.recall == 0.0 and got.control_name != rows[j].name
    summary = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert summary["judges"]["labels"]["names"]["f1"] == 1.0
    assert summary["judges"]["labels"]["control"]["f1"] == 0.0
    head = (tmp_path / "n" / "names.csv").read_text().splitlines()[0]
    assert head == "set,latent,name,description,parse_ok,labels_precision,labels_recall,labels_f1,labels_auc," \
        "labels_control_f1"


def _fake_lm(answers: dict[str, str], calls: list[int]):
    def complete(prompts: list[str]) -> list[str]:
        calls.append(len(prompts))
        out = []
        for p in prompts:
            topic = next((t for t in TOPICS if p.count(t) >= 3), None)
            out.append(answers.get(topic or "", " gibberish without any format"))
        return out
    return complete


def _fake_yes_no(calls: list[int]):
    def yes_no(prompts: list[str]) -> list[float]:
        calls.append(len(prompts))
        out = []
        for p in prompts:
            concept = p.split("\n", 1)[0].removeprefix("Concept: ").lower()
            text = p.split('Text: "', 1)[1]
            out.append(2.0 if concept.split()[0] in text else -2.0)
        return out
    return yes_no


def _fake_embed(calls: list[int]):
    def embed(texts: list[str]) -> torch.Tensor:
        calls.append(len(texts))
        return torch.tensor([[float(t in s.lower()) for t in TOPICS] + [0.1] for s in texts])
    return embed


def _model_parts(cache: Path, answers: dict[str, str]) -> tuple[LMNamer, list[Judge], dict[str, list[int]]]:
    calls: dict[str, list[int]] = {"namer": [], "lm": [], "emb": []}
    store = AnswerCache(cache)
    namer = LMNamer(store, complete=_fake_lm(answers, calls["namer"]))
    judges: list[Judge] = [LMJudge(store, yes_no=_fake_yes_no(calls["lm"])),
                           EmbeddingJudge(store, embed=_fake_embed(calls["emb"]))]
    return namer, judges, calls


ANSWERS = {"sport": " Sport news\nDescription: Texts about sport.", "money": " money talk\nDescription: Finance."}


def test_parse_failures_counted_and_cached_reruns_ask_nothing(env: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "answers.sqlite"
    namer, judges, calls = _model_parts(cache, ANSWERS)
    cfg = _cfg(env, tmp_path / "n", cache=cache)
    res = name_latents(cfg, namer=namer, judges=judges)
    s = res.overall
    # the 'music' latent gets an unparseable answer: counted, judged as all zeros, never a crash
    assert (s.n_latents, s.parse_failures, s.parse_failure_rate) == (3, 1, 0.3333)
    rows = {r.latent: r for r in res.latents}
    assert not rows[2].parse_ok and "gibberish" in rows[2].raw
    for jid in ("smollm2", "minilm"):
        assert rows[2].judges[jid].verdict.f1 == 0.0 and rows[2].judges[jid].control is None
        assert rows[0].judges[jid].verdict.f1 == 1.0 and rows[1].judges[jid].verdict.f1 == 1.0
        assert s.judges[jid].names.f1 == pytest.approx(2 / 3, abs=1e-3)
        assert s.judges[jid].names_parsed.f1 == 1.0
        assert s.judges[jid].control.f1 == 0.0  # sport's name on money snippets and back
    assert sum(calls["namer"]) == 3 and calls["lm"] and calls["emb"]

    namer2, judges2, calls2 = _model_parts(cache, ANSWERS)
    again = name_latents(_cfg(env, tmp_path / "n", cache=cache, overwrite=True), namer=namer2, judges=judges2)
    assert calls2 == {"namer": [], "lm": [], "emb": []}  # every prompt answered from the cache
    assert again.latents == res.latents


def test_name_csv_and_report_fields(env: dict[str, Path], tmp_path: Path) -> None:
    namer, judges, _ = _model_parts(tmp_path / "c.sqlite", ANSWERS)
    res = name_latents(_cfg(env, tmp_path / "n", judged=3), namer=namer, judges=[judges[1]])
    assert all(r.judges["minilm"].control is not None for r in res.latents if r.parse_ok)
    alone = name_latents(_cfg(env, tmp_path / "m", judged=3, control=False), namer=namer, judges=[judges[1]])
    assert not any(r.judges["minilm"].control is not None for r in alone.latents)
    assert alone.to_json()["summary"]["judges"]["minilm"]["control"] == {"n": 0, "precision": None, "recall": None,
                                                                         "f1": None, "auc": None}
    saved = json.loads((tmp_path / "n" / "names.json").read_text())
    assert saved == res.to_json() and saved["format"] == "monosemantic-names" and saved["version"] == 1
    assert res.hook == "h" and res.model == "synthetic"
    lines = (tmp_path / "n" / "names.csv").read_text().splitlines()
    assert any(ln.startswith("neurons,0,Sport news,Texts about sport.,1,") for ln in lines[1:])
    assert all(r.judges["minilm"].verdict.n_judged == 6 for r in res.latents)


def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    rc = main(["name", *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("monosemantic name: error:"), err
    return lines[0]


def test_cli_bad_input(env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c.sqlite")]
    assert "not a folder" in _cli_error(["--scores", str(tmp_path / "none"), *base], capsys)
    (tmp_path / "empty").mkdir()
    assert "no scores.json" in _cli_error(["--scores", str(tmp_path / "empty"), *base], capsys)
    sc = ["--scores", str(env["scores"])]
    assert "unknown unit set 'nope'" in _cli_error([*sc, "--set", "nope", *base], capsys)
    assert "SAE 'sae' was not found" in _cli_error([*sc, "--set", "sae", *base], capsys)
    assert "--latents must be" in _cli_error([*sc, "--latents", "0", *base], capsys)
    assert "would overwrite the input" in _cli_error(
        [*sc, "--set", "neurons", "--out", str(env["scores"]), "--overwrite"], capsys)
    assert "--min-active" in _cli_error([*sc, "--set", "neurons", "--namer", "labels", "--min-active", "50", *base],
                                        capsys)
    assert "--judge vlm" in _cli_error([*sc, "--set", "neurons", "--judge", "vlm", "--min-active", "10", *base],
                                       capsys)
    bad_cache = tmp_path / "bad.sqlite"
    bad_cache.write_text("not a database " * 100)
    assert "not a usable answer cache" in _cli_error(
        [*sc, "--set", "neurons", "--namer", "labels", "--min-active", "10", "--out", str(tmp_path / "o2"),
         "--cache", str(bad_cache)], capsys)


def test_cli_label_run_and_overwrite(env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--scores", str(env["scores"]), "--set", "neurons", "--namer", "labels", "--min-active", "10",
            "--shown", "6", "--judged", "5", "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c.sqlite")]
    assert main(["name", *args]) == 0
    out = capsys.readouterr().out
    assert "named 3 latents with labels" in out and "control" in out
    assert "already exists" in _cli_error(args, capsys)
    assert main(["name", *args, "--overwrite"]) == 0


def test_vlm_namer_missing_model_is_one_line() -> None:
    from monosemantic.naming.images import VLMNamer

    namer = VLMNamer(AnswerCache(None), "someone/not-a-cached-vlm")
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(UserError, match=r"cannot be loaded from the Hugging Face cache.*--namer labels"):
        namer.name([Example(0, image=img)])


def test_vlm_presence_is_checked_before_any_work() -> None:
    from monosemantic.naming.images import check_cached

    for bad in ("someone/not-a-cached-vlm", "not a repo id!"):
        with pytest.raises(UserError, match="is not in the Hugging Face cache"):
            check_cached(bad)


def test_label_namer_counts_shares() -> None:
    got = LabelNamer().name([Example(i, label=lab) for i, lab in enumerate(["a", "a", "b", "a"])])
    assert (got.concept, got.extra) == ("a", {"label": "a", "share": 0.75})
    assert not LabelNamer().name([Example(0)]).ok
    assert LabelJudge().classify("a", "", [Example(0, label="a"), Example(1, label="b")])[0] == [1, 0]


def test_fit_threshold_without_signal_matches_nothing() -> None:
    assert fit_threshold([0.5, 0.5, 0.5, 0.5], [1, 1, 0, 0]) == float("inf")
    assert fit_threshold([0.9, 0.8, 0.1, 0.2], [0, 0, 1, 1]) == float("inf")  # anti-correlated: no better than chance


def test_saes_found_through_the_run_folder(env: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(env["sae"], run / "saes" / "t-train-topk-abc" / "sae")
    shutil.copytree(env["scores"], run / "scores" / "t-score-def")
    (run / "run.json").write_text(json.dumps({"format_version": 1, "stages": {
        "t/train-topk": {"hash": "abc", "path": "saes/t-train-topk-abc", "done": True}}}))
    from monosemantic.experiments.name import _sae_paths

    cfg = NameConfig(scores=run / "scores" / "t-score-def", out=tmp_path / "n", sets=["sae"])
    assert _sae_paths(cfg, ["sae"]) == {"sae": run / "saes" / "t-train-topk-abc" / "sae"}


def test_stores_without_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Vectors with labels but no text: the label baseline works, a text namer or judge is one clear line."""
    labels = np.arange(N) % 3
    acts = np.zeros((N, 3), dtype=np.float32)
    acts[np.arange(N), labels] = 1.0
    write_store(tmp_path / "store", {"h": acts}, labels=labels, label_names=TOPICS)
    save_file({"embeddings": torch.randn(N, 4)}, str(tmp_path / "emb.safetensors"))
    score(ScoreConfig(acts=tmp_path / "store", sae=[], embeddings=tmp_path / "emb.safetensors",
                      out=tmp_path / "scores"))
    args = ["--scores", str(tmp_path / "scores"), "--min-active", "10", "--cache", str(tmp_path / "c.sqlite")]
    assert main(["name", *args, "--namer", "labels", "--out", str(tmp_path / "n")]) == 0
    assert "named 3 latents with labels" in capsys.readouterr().out
    assert "--namer labels" in _cli_error([*args, "--out", str(tmp_path / "m")], capsys)
    assert "--judge labels" in _cli_error([*args, "--namer", "labels", "--judge", "minilm", "--out",
                                           str(tmp_path / "m")], capsys)


def test_plans_hold_out_what_the_namer_saw() -> None:
    from monosemantic.naming.select import choose_latents, plan_latent

    torch.manual_seed(0)
    acts = torch.relu(torch.randn(300, 6))
    acts[:, 5] = 0.0  # never fires: not a candidate
    plan = plan_latent("s", 2, acts, n_shown=10, n_judged=8, n_calib=4, seed=0)
    a = acts[:, 2]
    active = set(torch.nonzero(a > 0).flatten().tolist())
    assert len(plan.shown) == 10 and len(plan.judged_pos) == 8 and len(plan.judged_neg) == 8
    assert set(plan.shown) <= active and set(plan.judged_pos) <= active
    assert not set(plan.shown) & set(plan.judged_pos)  # judged on inputs the name was not written from
    assert not (set(plan.judged_neg) | set(plan.calib_neg)) & active
    assert not set(plan.judged_neg) & set(plan.calib_neg) and len(plan.calib_neg) == 4
    ranks = sorted(active, key=lambda i: -float(a[i]))
    shown_ranks = sorted(ranks.index(i) for i in plan.shown)
    assert shown_ranks[:5] == [0, 2, 4, 6, 8] and shown_ranks[-1] > 60  # strongest and moderate activations
    ms = {j: float(j) for j in range(6)}
    assert choose_latents(acts, ms, 3, 10, "top-ms", 0) == [4, 3, 2]
    picked = choose_latents(acts, ms, 3, 10, "random", 0)
    assert len(picked) == 3 and 5 not in picked and picked == choose_latents(acts, ms, 3, 10, "random", 0)

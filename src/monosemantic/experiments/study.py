"""``monosemantic study``: the user-study harness. A blind pairwise study page built from a score folder, the
agreement of any score with its answers, and a simulated participant whose choices follow the dataset's labels
(MS paper, Pach et al., arXiv 2504.02821). One command with three modes: ``study page``, ``study agree`` and
``study simulate``."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError
from monosemantic.experiment import Column, Command, Group, Result, Summary, Table
from monosemantic.files import check_out, staged, write_atomic, write_json
from monosemantic.metrics.agreement import Agreement, agreement, label_purity, simulated_preferences
from monosemantic.report.data import FeatureRow, unit_card
from monosemantic.report.scores import (
    MIN_ITEMS_FOR_CARD,
    SCORES_NAME,
    UNITS_NAME,
    ScoreFile,
    load_scores,
    load_tops,
)
from monosemantic.report.study_page import StudyPair, study_html
from monosemantic.results import to_json
from monosemantic.sae import SAE
from monosemantic.sae.paths import expand_sae_paths
from monosemantic.store import ActivationStore

PAIR_COLUMNS = ("unit_x", "unit_y", "R_user")
# unit scores in units.csv for which lower means more coherent
LOWER_IS_BETTER = {"entropy"}
SCORE_COLUMNS = ("ms", "fms", "best_corr", "entropy", "firing_rate")


@dataclass(frozen=True)
class StudyConfig:
    """A study page (``study page``) or a simulated participant's answers (``study simulate``) of a score folder."""

    scores: Path
    """Score folder (from `monosemantic score`: scores.json, units.csv, top.safetensors)."""
    acts: Path
    """The activation store those scores were computed on (for the units' top inputs)."""
    out: Path
    """Study page (.html) for `study page`; folder for `study simulate` (pairs.csv, agreement.json)."""
    sae: list[Path] = field(default_factory=list)
    """SAE folder(s) of the scored sets, to highlight the tokens of text snippets (images need none)."""
    pairs: int = 40
    """Unit pairs to show (page) or simulate."""
    noise: float = 0.1
    """Simulated participant: std of the noise added to the label-purity difference before taking its sign."""
    seed: int = 0
    """Seed of the pair draw, the left/right order and the simulated noise."""
    overwrite: bool = False
    """Replace an existing --out."""


def unit_id(set_id: str, unit: int) -> str:
    return f"{set_id}/{unit}"


def read_units(path: Path) -> Units:
    """``units.csv`` as ``{"set/unit": {score: value}}``."""
    if not Path(path).is_file():
        raise UserError(f"units file {path} does not exist (it is the units.csv of `monosemantic score`)")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"set", "unit", "ms", "active_items"} <= set(rows[0]):
        raise UserError(f"{path} is not a units.csv of `monosemantic score` (needs set, unit, ms, active_items)")

    def num(v: str | None) -> float | None:
        try:
            return None if v in (None, "", "None", "nan") else float(v)
        except ValueError:
            return None

    return {unit_id(r["set"], int(r["unit"])): {k: num(v) for k, v in r.items() if k not in ("set", "unit",
                                                                                         "best_label")}
            for r in rows}


Units = dict[str, dict[str, float | None]]
"""units.csv as ``{"set/unit": {score: value}}``."""


def read_pairs(path: Path, units: Units) -> list[tuple[str, str, float]]:
    if not Path(path).is_file():
        raise UserError(f"pairs file {path} does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in PAIR_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path} lacks the column(s) {missing}; a pairs file has {', '.join(PAIR_COLUMNS)} "
                            "(units as set/unit, R_user > 0 when x was preferred)")
        out = []
        for line, r in enumerate(reader, start=2):
            for key in ("unit_x", "unit_y"):
                if r[key] not in units:
                    raise UserError(f"{path} line {line}: unknown unit {r[key]!r}; units are named set/unit as in "
                                    "units.csv (e.g. neurons/3)")
            try:
                out.append((r["unit_x"], r["unit_y"], float(r["R_user"])))
            except ValueError:
                raise UserError(f"{path} line {line}: R_user must be a number, got {r['R_user']!r}") from None
    if not out:
        raise UserError(f"{path} holds no pairs")
    return out


def agreement_table(pairs: list[tuple[str, str, float]], units: Units,
                    scores: tuple[str, ...] = SCORE_COLUMNS) -> dict[str, Agreement]:
    """Agreement of every score column with the answers (see ``metrics.agreement``)."""
    r = np.array([p[2] for p in pairs])
    table = {}
    for name in scores:
        if not any(name in u for u in units.values()):
            continue
        x = np.array([np.nan if units[a].get(name) is None else units[a][name] for a, _, _ in pairs], dtype=float)
        y = np.array([np.nan if units[b].get(name) is None else units[b][name] for _, b, _ in pairs], dtype=float)
        table[name] = agreement(x, y, r, lower_is_better=name in LOWER_IS_BETTER)
    return table


def draw_pairs(units: Units, n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` pairs of live units (an MS and at least 16 active items), spread over |ΔMS| bins of 0.1 so that easy
    and hard pairs both appear; pairs within one set and across sets alike."""
    live = sorted(u for u, v in units.items() if v.get("ms") is not None and (v.get("active_items") or 0)
                  >= MIN_ITEMS_FOR_CARD)
    if len(live) < 2:
        raise UserError(f"only {len(live)} unit(s) have an MS and fire on at least {MIN_ITEMS_FOR_CARD} items; a "
                        "study needs two or more")
    rng = np.random.default_rng(seed)
    by_bin: dict[int, list[tuple[str, str]]] = {}
    seen: set[tuple[str, str]] = set()
    for _ in range(max(50 * n, 1000)):
        a, b = rng.choice(len(live), 2, replace=False)
        pair = (live[a], live[b])
        if pair in seen or pair[::-1] in seen:
            continue
        seen.add(pair)
        d = abs((units[pair[0]]["ms"] or 0.0) - (units[pair[1]]["ms"] or 0.0))  # live units all have an MS
        by_bin.setdefault(int(d / 0.1), []).append(pair)
    out: list[tuple[str, str]] = []
    queues = [by_bin[k] for k in sorted(by_bin)]
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def agreement_lines(table: dict[str, Agreement]) -> Table:
    """Each score's agreement, pair and tie counts, and its first six |Δscore| bins."""
    rows = [(name, a.overall, a.n, a.ties, "",
             "  ".join(f"[{b.lo:.1f},{b.hi:.1f}) {b.agreement:.2f} ({b.n})" for b in a.bins[:6]))
            for name, a in table.items()]
    # the empty column of width 0 puts two spaces before the bins, as a separator of their own
    return Table((Column("score", 12, "<"), Column("agreement", 9), Column("pairs", 6), Column("ties", 5),
                  Column("", 0, "<"), Column("by |Δscore| bin (agreement, n)", 0, "<")), rows)


@dataclass(frozen=True)
class Answer:
    """One pair and the participant's answer: R_user > 0 prefers x, < 0 prefers y, 0 is "can't tell"."""

    unit_x: str
    unit_y: str
    r_user: float


@dataclass(frozen=True)
class SimulatedStudy(Result):
    """A simulated participant's answers and every score's agreement with them (``study simulate``)."""

    config: StudyConfig
    participant: str
    """How the participant chooses."""
    answers: list[Answer]
    agreement: dict[str, Agreement]
    """Score column -> its agreement with the answers."""

    def to_json(self) -> dict[str, Any]:
        """agreement.json."""
        return {"participant": self.participant, "pairs": len(self.answers),
                "agreement": {k: to_json(v) for k, v in self.agreement.items()}}

    def write(self, folder: Path) -> None:
        write_pairs(folder / "pairs.csv", [(a.unit_x, a.unit_y, a.r_user) for a in self.answers])
        write_json(folder / "agreement.json", self.to_json())

    def summary(self) -> Summary:
        return [f"simulated participant ({self.participant}), {len(self.answers)} pairs -> {self.config.out}",
                agreement_lines(self.agreement)]


def simulate(cfg: StudyConfig) -> SimulatedStudy:
    """Answers of a participant who prefers units whose top items share one label, and every score's agreement with
    them; writes pairs.csv and agreement.json to ``cfg.out``."""
    units = read_units(Path(cfg.scores) / UNITS_NAME)
    check_out(Path(cfg.out), what="a study folder", marker="agreement.json", overwrite=cfg.overwrite,
              inputs=[cfg.scores, cfg.acts])
    _, store = _scored_store(cfg)
    if store.labels is None or store.labels.ndim != 1:
        raise UserError("the simulated participant follows the dataset's labels; this store has no class labels")
    tops = load_tops(Path(cfg.scores))
    pairs = draw_pairs(units, cfg.pairs, cfg.seed)
    purity = {}
    for u in {u for p in pairs for u in p}:
        set_id, unit = u.rsplit("/", 1)
        purity[u] = float(label_purity(store.labels[tops[f"{set_id}/top_items"][int(unit)].numpy()][None])[0])
    r = simulated_preferences([purity[a] for a, _ in pairs], [purity[b] for _, b in pairs], noise=cfg.noise,
                              seed=cfg.seed)
    answered = [(a, b, float(v)) for (a, b), v in zip(pairs, r, strict=True)]
    result = SimulatedStudy(config=cfg, participant=f"label purity of the top {MIN_ITEMS_FOR_CARD} items, noise "
                            f"{cfg.noise}", answers=[Answer(a, b, v) for a, b, v in answered],
                            agreement=agreement_table(answered, units))
    with staged(Path(cfg.out)) as tmp:
        result.write(tmp)
    return result


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


def write_pairs(path: Path, pairs: list[tuple[str, str, float]]) -> None:
    """A pairs.csv: unit_x, unit_y, R_user."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(PAIR_COLUMNS)
    w.writerows((a, b, f"{r:g}") for a, b, r in pairs)
    write_atomic(path, buf.getvalue())


@dataclass(frozen=True)
class StudyPage(Result):
    """The blind study page (``study page``)."""

    config: StudyConfig
    html: str
    """The self-contained page."""
    pairs: int
    """Pairs shown."""

    def write(self, folder: Path) -> None:
        """The page as ``FOLDER/<name of --out>``."""
        write_atomic(folder / Path(self.config.out).name, self.html)

    def summary(self) -> Summary:
        return [f"study page: {Path(self.config.out)} ({self.config.pairs} pairs; open it in a browser)"]


def build_page(cfg: StudyConfig) -> StudyPage:
    """The blind study page: ``cfg.pairs`` pairs of unit cards (top inputs only, no scores), sides shuffled."""
    out = Path(cfg.out)
    if out.suffix != ".html":
        raise UserError(f"--out for the study page is an .html file; got {out}")
    if out.exists() and not cfg.overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it")
    scores, store = _scored_store(cfg)
    units = read_units(Path(cfg.scores) / UNITS_NAME)
    modality = store.manifest.model["modality"]
    tops = load_tops(Path(cfg.scores))
    encoders = _encoders(cfg, scores, modality)
    rng = np.random.default_rng(cfg.seed + 1)
    shown = []
    for x, y in draw_pairs(units, cfg.pairs, cfg.seed):
        cards = []
        for u in (x, y):
            set_id, unit = u.rsplit("/", 1)
            unit_scores = units[u]
            row = FeatureRow(set=set_id, id=int(unit), ms=unit_scores.get("ms"), fms=unit_scores.get("fms"),
                             firing_rate=unit_scores.get("firing_rate"),
                             active_items=_int_or_none(unit_scores.get("active_items")),
                             best_label=None, best_corr=None, entropy=None)
            cards.append(unit_card(row, tops, store, modality, encoders.get(set_id), scores.label_names))
        shown.append(StudyPair(x=x, y=y, swap=bool(rng.random() < 0.5), cards=(cards[0], cards[1])))
    html = study_html(shown, modality=modality, title=f"Which unit is more coherent? ({scores.model} "
                      f"{scores.hook} on {scores.dataset})")
    page = StudyPage(config=cfg, html=html, pairs=len(shown))
    out.parent.mkdir(parents=True, exist_ok=True)
    page.write(out.parent)
    return page


def _scored_store(cfg: StudyConfig) -> tuple[ScoreFile, ActivationStore]:
    """The scores and their store, checked to be the one they were computed on (the units' top items index into
    it)."""
    if not (Path(cfg.scores) / SCORES_NAME).is_file():
        raise UserError(f"{cfg.scores} is not a score folder (no {SCORES_NAME}); run `monosemantic score` first")
    scores = load_scores(Path(cfg.scores))
    store = ActivationStore.open(cfg.acts)
    if Path(scores.store).resolve() != Path(cfg.acts).resolve() and (
            scores.n_items != store.n_items or scores.hook not in store.hooks):
        raise UserError(f"{cfg.scores} scored a store of {scores.n_items:,} items at {scores.hook!r}, but "
                        f"--acts {cfg.acts} has {store.n_items:,} items and hooks {list(store.hooks)}; pass the "
                        "store the scores were computed on")
    return scores, store


def _encoders(cfg: StudyConfig, scores: ScoreFile,
              modality: str) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    if modality == "image":
        return {}
    saes = {p.name: p for p in expand_sae_paths(cfg.sae)} if cfg.sae else {}
    missing = [s["id"] for s in scores.unit_sets if s["kind"] == "sae" and s["id"] not in saes]
    if missing:
        raise UserError(f"text snippets need the SAE folders of the scored sets; pass --sae for {missing}")
    return {"neurons": lambda x: x, **{k: SAE.load(p).encode for k, p in saes.items()}}


@dataclass(frozen=True)
class AgreeConfig:
    """The agreement of scores with a participant's answers (``study agree``)."""

    pairs: Path
    """Answers: a CSV with unit_x, unit_y, R_user (units as set/unit; R_user > 0 when x was preferred, 0 for can't
    tell), e.g. the download of a study page."""
    units: Path
    """units.csv of `monosemantic score` (the scores to check)."""
    score: list[str] = field(default_factory=lambda: list(SCORE_COLUMNS))
    """Score columns of units.csv to check (entropy counts lower as more coherent)."""
    out: Path | None = None
    """Also write the table as JSON here."""


@dataclass(frozen=True)
class AgreementTable(Result):
    """Every chosen score's agreement with the answers (``study agree``)."""

    config: AgreeConfig
    agreement: dict[str, Agreement]
    """Score column -> its agreement with the answers."""

    def to_json(self) -> dict[str, Any]:
        return {k: to_json(v) for k, v in self.agreement.items()}

    def write(self, folder: Path) -> None:
        """The table as JSON, ``FOLDER/<name of --out>`` (nothing without --out)."""
        if self.config.out is not None:
            write_json(folder / Path(self.config.out).name, self.to_json())

    def summary(self) -> Summary:
        return [agreement_lines(self.agreement)]


def agree(cfg: AgreeConfig) -> AgreementTable:
    """Every chosen score's agreement with the answers, overall and by |Δscore| bin."""
    units = read_units(cfg.units)
    unknown = [s for s in cfg.score if not any(s in u for u in units.values())]
    if unknown:
        raise UserError(f"{cfg.units} has no column(s) {unknown}; choose from {list(SCORE_COLUMNS)}")
    result = AgreementTable(config=cfg, agreement=agreement_table(read_pairs(cfg.pairs, units), units,
                                                                  tuple(cfg.score)))
    if cfg.out is not None:
        result.write(Path(cfg.out).parent)
    return result


COMMAND = Group(
    "study",
    description="Check a score against people, as the MS paper (arXiv 2504.02821) does: `study page` writes a "
    "self-contained HTML page showing pairs of units (top inputs only, no scores) where a participant picks the "
    "more coherent one and downloads the answers as pairs.csv; `study agree` gives each score's agreement with "
    "such answers, overall and by |Δscore| bin of 0.1; `study simulate` answers with a participant who follows "
    "the dataset's labels, to check that the harness measures what it says.",
    modes=(
        (Command("page", StudyConfig, build_page, description="", skip=("noise",), flags={"sae": ("--sae",)}),
         "write the study page (.html)"),
        (Command("agree", AgreeConfig, agree, description=""), "agreement of scores with a pairs.csv of answers"),
        (Command("simulate", StudyConfig, simulate, description="", skip=("sae",)),
         "answers of a label-following participant, and the scores' agreement"),
    ),
)

"""``monosemantic name``: name latents automatically and check the names with judges (Renzulli et al., "MedSAE",
arXiv 2510.26411, Sec. 3).

Reads a score folder (scores.json, units.csv), the activation store and the SAEs it scored; a namer names each
chosen latent from the inputs it fires on (``monosemantic.naming``), and judges decide for held-out activating and
silent inputs whether they match the name. Writes ``names.json`` (every name with its per-latent precision, recall
and F1 under each judge, and the name-shuffled control), ``names.csv`` and ``summary.json``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from monosemantic import log
from monosemantic.errors import UserError
from monosemantic.experiment import Column, Command, Result, Summary, Table
from monosemantic.files import check_out, staged, write_atomic, write_json
from monosemantic.metrics.items import item_activations
from monosemantic.naming.base import Judge, Namer, Naming, RoleInfo
from monosemantic.naming.cache import AnswerCache
from monosemantic.naming.evaluate import Judgement, Means, derangement, judge_one, mean_of
from monosemantic.naming.images import VLMJudge, VLMNamer, check_cached
from monosemantic.naming.select import LatentExamples, TextSnippets, build_examples, choose_latents, plan_latent
from monosemantic.naming.text import ChatLM, EmbeddingJudge, LabelJudge, LabelNamer, LMJudge, LMNamer
from monosemantic.report.scores import SCORES_NAME, ScoreFile, load_scores
from monosemantic.report.sections.names import KIND
from monosemantic.results import JSONDict, to_json
from monosemantic.sae import SAE
from monosemantic.sae.paths import expand_sae_paths
from monosemantic.sources.bundled import cache_dir
from monosemantic.store import ActivationStore

TEXT_JUDGES = ("smollm2", "minilm")
SETTINGS = ("latents", "select", "shown", "judged", "calibration", "min_active", "radius", "control", "seed")
"""The options names.json records under ``settings``."""


@dataclass(frozen=True)
class NameConfig:
    """Options of `monosemantic name` (one docstring per field, shown by --help)."""

    scores: Path
    """Score folder written by `monosemantic score` (scores.json, units.csv)."""
    out: Path
    """Folder for names.json, names.csv and summary.json; inside a run folder (e.g. RUN/names), `monosemantic report
    RUN` shows the names on its feature cards."""
    acts: Path | None = None
    """Activation store the scores were computed on (default: the store recorded in scores.json)."""
    sae: list[Path] = field(default_factory=list)
    """SAE folder(s), or a sweep folder, holding the named unit sets (default: found through the run folder that
    holds --scores)."""
    sets: list[str] = field(default_factory=list)
    """Unit set(s) to name: SAE ids as in scores.json, or neurons (default: the SAE with the highest mean MS)."""
    latents: int = 30
    """Latents named per unit set."""
    select: Literal["top-ms", "random"] = "top-ms"
    """Which latents: the highest-MS ones (those the report's cards show) or a seeded random sample."""
    namer: str = "smollm2"
    """smollm2 (bundled instruction model, text), labels (the dominant dataset label of the top items: the
    baseline) or a Hugging Face id in the local cache (a vision-language model for image stores)."""
    judge: Literal["auto", "smollm2", "minilm", "both", "labels", "vlm"] = "auto"
    """Who decides whether held-out snippets match a name: smollm2 (P(Yes) > P(No)), minilm (cosine above a
    threshold fitted per latent), both, labels (the item's label equals a label name) or vlm (the namer's VLM).
    auto: minilm for text with a model namer, labels for the label namer, vlm for a VLM namer."""
    shown: int = 16
    """Examples shown to the namer per latent: half of its strongest, half of its moderate activations."""
    judged: int = 10
    """Held-out activating examples judged per latent, and as many non-activating ones."""
    calibration: int = 8
    """Calibrated judges fit their cut-off per latent on this many of the examples the namer saw and as many other
    silent items (none of them judged)."""
    min_active: int = 40
    """Only latents active on at least this many items are named."""
    radius: int = 6
    """Text: tokens either side of the peak token in a snippet."""
    control: bool = True
    """Also judge every latent with another latent's name (the name-shuffled control)."""
    seed: int = 0
    """Seed of the shuffles and samples."""
    batch_size: int = 8
    """Prompts per model call."""
    cache: Path | None = None
    """SQLite file of cached prompts and answers (default: ~/.cache/monosemantic/naming.sqlite)."""
    overwrite: bool = False
    """Replace an existing --out folder of names."""

    def __post_init__(self) -> None:
        for flag, value, least in (("--latents", self.latents, 1), ("--shown", self.shown, 2),
                                   ("--judged", self.judged, 1), ("--min-active", self.min_active, 2),
                                   ("--radius", self.radius, 1), ("--calibration", self.calibration, 1),
                                   ("--batch-size", self.batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise UserError(f"{flag} must be a whole number of at least {least}; got {value!r}")
        if not self.namer:
            raise UserError("--namer must be smollm2, labels or a Hugging Face model id; got an empty name")


# ------------------------------------------------------------------------------------------------ the result


@dataclass(frozen=True)
class ShownExample:
    """An input the namer saw."""

    item: int
    value: float
    """The latent's activation on it (max over its tokens)."""
    text: str | None
    label: str | None


@dataclass(frozen=True)
class NamedLatent:
    """One latent: its name and description as parsed, what the namer saw, and each judge's verdicts."""

    set: str
    latent: int
    name: str
    description: str
    parse_ok: bool
    raw: str
    """The namer's answer (up to 500 characters)."""
    shown: list[ShownExample]
    judges: dict[str, Judgement]
    extra: dict[str, Any] | None = None
    """Namer-specific facts (the label namer's label and share), written into the latent's JSON."""

    def to_json(self) -> JSONDict:
        return {"set": self.set, "latent": self.latent, "name": self.name, "description": self.description,
                "parse_ok": self.parse_ok, "raw": self.raw, "shown": to_json(self.shown),
                "judges": {j: v.to_json() for j, v in self.judges.items()}, **(self.extra or {})}


@dataclass(frozen=True)
class JudgeSummary:
    """One judge's means over the named latents."""

    names: Means
    """Every latent with its own name (a parse failure counts as zeros)."""
    names_parsed: Means
    """The latents whose name parsed."""
    control: Means
    """The parsed latents, each judged with another latent's name."""


@dataclass(frozen=True)
class NamesSummary:
    namer: str
    n_latents: int
    parse_failures: int
    parse_failure_rate: float | None
    judges: dict[str, JudgeSummary]


@dataclass(frozen=True)
class NamesResult(Result):
    """The names of the chosen latents of one score folder, judged."""

    KIND = KIND
    config: NameConfig
    scores: str
    """The score folder (resolved)."""
    store: str
    model: str | None
    hook: str | None
    dataset: str | None
    modality: str
    namer: RoleInfo
    judges: list[RoleInfo]
    overall: NamesSummary
    """The means (``summary`` in names.json, and summary.json)."""
    latents: list[NamedLatent]

    def to_json(self) -> JSONDict:
        return {**KIND.header(), "scores": self.scores, "store": self.store, "model": self.model, "hook": self.hook,
                "dataset": self.dataset, "modality": self.modality, "namer": self.namer.to_json(),
                "judges": [j.to_json() for j in self.judges],
                "settings": {k: to_json(getattr(self.config, k)) for k in SETTINGS},
                "summary": to_json(self.overall), "latents": [r.to_json() for r in self.latents]}

    def write(self, folder: Path) -> None:
        write_json(folder / KIND.file, self.to_json(), allow_nan=False)
        write_json(folder / "summary.json", to_json(self.overall), allow_nan=False)
        write_atomic(folder / "names.csv", _csv_text(self.latents, [j.id for j in self.judges]))

    def summary(self) -> Summary:
        s = self.overall
        table = Table((Column("judge", 10, "<"), Column("", 9, "<"), *(Column(h, 6) for h in ("P", "R", "F1", "AUC"))),
                      [[judge, part, m.precision, m.recall, m.f1, m.auc]
                       for judge, parts in s.judges.items()
                       # control: the parsed latents, each judged with another's name
                       for part, m in (("names", parts.names), ("parsed", parts.names_parsed),
                                       ("control", parts.control)) if m.n])
        return [f"named {s.n_latents} latents with {s.namer}; parse failures {s.parse_failures} "
                f"({100 * (s.parse_failure_rate or 0):.0f}%)", table,
                json.dumps({"names": str(self.config.out / KIND.file)})]


def _csv_text(rows: list[NamedLatent], judge_ids: list[str]) -> str:
    """names.csv: one row per latent, with each judge's P, R, F1, AUC and the control's F1."""
    head = ["set", "latent", "name", "description", "parse_ok"]
    for j in judge_ids:
        head += [f"{j}_precision", f"{j}_recall", f"{j}_f1", f"{j}_auc", f"{j}_control_f1"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(head)
    for r in rows:
        line: list[Any] = [r.set, r.latent, r.name, r.description, int(r.parse_ok)]
        for j in judge_ids:
            v, c = r.judges[j].verdict, r.judges[j].control
            line += [v.precision, v.recall, v.f1, v.auc, None if c is None else c.f1]
        w.writerow(["" if v is None else v for v in line])
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ the run


def run(cfg: NameConfig, *, namer: Namer | None = None, judges: list[Judge] | None = None) -> NamesResult:
    """Name, judge and score; write names.json, names.csv and summary.json to ``cfg.out`` and return the result.
    ``namer`` / ``judges`` replace the ones the config names (tests, or models of your own)."""
    score_dir = Path(cfg.scores)
    scores, units = _read_scores(score_dir)
    wanted = _sets(cfg, scores)
    saes = _sae_paths(cfg, wanted)
    store = _open_store(cfg, scores)
    check_out(cfg.out, what="a names folder", marker=KIND.file, overwrite=cfg.overwrite,
              inputs=[score_dir, store.root, *(saes[s] for s in wanted if s in saes)])
    modality = _modality(store)
    cache = AnswerCache(None if cfg.cache is None and namer is not None else _cache_path(cfg))
    namer = namer or build_namer(cfg, modality, cache)
    judges = judges if judges is not None else build_judges(cfg, modality, namer, cache)
    if isinstance(namer, LabelNamer) and (store.labels is None or store.labels.ndim != 1):
        raise UserError("--namer labels needs one class label per item; this store has none")
    hook, label_names = scores.hook, [str(n) for n in scores.label_names or store.label_names]

    examples: list[LatentExamples] = []
    for set_id in wanted:
        examples.extend(_examples_of_set(cfg, store, hook, set_id, saes, units, label_names, modality, namer))
    if not examples:
        raise UserError(f"no latent of {', '.join(wanted)} is active on at least --min-active {cfg.min_active} items "
                        "(and silent on some); lower --min-active")
    namings = _name_all(cfg, examples, namer)
    rows = _judge_all(cfg, examples, namings, judges)
    result = NamesResult(
        config=cfg, scores=str(score_dir.resolve()), store=str(Path(store.root).resolve()), model=scores.model,
        hook=scores.hook, dataset=scores.dataset, modality=modality, namer=namer.describe(),
        judges=[j.describe() for j in judges], overall=_summarise(namer, judges, rows), latents=rows)
    with staged(cfg.out) as tmp:
        result.write(tmp)
    cache.close()
    return result


def _read_scores(score_dir: Path) -> tuple[ScoreFile, dict[str, dict[int, dict[str, Any]]]]:
    """scores.json and units.csv (unit set -> unit -> row) of a score folder, with one-line errors."""
    if not score_dir.is_dir():
        raise UserError(f"--scores {score_dir} is not a folder; give the folder written by `monosemantic score`")
    if not (score_dir / SCORES_NAME).is_file():
        raise UserError(f"--scores {score_dir} has no scores.json; give the folder written by `monosemantic score`")
    try:
        scores = load_scores(score_dir)
        sets = [str(s["id"]) for s in scores.unit_sets]
        units: dict[str, dict[int, dict[str, Any]]] = {s: {} for s in sets}
        with open(score_dir / "units.csv", newline="") as fh:
            for r in csv.DictReader(fh):
                units.setdefault(r["set"], {})[int(r["unit"])] = r
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"--scores {score_dir} is damaged ({type(exc).__name__}: {exc}); re-run `monosemantic score`"
                        ) from None
    return scores, units


def _sets(cfg: NameConfig, scores: ScoreFile) -> list[str]:
    known = [str(s["id"]) for s in scores.unit_sets]
    if cfg.sets:
        bad = [s for s in cfg.sets if s not in known]
        if bad:
            raise UserError(f"unknown unit set {bad[0]!r} in {cfg.scores}; choose from: {', '.join(known)}")
        return list(dict.fromkeys(cfg.sets))
    saes = [s for s in scores.unit_sets if s["kind"] != "neurons" and (s.get("ms") or {}).get("mean") is not None]
    return [str(max(saes, key=lambda s: s["ms"]["mean"])["id"])] if saes else [known[0]]


def _sae_paths(cfg: NameConfig, wanted: list[str]) -> dict[str, Path]:
    """The SAE folder of every wanted SAE set: from --sae, or from the train stages of the run folder that holds
    --scores."""
    found = {p.name: p for p in expand_sae_paths(cfg.sae)} if cfg.sae else _run_folder_saes(Path(cfg.scores))
    missing = [s for s in wanted if s != "neurons" and s not in found]
    if missing:
        where = "in the given --sae folders" if cfg.sae else "next to --scores (it is not in a run folder)"
        raise UserError(f"SAE {missing[0]!r} was not found {where}; pass --sae with its folder (or its sweep folder)")
    return found


def _run_folder_saes(scores: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    run_dir = scores.resolve().parent.parent
    try:
        stages = json.loads((run_dir / "run.json").read_text()).get("stages", {})
    except (OSError, ValueError, AttributeError):
        stages = {}
    for key, st in stages.items():
        where = run_dir / str(st.get("path", "")) if isinstance(st, dict) else None
        if "train" in str(key) and where is not None and where.is_dir():
            found.update({p.name: p for p in expand_sae_paths([where])})
    return found


def _open_store(cfg: NameConfig, scores: ScoreFile) -> ActivationStore:
    acts = Path(cfg.acts) if cfg.acts is not None else Path(scores.store)
    if cfg.acts is None and not acts.is_dir():
        raise UserError(f"the store recorded in {cfg.scores}/scores.json ({acts}) is gone; pass --acts STORE")
    store = ActivationStore.open(acts)
    if store.n_items != scores.n_items or scores.hook not in store.hooks:
        raise UserError(f"--acts {acts} is not the store {cfg.scores} was scored on ({store.n_items} items, hooks "
                        f"{', '.join(store.hooks)}; the scores have {scores.n_items} items of hook "
                        f"{scores.hook!r})")
    return store


def _modality(store: ActivationStore) -> str:
    modality = str(store.manifest.model.get("modality"))
    if modality not in ("text", "image") and store.items and store.items[0].get("kind") == "text":
        return "text"  # a store written from arrays that kept its items' texts
    return modality


def build_namer(cfg: NameConfig, modality: str, cache: AnswerCache) -> Namer:
    """The namer the options ask for (SmolLM2, label statistics or a vision-language model)."""
    if cfg.namer == "labels":
        return LabelNamer()
    if modality == "image":
        if cfg.namer == "smollm2":
            raise UserError("--namer smollm2 reads text but this store holds images; use --namer labels or a "
                            "vision-language model id from your Hugging Face cache")
        check_cached(cfg.namer)
        return VLMNamer(cache, cfg.namer)
    if modality != "text":
        raise UserError(f"this store holds {modality} items with no text or images to show a model; use --namer labels")
    return LMNamer(cache, ChatLM(cfg.namer, cfg.batch_size), ident=cfg.namer)


def build_judges(cfg: NameConfig, modality: str, namer: Namer, cache: AnswerCache) -> list[Judge]:
    """The judges the options ask for (SmolLM2, MiniLM, labels or a vision-language model)."""
    choice = cfg.judge
    if choice == "auto":
        choice = "labels" if cfg.namer == "labels" else ("vlm" if modality == "image" else "minilm")
    if choice == "labels":
        return [LabelJudge()]
    if choice == "vlm":
        if cfg.namer in ("labels", "smollm2") or modality != "image":
            raise UserError("--judge vlm asks the namer's vision-language model; give --namer HF_ID on an image store")
        return [VLMJudge(cache, cfg.namer)]
    if modality != "text":
        raise UserError(f"--judge {choice} reads text but this store holds {modality} items; use --judge labels"
                        + (" or vlm" if modality == "image" else ""))
    wanted = TEXT_JUDGES if choice == "both" else (choice,)
    shared = getattr(namer, "lm", None) if cfg.namer == "smollm2" else None  # one SmolLM2 in memory, not two
    return [LMJudge(cache, shared or ChatLM("smollm2", cfg.batch_size)) if j == "smollm2" else EmbeddingJudge(cache)
            for j in wanted]


def _cache_path(cfg: NameConfig) -> Path:
    return Path(cfg.cache) if cfg.cache is not None else cache_dir() / "naming.sqlite"


def _examples_of_set(cfg: NameConfig, store: ActivationStore, hook: str, set_id: str, saes: dict[str, Path],
                     units: dict[str, dict[int, dict[str, Any]]], label_names: list[str], modality: str,
                     namer: Namer) -> list[LatentExamples]:
    if set_id == "neurons":
        def encode(x: torch.Tensor) -> torch.Tensor:
            return x

        width = store.width(hook)
    else:
        sae = SAE.load(saes[set_id])
        encode, width = sae.encode, sae.cfg.d_sae
    acts = item_activations(store, hook, encode, width, "max").acts
    ms = {j: _num(r.get("ms")) for j, r in units.get(set_id, {}).items()}
    chosen = choose_latents(acts, ms, cfg.latents, cfg.min_active, cfg.select, cfg.seed)
    plans = [plan_latent(set_id, j, acts, cfg.shown, cfg.judged, cfg.calibration, cfg.seed) for j in chosen]
    snippets = TextSnippets(store, hook, encode, cfg.radius, cfg.seed) if modality == "text" else None
    want_images = modality == "image" and not isinstance(namer, LabelNamer)
    return build_examples(plans, store, label_names, snippets, want_images)


def _name_all(cfg: NameConfig, examples: list[LatentExamples], namer: Namer) -> list[Naming]:
    namings: list[Naming] = []
    with log.bar(total=len(examples), desc=f"name ({namer.id})", unit="latent") as bar:
        for a in range(0, len(examples), cfg.batch_size):
            chunk = examples[a : a + cfg.batch_size]
            got = namer.name_many([ex.shown for ex in chunk])
            if len(got) != len(chunk):
                raise RuntimeError(f"namer {namer.id} returned {len(got)} names for {len(chunk)} latents")
            namings.extend(got)
            bar.update(len(chunk))
    return namings


def _judge_all(cfg: NameConfig, examples: list[LatentExamples], namings: list[Naming],
               judges: list[Judge]) -> list[NamedLatent]:
    parsed = [i for i, n in enumerate(namings) if n.ok]
    partner: dict[int, int] = {}
    if cfg.control and len(parsed) >= 2:
        perm = derangement(len(parsed), cfg.seed)
        partner = {parsed[k]: parsed[perm[k]] for k in range(len(parsed))}
    rows = []
    with log.bar(total=len(examples) * len(judges), desc="judge", unit="latent") as bar:
        for i, (ex, naming) in enumerate(zip(examples, namings, strict=True)):
            verdicts = {}
            for judge in judges:
                verdicts[judge.id] = Judgement(judge_one(judge, naming, ex))
                if cfg.control and i in partner:
                    other, src = namings[partner[i]], examples[partner[i]]
                    verdicts[judge.id] = Judgement(verdicts[judge.id].verdict, judge_one(judge, other, ex),
                                                   other.concept, f"{src.set_id}#{src.latent}")
                bar.update(1)
            rows.append(NamedLatent(
                ex.set_id, ex.latent, naming.concept, naming.description, naming.ok, naming.raw[:500],
                [ShownExample(e.item, round(e.value, 4), e.text, e.label) for e in ex.shown], verdicts,
                naming.extra or None))
    return rows


def _summarise(namer: Namer, judges: list[Judge], rows: list[NamedLatent]) -> NamesSummary:
    n_fail = sum(1 for r in rows if not r.parse_ok)
    per_judge = {}
    for j in judges:
        per = [r.judges[j.id] for r in rows]
        per_judge[j.id] = JudgeSummary(
            names=mean_of([p.verdict for p in per]),
            names_parsed=mean_of([r.judges[j.id].verdict for r in rows if r.parse_ok]),
            control=mean_of([p.control for p in per if p.control is not None]))
    return NamesSummary(namer.id, len(rows), n_fail, round(n_fail / len(rows), 4) if rows else None, per_judge)


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


COMMAND = Command(
    "name", NameConfig, run,
    description="Name the latents of a scored unit set from the inputs they fire on (strong and moderate "
    "activations), then let judges decide for held-out activating and silent inputs whether they match each "
    "name: precision, recall and F1 per latent and their means, the parse-failure rate, and the same scores "
    "for names shuffled across latents as a control. Writes names.json, names.csv and summary.json; "
    "`monosemantic report` shows the names on feature cards when a run folder holds them.",
    flags={"scores": ("--scores",), "sets": ("--set",)},
)

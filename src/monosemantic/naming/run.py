"""`monosemantic name`: name latents automatically and check the names with judges (Renzulli et al., "MedSAE",
arXiv 2510.26411, Sec. 3).

Reads a score folder (scores.json, units.csv), the activation store and the SAEs it scored; writes ``names.json``
(every name with its per-latent precision, recall and F1 under each judge, and the name-shuffled control),
``names.csv`` and ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm.auto import tqdm

from monosemantic.errors import UserError
from monosemantic.files import check_out, staged
from monosemantic.naming.base import Judge, Namer, Naming
from monosemantic.naming.cache import AnswerCache
from monosemantic.naming.evaluate import derangement, judge_one, mean_of
from monosemantic.naming.select import LatentExamples, TextSnippets, build_examples, choose_latents, plan_latent

NAMES_NAME = "names.json"
NAMES_FORMAT = "monosemantic-names"
TEXT_JUDGES = ("smollm2", "minilm")


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


def _validate(cfg: NameConfig) -> None:
    for flag, value, least in (("--latents", cfg.latents, 1), ("--shown", cfg.shown, 2), ("--judged", cfg.judged, 1),
                               ("--min-active", cfg.min_active, 2), ("--radius", cfg.radius, 1),
                               ("--calibration", cfg.calibration, 1), ("--batch-size", cfg.batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UserError(f"{flag} must be a whole number of at least {least}; got {value!r}")
    if not cfg.namer:
        raise UserError("--namer must be smollm2, labels or a Hugging Face model id; got an empty name")


def _read_scores(score_dir: Path) -> tuple[dict[str, Any], dict[str, dict[int, dict[str, Any]]]]:
    path = score_dir / "scores.json"
    if not score_dir.is_dir():
        raise UserError(f"--scores {score_dir} is not a folder; give the folder written by `monosemantic score`")
    if not path.is_file():
        raise UserError(f"--scores {score_dir} has no scores.json; give the folder written by `monosemantic score`")
    try:
        scores = json.loads(path.read_text())
        sets = [str(s["id"]) for s in scores["unit_sets"]]
        units: dict[str, dict[int, dict[str, Any]]] = {s: {} for s in sets}
        with open(score_dir / "units.csv", newline="") as fh:
            for r in csv.DictReader(fh):
                units.setdefault(r["set"], {})[int(r["unit"])] = r
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"--scores {score_dir} is damaged ({type(exc).__name__}: {exc}); re-run `monosemantic score`"
                        ) from None
    return scores, units


def _sets(cfg: NameConfig, scores: dict[str, Any]) -> list[str]:
    known = [str(s["id"]) for s in scores["unit_sets"]]
    if cfg.sets:
        bad = [s for s in cfg.sets if s not in known]
        if bad:
            raise UserError(f"unknown unit set {bad[0]!r} in {cfg.scores}; choose from: {', '.join(known)}")
        return list(dict.fromkeys(cfg.sets))
    saes = [s for s in scores["unit_sets"] if s["kind"] != "neurons" and (s.get("ms") or {}).get("mean") is not None]
    return [str(max(saes, key=lambda s: s["ms"]["mean"])["id"])] if saes else [known[0]]


def _sae_paths(cfg: NameConfig, wanted: list[str]) -> dict[str, Path]:
    from monosemantic.sae.paths import expand_sae_paths

    if cfg.sae:
        found = {p.name: p for p in expand_sae_paths(cfg.sae)}
    else:
        found = {}
        run = Path(cfg.scores).resolve().parent.parent
        try:
            stages = json.loads((run / "run.json").read_text()).get("stages", {})
        except (OSError, ValueError, AttributeError):
            stages = {}
        for key, st in stages.items():
            where = run / str(st.get("path", "")) if isinstance(st, dict) else None
            if "train" in str(key) and where is not None and where.is_dir():
                found.update({p.name: p for p in expand_sae_paths([where])})
    missing = [s for s in wanted if s != "neurons" and s not in found]
    if missing:
        where = "in the given --sae folders" if cfg.sae else "next to --scores (it is not in a run folder)"
        raise UserError(f"SAE {missing[0]!r} was not found {where}; pass --sae with its folder (or its sweep folder)")
    return found


def _open_store(cfg: NameConfig, scores: dict[str, Any]) -> Any:
    from monosemantic.store import ActivationStore

    acts = Path(cfg.acts) if cfg.acts is not None else Path(str(scores.get("store", "")))
    if cfg.acts is None and not acts.is_dir():
        raise UserError(f"the store recorded in {cfg.scores}/scores.json ({acts}) is gone; pass --acts STORE")
    store = ActivationStore.open(acts)
    if store.n_items != scores.get("n_items") or scores.get("hook") not in store.hooks:
        raise UserError(f"--acts {acts} is not the store {cfg.scores} was scored on ({store.n_items} items, hooks "
                        f"{', '.join(store.hooks)}; the scores have {scores.get('n_items')} items of hook "
                        f"{scores.get('hook')!r})")
    return store


def _modality(store: Any) -> str:
    modality = str(store.manifest.model.get("modality"))
    if modality not in ("text", "image") and store.items and store.items[0].get("kind") == "text":
        return "text"  # a store written from arrays that kept its items' texts
    return modality


def build_namer(cfg: NameConfig, modality: str, cache: AnswerCache) -> Namer:
    """The namer the options ask for (SmolLM2, label statistics or a vision-language model)."""
    from monosemantic.naming.text import ChatLM, LabelNamer, LMNamer

    if cfg.namer == "labels":
        return LabelNamer()
    if modality == "image":
        if cfg.namer == "smollm2":
            raise UserError("--namer smollm2 reads text but this store holds images; use --namer labels or a "
                            "vision-language model id from your Hugging Face cache")
        from monosemantic.naming.images import VLMNamer, check_cached

        check_cached(cfg.namer)
        return VLMNamer(cache, cfg.namer)
    if modality != "text":
        raise UserError(f"this store holds {modality} items with no text or images to show a model; use --namer labels")
    return LMNamer(cache, ChatLM(cfg.namer, cfg.batch_size), ident=cfg.namer)


def build_judges(cfg: NameConfig, modality: str, namer: Namer, cache: AnswerCache) -> list[Judge]:
    """The judges the options ask for (SmolLM2, MiniLM, labels or a vision-language model)."""
    from monosemantic.naming.text import ChatLM, EmbeddingJudge, LabelJudge, LMJudge

    choice = cfg.judge
    if choice == "auto":
        choice = "labels" if cfg.namer == "labels" else ("vlm" if modality == "image" else "minilm")
    if choice == "labels":
        return [LabelJudge()]
    if choice == "vlm":
        if cfg.namer in ("labels", "smollm2") or modality != "image":
            raise UserError("--judge vlm asks the namer's vision-language model; give --namer HF_ID on an image store")
        from monosemantic.naming.images import VLMJudge

        return [VLMJudge(cache, cfg.namer)]
    if modality != "text":
        raise UserError(f"--judge {choice} reads text but this store holds {modality} items; use --judge labels"
                        + (" or vlm" if modality == "image" else ""))
    wanted = TEXT_JUDGES if choice == "both" else (choice,)
    shared = getattr(namer, "lm", None) if cfg.namer == "smollm2" else None  # one SmolLM2 in memory, not two
    return [LMJudge(cache, shared or ChatLM("smollm2", cfg.batch_size)) if j == "smollm2" else EmbeddingJudge(cache)
            for j in wanted]


def name_latents(cfg: NameConfig, *, namer: Namer | None = None, judges: list[Judge] | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Name, judge and score; write names.json, names.csv and summary.json to ``cfg.out`` and return names.json.
    ``namer`` / ``judges`` replace the ones the config names (tests, or models of your own)."""
    from monosemantic.sae import SAE

    _validate(cfg)
    score_dir = Path(cfg.scores)
    scores, units = _read_scores(score_dir)
    wanted = _sets(cfg, scores)
    saes = _sae_paths(cfg, wanted)
    store = _open_store(cfg, scores)
    check_out(cfg.out, what="a names folder", marker=NAMES_NAME, overwrite=cfg.overwrite,
              inputs=[score_dir, store.root, *(saes[s] for s in wanted if s in saes)])
    modality = _modality(store)
    cache = AnswerCache(None if cfg.cache is None and namer is not None else _cache_path(cfg))
    namer = namer or build_namer(cfg, modality, cache)
    judges = judges if judges is not None else build_judges(cfg, modality, namer, cache)
    if isinstance(namer, _needs_labels()) and (store.labels is None or store.labels.ndim != 1):
        raise UserError("--namer labels needs one class label per item; this store has none")
    hook, label_names = str(scores["hook"]), [str(n) for n in scores.get("label_names") or store.label_names]

    examples: list[LatentExamples] = []
    for set_id in wanted:
        examples.extend(_examples_of_set(cfg, store, hook, set_id, saes, units, label_names, modality,
                                         namer, SAE))
    if not examples:
        raise UserError(f"no latent of {', '.join(wanted)} is active on at least --min-active {cfg.min_active} items "
                        "(and silent on some); lower --min-active")

    namings: list[Naming] = []
    with tqdm(total=len(examples), desc=f"name ({namer.id})", unit="latent", disable=not progress,
              dynamic_ncols=True) as bar:
        for a in range(0, len(examples), cfg.batch_size):
            chunk = examples[a : a + cfg.batch_size]
            got = namer.name_many([ex.shown for ex in chunk])
            if len(got) != len(chunk):
                raise RuntimeError(f"namer {namer.id} returned {len(got)} names for {len(chunk)} latents")
            namings.extend(got)
            bar.update(len(chunk))
    rows = _judge_all(cfg, examples, namings, judges, progress)
    result = _result(cfg, scores, store, modality, namer, judges, rows)
    with staged(cfg.out) as tmp:
        (tmp / NAMES_NAME).write_text(json.dumps(result, indent=1, allow_nan=False))
        (tmp / "summary.json").write_text(json.dumps(result["summary"], indent=1, allow_nan=False))
        _write_csv(tmp / "names.csv", rows, [j.id for j in judges])
    cache.close()
    return result


def _needs_labels() -> type:
    from monosemantic.naming.text import LabelNamer

    return LabelNamer


def _cache_path(cfg: NameConfig) -> Path:
    if cfg.cache is not None:
        return Path(cfg.cache)
    from monosemantic.sources.bundled import cache_dir

    return cache_dir() / "naming.sqlite"


def _examples_of_set(cfg: NameConfig, store: Any, hook: str, set_id: str, saes: dict[str, Path],
                     units: dict[str, dict[int, dict[str, Any]]], label_names: list[str], modality: str,
                     namer: Namer, sae_cls: Any) -> list[LatentExamples]:
    from monosemantic.metrics.items import item_activations

    if set_id == "neurons":
        def encode(x: torch.Tensor) -> torch.Tensor:
            return x

        width = store.width(hook)
    else:
        sae = sae_cls.load(saes[set_id])
        encode, width = sae.encode, sae.cfg.d_sae
    acts = item_activations(store, hook, encode, width, "max").acts
    ms = {j: _num(r.get("ms")) for j, r in units.get(set_id, {}).items()}
    chosen = choose_latents(acts, ms, cfg.latents, cfg.min_active, cfg.select, cfg.seed)
    plans = [plan_latent(set_id, j, acts, cfg.shown, cfg.judged, cfg.calibration, cfg.seed) for j in chosen]
    snippets = TextSnippets(store, hook, encode, cfg.radius, cfg.seed) if modality == "text" else None
    want_images = modality == "image" and not isinstance(namer, _needs_labels())
    return build_examples(plans, store, label_names, snippets, want_images)


def _judge_all(cfg: NameConfig, examples: list[LatentExamples], namings: list[Naming], judges: list[Judge],
               progress: bool) -> list[dict[str, Any]]:
    parsed = [i for i, n in enumerate(namings) if n.ok]
    partner: dict[int, int] = {}
    if cfg.control and len(parsed) >= 2:
        perm = derangement(len(parsed), cfg.seed)
        partner = {parsed[k]: parsed[perm[k]] for k in range(len(parsed))}
    rows = []
    total = len(examples) * len(judges)
    with tqdm(total=total, desc="judge", unit="latent", disable=not progress, dynamic_ncols=True) as bar:
        for i, (ex, naming) in enumerate(zip(examples, namings, strict=True)):
            row: dict[str, Any] = {
                "set": ex.set_id, "latent": ex.latent, "name": naming.concept, "description": naming.description,
                "parse_ok": naming.ok, "raw": naming.raw[:500],
                "shown": [{"item": e.item, "value": round(e.value, 4), "text": e.text, "label": e.label}
                          for e in ex.shown],
                "judges": {},
            }
            if naming.extra:
                row.update(naming.extra)
            for judge in judges:
                res = judge_one(judge, naming, ex)
                if cfg.control and i in partner:
                    other = namings[partner[i]]
                    res["control"] = {**judge_one(judge, other, ex), "name": other.concept,
                                      "name_from": f"{examples[partner[i]].set_id}#{examples[partner[i]].latent}"}
                row["judges"][judge.id] = res
                bar.update(1)
            rows.append(row)
    return rows


def _result(cfg: NameConfig, scores: dict[str, Any], store: Any, modality: str, namer: Namer, judges: list[Judge],
            rows: list[dict[str, Any]]) -> dict[str, Any]:
    n_fail = sum(1 for r in rows if not r["parse_ok"])
    summary: dict[str, Any] = {"namer": namer.id, "n_latents": len(rows), "parse_failures": n_fail,
                               "parse_failure_rate": round(n_fail / len(rows), 4) if rows else None, "judges": {}}
    for j in judges:
        per = [r["judges"][j.id] for r in rows]
        ok = [r["judges"][j.id] for r in rows if r["parse_ok"]]
        summary["judges"][j.id] = {"names": mean_of(per), "names_parsed": mean_of(ok),
                                   "control": mean_of([p["control"] for p in per if "control" in p])}
    return {
        "format": NAMES_FORMAT, "format_version": 1, "scores": str(Path(cfg.scores).resolve()),
        "store": str(Path(store.root).resolve()), "model": scores.get("model"), "hook": scores.get("hook"),
        "dataset": scores.get("dataset"), "modality": modality, "namer": namer.describe(),
        "judges": [j.describe() for j in judges],
        "settings": {k: getattr(cfg, k) for k in ("latents", "select", "shown", "judged", "calibration",
                                                  "min_active", "radius", "control", "seed")},
        "summary": summary, "latents": rows,
    }


def _write_csv(path: Path, rows: list[dict[str, Any]], judge_ids: list[str]) -> None:
    head = ["set", "latent", "name", "description", "parse_ok"]
    for j in judge_ids:
        head += [f"{j}_precision", f"{j}_recall", f"{j}_f1", f"{j}_auc", f"{j}_control_f1"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        for r in rows:
            line = [r["set"], r["latent"], r["name"], r["description"], int(r["parse_ok"])]
            for j in judge_ids:
                res = r["judges"][j]
                line += [res["precision"], res["recall"], res["f1"], res["auc"], (res.get("control") or {}).get("f1")]
            w.writerow(["" if v is None else v for v in line])


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None

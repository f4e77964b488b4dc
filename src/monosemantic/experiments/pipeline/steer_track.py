"""Steering tracks: the experiment of Härle et al. (arXiv 2506.19382) on one task, end to end, cached as one stage of
a run.

A track extracts the task's bundled data at one layer of a causal LM, trains a vanilla TopK SAE and a G-SAE of the
same width and k on it (the run's extract and train stages), measures on the held-out items how monosemantic each
SAE's concept latents are (``monosemantic.steer.concepts``), then steers the model with each over the task's α grid
and scores success, perplexity and repetition (``monosemantic.steer.evaluate``). Results go to ``steer.json`` in
the run folder, which the report shows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.experiments.pipeline.config import HOLDOUT, SteerTrackConfig
from monosemantic.experiments.pipeline.stages import RunState, extract_stage, say, train_stage
from monosemantic.files import write_json
from monosemantic.report.sections.steer import KIND
from monosemantic.results import JSONDict
from monosemantic.sae import SAE
from monosemantic.sae.paths import expand_sae_paths
from monosemantic.sources import load_model
from monosemantic.steer.concepts import ConceptScores, concept_rows, score_concepts
from monosemantic.steer.evaluate import AlphaSweep, Method, alpha_sweep
from monosemantic.steer.interventions import Edit
from monosemantic.steer.scorers import StyleClassifier
from monosemantic.steer.tasks import Task, get_task
from monosemantic.store import ActivationStore

METHODS = (("vanilla", "topk"), ("gsae", "gsae"))
"""The two SAEs of a track: the method's name in the results, and the architecture trained for it (the G-SAE names
its concept latents; the vanilla SAE's are the roots of its FMS trees)."""


@dataclass(frozen=True)
class TrackSAE:
    """One of a track's SAEs: its concept latents scored, and its training evaluation."""

    scores: ConceptScores
    fvu: float | None
    l0: float | None
    folder: str

    def to_json(self) -> JSONDict:
        return {**self.scores.to_json(), "fvu": self.fvu, "l0": self.l0, "folder": self.folder}


@dataclass(frozen=True)
class SteerTrackResult:
    """A steering track's result: both SAEs' concept latents and the α sweep (one entry of ``steer.json``)."""

    track: str
    task: Task
    model: str
    layer: str
    concepts: list[str]
    d_sae: int
    k: int
    fms_rows: int
    """Held-out items (token rows for a per-token task) the concept latents were scored on."""
    sae: dict[str, TrackSAE]
    """Per method (vanilla, gsae)."""
    sweep: AlphaSweep
    seconds: float
    style_classifier_heldout_accuracy: float | None = None
    """The style task's classifier's accuracy on its held-out lines (written for that task only)."""

    def to_json(self) -> JSONDict:
        task = self.task
        out: JSONDict = {
            "format": KIND.format, "track": self.track, "task": task.name, "definition": task.definition,
            "model": self.model, "layer": self.layer, "dataset": task.dataset, "concepts": self.concepts,
            "d_sae": self.d_sae, "k": self.k, "gamma": task.gamma, "rule": "direction", "fms_variant": "balanced",
            "fms_rows": self.fms_rows, "pooling": "per-token" if task.per_token else "item mean",
            "sae": {m: s.to_json() for m, s in self.sae.items()}, "sweep": self.sweep.to_json(),
            "seconds": self.seconds,
        }
        if self.style_classifier_heldout_accuracy is not None:
            out["style_classifier_heldout_accuracy"] = self.style_classifier_heldout_accuracy
        return out


def run_steer_track(state: RunState, st: SteerTrackConfig, seed: int) -> JSONDict:
    """Extract, train both SAEs, score their concept latents and sweep α; cached as one stage of the run. Returns
    the track's entry of ``steer.json`` (read back from the stage's file when cached)."""
    task = get_task(st.task)
    track = st.as_track()
    extracted = extract_stage(state, track)
    stages = {arch: train_stage(state, track, extracted, arch, seed) for _, arch in METHODS}
    alphas = list(st.alphas) or list(task.alphas)
    inputs = {"extract": extracted.hash, "saes": {a: s.hash for a, s in stages.items()}, "alphas": alphas,
              "n_prompts": st.n_prompts, "max_new_tokens": st.max_new_tokens, "fms_rows": st.fms_rows, "seed": seed,
              "version": 2}
    stage = state.stage(f"{st.name}/steer", "steer", inputs, suffix=".json")
    if stage.done:
        say(st.name, "steer", "cached")
        return json.loads(stage.path.read_text())
    started = stage.start()
    result = _experiment(st, task, extracted.path, {a: expand_sae_paths([s.path])[0] for a, s in stages.items()},
                         alphas, seed, lambda m: say(st.name, "steer", m)).to_json()
    write_json(stage.path, result)
    stage.finish(started)
    return result


def _experiment(st: SteerTrackConfig, task: Task, store_path: Path, sae_dirs: dict[str, Path], alphas: list[float],
                seed: int, status: Callable[[str], None]) -> SteerTrackResult:
    t0 = time.perf_counter()
    device = resolve_device(st.device)
    store = ActivationStore.open(store_path)
    saes = {a: SAE.load(p, device) for a, p in sae_dirs.items()}
    concepts = store.label_names
    x, y = concept_rows(store, per_token=task.per_token, limit=st.fms_rows, seed=seed, holdout=HOLDOUT)
    status(f"FMS and AUROC on {len(y):,} held-out {'token rows' if task.per_token else 'items'}, {len(concepts)} "
           "concept(s)")
    scored = {a: score_concepts(saes[a], x, y, seed) for a in saes}

    def edits_for(s: ConceptScores) -> Callable[[float], list[Edit]]:
        def make(alpha: float) -> list[Edit]:
            return [Edit((j,), "direction", alpha * sign, task.gamma) for j, sign in zip(s.latents, s.signs,
                                                                                         strict=True)]
        return make

    model = load_model(st.model, max_length=st.max_length).to_device(device)
    prompts = task.prompts(st.n_prompts, seed)
    if not prompts:
        raise UserError(f"task {task.name!r} gave no prompts; check its held-out data")
    status(f"steering {len(prompts)} prompts over α {alphas} with both SAEs")
    methods = [Method(m, saes[a], edits_for(scored[a])) for m, a in METHODS]
    sweep = alpha_sweep(model, prompts, methods, alphas, task.success, max_new_tokens=st.max_new_tokens,
                        batch_size=st.gen_batch_size)
    evals = {a: json.loads((p / "eval.json").read_text()) for a, p in sae_dirs.items()}
    return SteerTrackResult(
        track=st.name, task=task, model=st.model, layer=st.layer, concepts=concepts,
        d_sae=saes[METHODS[0][1]].cfg.d_sae, k=st.k, fms_rows=len(y),
        sae={m: TrackSAE(scored[a], evals[a].get("fvu"), evals[a].get("l0"), str(sae_dirs[a])) for m, a in METHODS},
        sweep=sweep, seconds=round(time.perf_counter() - t0, 1),
        style_classifier_heldout_accuracy=StyleClassifier.default().heldout_accuracy if task.name == "style" else None,
    )


def steer_results_path(root: Path) -> Path:
    """``RUN/steer/steer.json``: where a run's steering tracks are written together."""
    return root / "steer" / KIND.file


def write_steer_results(root: Path, results: list[JSONDict]) -> Path:
    """``RUN/steer/steer.json``: every steering track's result, for the report."""
    path = steer_results_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {**KIND.header(), "tracks": results})
    return path

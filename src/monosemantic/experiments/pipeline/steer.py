"""Steering tracks: the experiment of Härle et al. (arXiv 2506.19382) on one task, end to end.

A track extracts the task's bundled data at one layer of a causal LM, trains a vanilla TopK SAE and a G-SAE of the
same width and k on it, measures on the held-out items how monosemantic each SAE's concept latents are (balanced
FMS@1 / FMS@5, detection AUROC), then steers the model with each (the vanilla SAE through the root latent of its
FMS tree, the G-SAE through its reserved latent) over the task's α grid and scores success, perplexity and
repetition. Results go to ``steer.json`` in the run folder, which the report shows.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError
from monosemantic.experiments.pipeline.config import HOLDOUT, SteerTrackConfig

FORMAT = "monosemantic-steer"
RESULT_NAME = "steer.json"
FMS_P = (1, 5)


def run_steer_track(state: Any, st: SteerTrackConfig, seed: int) -> dict[str, Any]:
    """Extract, train both SAEs, score their concept latents and sweep α; cached as one stage of the run."""
    from monosemantic.experiments.pipeline.stages import extract_stage, say, train_stage
    from monosemantic.steer.tasks import get_task

    task = get_task(st.task)
    track = st.as_track()
    extracted = extract_stage(state, track)
    stages = {arch: train_stage(state, track, extracted, arch, seed) for arch in ("topk", "gsae")}
    alphas = list(st.alphas) or list(task.alphas)
    inputs = {"extract": extracted.hash, "saes": {a: s.hash for a, s in stages.items()}, "alphas": alphas,
              "n_prompts": st.n_prompts, "max_new_tokens": st.max_new_tokens, "fms_rows": st.fms_rows, "seed": seed,
              "version": 2}
    stage = state.stage(f"{st.name}/steer", "steer", inputs, suffix=".json")
    if stage.done:
        say(st.name, "steer", "cached")
        return json.loads(stage.path.read_text())  # type: ignore[no-any-return]
    started = stage.start()
    result = _experiment(st, task, extracted.path, {a: _sae_dir(s.path) for a, s in stages.items()}, alphas,
                         seed, lambda m: say(st.name, "steer", m))
    from monosemantic.files import write_json

    write_json(stage.path, result)
    stage.finish(started)
    return result


def _sae_dir(path: Path) -> Path:
    from monosemantic.sae.paths import expand_sae_paths

    return expand_sae_paths([path])[0]


def _experiment(st: SteerTrackConfig, task: Any, store_path: Path, sae_dirs: dict[str, Path], alphas: list[float],
                seed: int, say: Any) -> dict[str, Any]:
    from monosemantic.devices import resolve_device
    from monosemantic.sae import SAE
    from monosemantic.sources import load_model
    from monosemantic.steer.evaluate import Method, alpha_sweep
    from monosemantic.steer.interventions import Edit
    from monosemantic.store import ActivationStore

    t0 = time.perf_counter()
    device = resolve_device(st.device)
    store = ActivationStore.open(store_path)
    saes = {a: SAE.load(p, device) for a, p in sae_dirs.items()}
    concepts = store.label_names
    x, y = concept_rows(store, task.per_token, st.fms_rows, seed)
    say(f"FMS and AUROC on {len(y):,} held-out {'token rows' if task.per_token else 'items'}, {len(concepts)} "
        "concept(s)")
    scored = {a: score_concepts(saes[a], a, x, y, task.per_token, seed) for a in saes}
    latents = {"topk": scored["topk"]["latents"], "gsae": list(range(len(concepts)))}
    signs = {"topk": scored["topk"]["signs"], "gsae": [1.0] * len(concepts)}

    def edits_for(arch: str) -> Any:
        def make(alpha: float) -> list[Edit]:
            return [Edit((j,), "direction", alpha * s, task.gamma) for j, s in zip(latents[arch], signs[arch],
                                                                                  strict=True)]
        return make

    model = load_model(st.model, max_length=st.max_length).to_device(device)
    prompts = task.prompts(st.n_prompts, seed)
    if not prompts:
        raise UserError(f"task {task.name!r} gave no prompts; check its held-out data")
    say(f"steering {len(prompts)} prompts over α {alphas} with both SAEs")
    methods = [Method("vanilla", saes["topk"], edits_for("topk")), Method("gsae", saes["gsae"], edits_for("gsae"))]
    sweep = alpha_sweep(model, prompts, methods, alphas, task.success, max_new_tokens=st.max_new_tokens,
                        batch_size=st.gen_batch_size)
    extra: dict[str, Any] = {}
    if task.name == "style":
        from monosemantic.steer.scorers import StyleClassifier

        extra["style_classifier_heldout_accuracy"] = StyleClassifier.default().heldout_accuracy
    evals = {a: json.loads((p / "eval.json").read_text()) for a, p in sae_dirs.items()}
    return {
        "format": FORMAT, "track": st.name, "task": task.name, "definition": task.definition,
        "model": st.model, "layer": st.layer, "dataset": task.dataset, "concepts": concepts,
        "d_sae": saes["topk"].cfg.d_sae, "k": st.k, "gamma": task.gamma, "rule": "direction",
        "fms_variant": "balanced", "fms_rows": len(y), "pooling": "per-token" if task.per_token else "item mean",
        "sae": {("vanilla" if a == "topk" else a): {**scored[a], "fvu": evals[a].get("fvu"), "l0": evals[a].get("l0"),
                                                    "folder": str(sae_dirs[a])}
                for a in saes},
        "sweep": sweep, "seconds": round(time.perf_counter() - t0, 1), **extra,
    }


def concept_rows(store: Any, per_token: bool, limit: int, seed: int) -> tuple[Any, np.ndarray]:
    """Held-out rows and their concept labels [N, C]: per token, labelled rows plus as many unlabelled ones (at
    most ``limit`` in all); per item, the token rows of at most ``limit`` items grouped by item (``_Grouped``:
    latents are averaged over each item's tokens after encoding)."""
    _, eval_rows = store.split(holdout=HOLDOUT, seed=seed)  # the items both SAEs were not trained on
    rng = np.random.default_rng(seed)
    if per_token:
        labels = store.row_labels[eval_rows]
        pos = eval_rows[labels.any(1)]
        neg = eval_rows[~labels.any(1)]
        pos = rng.choice(pos, size=min(len(pos), limit // 2), replace=False)
        neg = rng.choice(neg, size=min(len(neg), len(pos)), replace=False)
        rows = np.sort(np.concatenate([pos, neg]))
        return store.gather(None, rows), store.row_labels[rows].astype(np.int64)
    items = np.unique(store.item_index[eval_rows])
    if len(items) > limit:
        items = np.sort(rng.choice(items, size=limit, replace=False))
    keep = np.isin(store.item_index, items)
    rows = np.nonzero(keep)[0]
    x = store.gather(None, rows)
    item_of = np.searchsorted(items, store.item_index[rows])
    labels = store.labels[items]
    if labels.ndim == 1:  # class ids: one binary concept column per class, as the store's row labels have
        labels = np.eye(len(store.label_names), dtype=np.int64)[labels]
    return _Grouped(x, torch.from_numpy(item_of), len(items)), labels.astype(np.int64)


@dataclass
class _Grouped:
    """Token rows ``x`` and the item each belongs to: encode the rows, then average per item."""

    x: torch.Tensor
    group: torch.Tensor
    n: int

    def __len__(self) -> int:
        return self.n


@torch.no_grad()
def _encode(sae: Any, x: Any, what: str) -> torch.Tensor:
    rows = x.x if isinstance(x, _Grouped) else x
    device = sae.W_dec.device
    parts = []
    for a in range(0, len(rows), 4096):
        chunk = rows[a : a + 4096].to(device)
        parts.append((sae.encode(chunk) if what == "latents" else sae.concept_logits(chunk)).float().cpu())
    out = torch.cat(parts)
    if not isinstance(x, _Grouped):
        return out
    sums = torch.zeros(x.n, out.shape[1]).index_add_(0, x.group, out)
    counts = torch.bincount(x.group, minlength=x.n).clamp_min(1).unsqueeze(1)
    return sums / counts


def score_concepts(sae: Any, arch: str, x: Any, y: np.ndarray, per_token: bool, seed: int) -> dict[str, Any]:
    """Balanced FMS@1/@5 per concept of the concept latent (vanilla: the root of the FMS tree, the best single
    latent; G-SAE: the reserved latent, as the paper scores it; ``best_latent_fms@1`` is the G-SAE's best single
    latent) and its detection AUROC (vanilla: its activation; G-SAE: its pre-TopK logit)."""
    from sklearn.metrics import roc_auc_score

    from monosemantic.metrics import fms

    f = _encode(sae, x, "latents")
    n_c = y.shape[1]
    labels = torch.from_numpy(y)
    res = fms(f, labels, p=FMS_P, seed=seed, balance=True, root=list(range(n_c)) if arch == "gsae" else None)
    free = fms(f, labels, p=FMS_P, seed=seed, balance=True) if arch == "gsae" else res
    roots = [int(r) for r in free["root"]]
    if arch == "gsae":
        detector, latents = _encode(sae, x, "logits"), list(range(n_c))
        scores = [detector[:, c].numpy() for c in range(n_c)]
    else:
        if min(roots) < 0:
            raise UserError(f"no latent of the vanilla SAE separates concept {roots.index(min(roots))} on the held-out "
                            "rows (every latent is constant there); train it longer or use more items")
        latents = roots
        scores = [f[:, j].numpy() for j in latents]
    auroc, signs = [], []
    for c in range(n_c):
        both = 0 < y[:, c].sum() < len(y)
        a = float(roc_auc_score(y[:, c], scores[c])) if both else float("nan")
        # a root latent that fires for the concept's absence steers towards it with the opposite sign
        signs.append(-1.0 if arch != "gsae" and a < 0.5 else 1.0)
        auroc.append(a)
    return {
        "fms@1": res["fms_mean"][1], "fms@5": res["fms_mean"][5],
        "fms@1_per_concept": [float(v) for v in res["fms"][1]], "fms@5_per_concept": [float(v) for v in res["fms"][5]],
        "root": roots, "latents": latents, "auroc": [None if not np.isfinite(a) else a for a in auroc],
        "auroc_mean": float(np.nanmean(auroc)) if np.isfinite(auroc).any() else None, "signs": signs,
        "best_latent_fms@1": free["fms_mean"][1],
        "root_is_reserved": [r == c for c, r in enumerate(roots)] if arch == "gsae" else None,
    }


def write_steer_results(root: Path, results: list[dict[str, Any]]) -> Path:
    """``RUN/steer/steer.json``: every steering track's result, for the report."""
    from monosemantic.files import write_json

    path = root / "steer" / RESULT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"format": FORMAT, "tracks": results})
    return path

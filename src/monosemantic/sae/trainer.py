"""Train one SAE or a sweep of them side by side from one pass over an activation store (methods.md §A.0).

Every SAE of a sweep sees the same batches; each has its own optimizer and learning rate. Under ``torchrun`` the
SAEs are wrapped together in one ``DistributedDataParallel`` module and each rank reads a disjoint share of every
global batch (``store.batches(..., rank, world_size)``), so N processes see exactly the rows one process would.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from monosemantic.errors import UserError
from monosemantic.sae import distributed as D
from monosemantic.sae import native
from monosemantic.sae.checkpoint import (
    RunPaths,
    check_start,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    truncate_log,
)
from monosemantic.sae.core import SAE, StepContext, StepOutput, get_architecture
from monosemantic.sae.data import Batches
from monosemantic.sae.evaluate import ReconStats, evaluate
from monosemantic.sae.io import save_sae
from monosemantic.sae.recipe import (
    clip_grad_norm,
    default_lr,
    geometric_median,
    lr_factor,
    remove_parallel_grad,
    renormalise_rows,
    steps_of,
)
from monosemantic.sae.trainconfig import SweepPoint, TrainConfig, check_config, sae_config, sweep_points
from monosemantic.store import nonfinite

_NORM_SAMPLE_ROWS = 65_536


class _Bundle(nn.Module):
    """All SAEs of a sweep as one module, so one DDP wrapper (and one all-reduce) covers them."""

    def __init__(self, saes: list[SAE], losses: list[list[Any]]) -> None:
        super().__init__()
        self.saes = nn.ModuleList(saes)
        self.losses = losses

    def forward(self, x: Tensor, ctxs: list[StepContext]) -> tuple[Tensor, list[StepOutput], list[dict[str, float]]]:
        total = x.new_zeros(())
        outs, terms = [], []
        for sae, ctx, losses in zip(self.saes, ctxs, self.losses, strict=True):
            out = sae.train_forward(x, ctx)  # type: ignore[operator]
            parts = {term.name: term(sae, out, ctx) for term in losses}
            total = total + sum(parts.values())
            outs.append(out)
            terms.append({k: float(v.detach()) for k, v in parts.items()})
        return total, outs, terms


def _resolve_hook(store: Any, hook: str | None) -> str:
    hooks = list(store.hooks)
    if hook is None:
        if len(hooks) != 1:
            raise UserError(f"the store holds several hooks ({', '.join(hooks)}); choose one with --hook")
        return hooks[0]
    if hook in hooks:
        return hook
    matches = [h for h in hooks if h.endswith("." + hook)]
    if len(matches) == 1:
        return matches[0]
    raise UserError(f"the store has no hook {hook!r}; it holds: {', '.join(hooks)}")


def _check_finite(x: Tensor, what: str) -> None:
    if (mask := nonfinite(x)) is not None:
        raise UserError(f"{what} contains {int(mask.sum())} NaN or inf values; re-extract the store or drop those rows")


def _make_sae(tc: TrainConfig, p: SweepPoint, d_in: int, meta: dict[str, Any], seed: int) -> SAE:
    cfg = sae_config(tc, p, d_in, meta)
    sae = get_architecture(tc.arch)(cfg)
    sae.init_weights(torch.Generator().manual_seed(seed))
    if hasattr(sae, "log_threshold"):
        with torch.no_grad():
            sae.log_threshold.fill_(math.log(tc.threshold_init))  # type: ignore[operator]
    return sae


def _losses(tc: TrainConfig, sae: SAE, p: SweepPoint, extra: Sequence[Any]) -> list[Any]:
    losses = sae.default_losses(tc)
    for term in losses:
        if p.coefficient is not None and hasattr(term, "coefficient"):
            term.coefficient = p.coefficient
    return [*losses, *extra]


def _norm_scale(tc: TrainConfig, store: Any, hook: str, rows: np.ndarray, d_in: int) -> float:
    if tc.input_scaling == "none":
        return 1.0
    rng = np.random.default_rng([tc.seed, 7])
    sample = np.sort(rng.choice(rows, size=min(len(rows), _NORM_SAMPLE_ROWS), replace=False))
    x = store.gather(hook, sample)
    _check_finite(x, f"hook {hook!r} of the store")
    mean_sq = float(x.double().pow(2).sum(1).mean())
    if mean_sq <= 0:
        raise UserError(f"hook {hook!r} of the store is all zeros; there is nothing to train on")
    target = float(d_in) if tc.input_scaling == "sqrt_d" else 1.0
    return math.sqrt(target / mean_sq)


@torch.no_grad()
def _fold(sae: SAE, scale: float, how: str) -> None:
    """Fold the input scale into the weights so the saved SAE reads raw activations (§A.10)."""
    if scale == 1.0:
        return
    if how == "weights":
        sae.W_enc.mul_(scale)
        sae.W_dec.div_(scale)
        sae.b_dec.div_(scale)
        return
    nf = 1.0 / scale
    sae.b_enc.mul_(nf)
    sae.b_dec.mul_(nf)
    if hasattr(sae, "log_threshold"):
        sae.log_threshold.add_(math.log(nf))  # type: ignore[operator]
    elif sae.has_threshold:
        sae.threshold.mul_(nf)  # type: ignore[operator]


def train(
    config: TrainConfig, store: Any = None, *, extra_losses: Sequence[Any] = (), stop_after: int | None = None
) -> list[Path]:
    """Train the SAEs described by ``config`` and return their folders (one per sweep point).

    ``extra_losses`` are added to every SAE's loss; ``stop_after`` stops after that many steps of this call
    without saving (tests use it to simulate a kill between checkpoints).
    """
    from monosemantic.store import ActivationStore

    tc = config
    check_config(tc)
    rank, world = D.setup()
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    elif world > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // D.local_world()))
    store = store if store is not None else ActivationStore.open(tc.acts)  # type: ignore[arg-type]
    hook = _resolve_hook(store, tc.hook)
    d_in = store.width(hook)
    points = sweep_points(tc, d_in)
    paths = RunPaths.for_names(Path(tc.out), [p.name for p in points])  # type: ignore[arg-type]
    if tc.batch_size % world:
        raise UserError(f"--batch-size {tc.batch_size} must be divisible by the {world} processes")
    local_bs = tc.batch_size // world
    train_rows, eval_rows = store.split(holdout=tc.holdout, seed=tc.seed)
    data = Batches(store, hook, train_rows, local_bs, seed=tc.seed, rank=rank, world_size=world)
    per_epoch = data.per_epoch
    if per_epoch < 1:
        raise UserError(f"the store has {len(train_rows)} training rows, fewer than one batch of {tc.batch_size}")
    total = max(1, math.ceil(tc.total_tokens() / tc.batch_size))
    warmup, decay = steps_of(tc.warmup, total), steps_of(tc.decay, total)

    meta = {
        "model_name": store.manifest.model.get("name"),
        "hook_name": hook,
        "dataset_path": str(Path(store.root).resolve()),
        "monosemantic": {"store": str(Path(store.root).resolve()), "dataset": store.manifest.dataset.get("name")},
    }
    saes = [_make_sae(tc, p, d_in, json.loads(json.dumps(meta)), tc.seed) for p in points]
    check_start(paths, resume=tc.resume, overwrite=tc.overwrite, acts=Path(tc.acts) if tc.acts else None)
    losses = [_losses(tc, s, p, extra_losses) for s, p in zip(saes, points, strict=True)]
    lrs = [tc.lr or default_lr(p.d_sae, tc.arch) for p in points]
    opts = [
        torch.optim.Adam(s.parameters(), lr=lr, betas=tuple(tc.adam_betas), eps=tc.adam_eps,  # type: ignore[arg-type]
                         fused=True)
        for s, lr in zip(saes, lrs, strict=True)
    ]
    since_fired = [torch.zeros(p.d_sae, dtype=torch.int64) for p in points]
    k_aux = tc.k_aux or d_in // 2
    step, before = 0, 0.0  # before: training seconds spent by earlier, interrupted attempts
    if tc.resume:
        ck = load_checkpoint(paths.checkpoint)
        if ck["d_in"] != d_in or ck["hook"] != hook:
            raise UserError(
                f"the checkpoint in {paths.partial} was trained on hook {ck['hook']!r} of width {ck['d_in']}, "
                f"but the store gives {hook!r} of width {d_in}; use the same store or start afresh"
            )
        if ck["names"] != [p.name for p in points]:
            raise UserError(f"the checkpoint trains {ck['names']}, this command asks for {[p.name for p in points]}")
        step, scale, before = ck["step"], ck["scale"], float(ck.get("elapsed_s", 0.0))
        for i, s in enumerate(saes):
            s.load_state_dict(ck["saes"][i])
            opts[i].load_state_dict(ck["opts"][i])
            since_fired[i] = ck["since_fired"][i]
        set_rng_state(ck["rng"])
        for p in points:
            truncate_log(paths.log(p.name), step)
    else:
        scale = _norm_scale(tc, store, hook, train_rows, d_in)
        first = data.global_batch(0, 0) * scale
        _check_finite(first, f"hook {hook!r} of the store")
        if tc.init_b_dec != "zeros":
            b0 = geometric_median(first) if tc.init_b_dec == "geometric_median" else first.mean(0)
            for s in saes:
                with torch.no_grad():
                    s.b_dec.copy_(b0)
        if D.is_main():
            if paths.partial.exists():
                shutil.rmtree(paths.partial)
            paths.partial.mkdir(parents=True)
            (paths.partial / "run.json").write_text(json.dumps(_plain(tc), indent=2))
        D.barrier()

    bundle = _Bundle(saes, losses)
    model: nn.Module = D.wrap(bundle) if world > 1 else bundle
    unit_norm = not (tc.arch == "relu" and tc.l1_variant == "decoder_norm")
    options = {
        "threshold_update": tc.threshold_update, "threshold_start_step": min(tc.threshold_start_step, total // 4),
        "bandwidth": tc.bandwidth, "batch_sparse": tc.batch_sparse,
    }
    logs = [open(paths.log(p.name), "a") if D.is_main() else None for p in points]  # noqa: SIM115
    bar = _progress(tc, total, step)
    native.lib()  # compile the kernels (first use only) before the clock starts
    t0, tok0, done_here = time.perf_counter(), step * tc.batch_size, 0
    try:
        while step < total:
            epoch, start = divmod(step, per_epoch)
            for x in data.epoch(epoch, start):
                _check_finite(x, f"hook {hook!r} of the store (a batch at step {step})")
                x = x * scale
                ctxs = [
                    StepContext(step=step, total_steps=total, k_aux=k_aux, bf16=tc.bf16, distributed=world > 1,
                                dead_mask=(sf >= tc.dead_tokens) if tc.auxk_alpha else None, options=options)
                    for sf in since_fired
                ]
                loss, outs, terms = model(x, ctxs)
                loss.backward()
                factor = lr_factor(step, total, warmup, decay)
                for i, s in enumerate(saes):
                    if unit_norm:
                        remove_parallel_grad(s.W_dec)
                    clip_grad_norm(list(s.parameters()), tc.grad_clip)
                    for g in opts[i].param_groups:
                        g["lr"] = lrs[i] * factor
                    opts[i].step()
                    opts[i].zero_grad(set_to_none=True)
                    if unit_norm:
                        renormalise_rows(s.W_dec)
                    s.after_step(outs[i], ctxs[i])
                    fired = D.any_reduce(outs[i].fired(s.cfg.d_sae))
                    since_fired[i].add_(tc.batch_size).masked_fill_(fired, 0)
                step += 1
                done_here += 1
                if logs[0] is not None and (step % tc.log_every == 0 or step == total):
                    _log(logs, step, tc, outs, terms, since_fired, factor * np.array(lrs),
                         before + time.perf_counter() - t0)
                if bar is not None:
                    el = time.perf_counter() - t0
                    bar.update(1)
                    bar.set_postfix(tok_s=f"{(step * tc.batch_size - tok0) / max(el, 1e-9):,.0f}",
                                    fvu=f"{_batch_fvu(outs[0]):.3f}", l0=f"{float(outs[0].l0()):.1f}", refresh=False)
                if tc.checkpoint_every and step % tc.checkpoint_every == 0 and step < total:
                    _checkpoint(paths, step, scale, d_in, hook, points, saes, opts, since_fired,
                                before + time.perf_counter() - t0)
                if stop_after is not None and done_here >= stop_after:
                    return []
                if step >= total:
                    break
    finally:
        for fh in logs:
            if fh is not None:
                fh.close()
        if bar is not None:
            bar.close()
    return _finish(tc, store, hook, eval_rows, paths, points, saes, since_fired, scale)


def _plain(tc: TrainConfig) -> dict[str, Any]:
    from monosemantic.config import to_dict

    return to_dict(tc)


def _batch_fvu(out: StepOutput) -> float:
    x, xh = out.x.detach(), out.x_hat.detach()
    return float((x - xh).pow(2).sum() / (x - x.mean(0)).pow(2).sum().clamp_min(1e-12))


def _log(logs: list[Any], step: int, tc: TrainConfig, outs: list[StepOutput], terms: list[dict[str, float]],
         since_fired: list[Tensor], lrs: np.ndarray, elapsed: float) -> None:
    for i, fh in enumerate(logs):
        rec = {
            "step": step, "tokens": step * tc.batch_size, "lr": float(lrs[i]), **terms[i],
            "loss": sum(terms[i].values()), "fvu": _batch_fvu(outs[i]), "l0": float(outs[i].l0()),
            "dead_fraction": float((since_fired[i] >= tc.dead_tokens).double().mean()),
            "elapsed_s": round(elapsed, 3),
        }
        fh.write(json.dumps(rec) + "\n")
        fh.flush()


def _progress(tc: TrainConfig, total: int, step: int) -> Any:
    if not tc.progress or not D.is_main():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=step, unit="step", desc="train", dynamic_ncols=True, mininterval=0.5)


def _checkpoint(paths: RunPaths, step: int, scale: float, d_in: int, hook: str, points: list[SweepPoint],
                saes: list[SAE], opts: list[Any], since_fired: list[Tensor], elapsed: float) -> None:
    if D.is_main():
        save_checkpoint(paths.checkpoint, {
            "step": step, "scale": scale, "d_in": d_in, "hook": hook, "names": [p.name for p in points],
            "saes": [s.state_dict() for s in saes], "opts": [o.state_dict() for o in opts],
            "since_fired": [sf.clone() for sf in since_fired], "rng": rng_state(), "elapsed_s": elapsed,
        })
    D.barrier()


def _finish(tc: TrainConfig, store: Any, hook: str, eval_rows: np.ndarray, paths: RunPaths,
            points: list[SweepPoint], saes: list[SAE], since_fired: list[Tensor], scale: float) -> list[Path]:
    if not D.is_main():
        D.barrier()
        return list(paths.finals.values())
    rows = eval_rows
    if len(rows) > tc.eval_rows:
        rows = rows[np.linspace(0, len(rows) - 1, tc.eval_rows).astype(np.int64)]
    batches = [store.gather(hook, rows[i : i + 4096]) for i in range(0, len(rows), 4096)]
    out = []
    for p, s, sf in zip(points, saes, since_fired, strict=True):
        _fold(s, scale, tc.fold)
        if tc.arch == "relu" and tc.l1_variant == "decoder_norm":
            s.fold_decoder_norms()  # type: ignore[attr-defined]
        s.cfg.metadata["monosemantic"].update(
            {"norm_factor": 1.0 / scale, "fold": tc.fold, "input_scaling": tc.input_scaling,
             "train": _plain(tc), "steps": math.ceil(tc.total_tokens() / tc.batch_size)}
        )
        stats: ReconStats = evaluate(s.eval(), batches)
        result = stats.result()
        result["dead_fraction_train"] = float((sf >= tc.dead_tokens).double().mean())
        extra: dict[str, Any] = {"eval.json": result, "sparsity.safetensors": {"sparsity": stats.log_frequency()}}
        if paths.log(p.name).exists():
            extra["train_log.jsonl"] = paths.log(p.name)
        target = paths.finals[p.name]
        if target.is_dir() and any(target.iterdir()) and not tc.overwrite:
            raise UserError(f"{target} appeared while training; it was left untouched")
        save_sae(s, target, overwrite=tc.overwrite, extra=extra)
        out.append(target)
    shutil.rmtree(paths.partial, ignore_errors=True)
    D.barrier()
    return out

"""Train one SAE or a sweep of them side by side from one pass over an activation store.

Every SAE of a sweep sees the same batches; each has its own optimizer and learning rate. Under ``torchrun`` the
SAEs are wrapped together in one ``DistributedDataParallel`` module and each rank reads a disjoint share of every
global batch (``store.batches(..., rank, world_size)``), so N processes see exactly the rows one process would.

The SAEs, their optimizer state and every counter live on the training device; batches are read on the host,
checked there, and sent through pinned memory without blocking. A step asks the device for nothing: loss terms,
FVU and L0 are read back only on logging steps. The trainer knows no architecture by name; what differs between
them comes from the hooks of :class:`~monosemantic.sae.core.SAE`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from monosemantic import log
from monosemantic.config import to_dict
from monosemantic.devices import resolve_device, to_device
from monosemantic.errors import UserError
from monosemantic.sae import distributed as D
from monosemantic.sae import native, triton_decode
from monosemantic.sae.checkpoint import (
    Checkpoint,
    RunPaths,
    check_start,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    truncate_log,
)
from monosemantic.sae.core import SAE
from monosemantic.sae.data import Batches, check_finite, norm_scale, resolve_hook, scale_sample
from monosemantic.sae.evaluate import ReconStats, batch_fvu, evaluate
from monosemantic.sae.io import ExtraFile, save_sae
from monosemantic.sae.losses import loss_terms
from monosemantic.sae.recipe import (
    clip_grad_norm,
    default_lr,
    dimension_weights,
    geometric_median,
    lr_factor,
    remove_parallel_grad,
    renormalise_rows,
    steps_of,
)
from monosemantic.sae.trainconfig import SweepPoint, TrainConfig, sae_config, sweep_points
from monosemantic.sae.types import ArchOptions, LossTerm, StepContext, StepOutput
from monosemantic.store import ActivationStore


class _Bundle(nn.Module):
    """All SAEs of a sweep as one module, so one DDP wrapper (and one all-reduce) covers them."""

    def __init__(self, saes: list[SAE], losses: list[list[LossTerm]]) -> None:
        super().__init__()
        self.saes = nn.ModuleList(saes)
        self.losses = losses

    def forward(self, x: Tensor, ctxs: list[StepContext]) -> tuple[Tensor, list[StepOutput], list[dict[str, Tensor]]]:
        total = x.new_zeros(())
        outs, terms = [], []
        for sae, ctx, losses in zip(self.saes, ctxs, self.losses, strict=True):
            sae = cast(SAE, sae)
            out = sae.train_forward(x, ctx)
            parts = {term.name: term(sae, out, ctx) for term in losses}
            total = total + sum(parts.values())
            outs.append(out)
            terms.append({k: v.detach() for k, v in parts.items()})
        return total, outs, terms


@dataclass
class _Run:
    """Everything one training run holds between its steps."""

    tc: TrainConfig
    store: ActivationStore
    hook: str
    device: torch.device
    points: list[SweepPoint]
    paths: RunPaths
    data: Batches
    eval_rows: np.ndarray
    total: int
    options: ArchOptions
    saes: list[SAE]
    lrs: list[float]
    opts: list[torch.optim.Optimizer]
    since_fired: list[Tensor]
    world: int
    step: int = 0
    scale: float = 1.0
    before: float = 0.0
    """Training seconds spent by earlier, interrupted attempts."""
    unit_norm: list[bool] = field(default_factory=list)
    losses: list[list[LossTerm]] = field(default_factory=list)
    rec_weight: Tensor | None = None
    """WSAE per-dimension weights γ² [d_in] (None: the plain reconstruction loss)."""


def train(config: TrainConfig, store: ActivationStore | None = None, *, extra_losses: Sequence[LossTerm] = (),
          stop_after: int | None = None) -> list[Path]:
    """Train the SAEs described by ``config`` and return their folders (one per sweep point).

    ``store`` is the opened ``config.acts`` when the caller has it; ``extra_losses`` are added to every SAE's loss
    after its own terms; ``stop_after`` stops after that many steps of this call without saving (tests use it to
    simulate a kill between checkpoints).
    """
    run = _set_up(config, store)
    if config.resume:
        _resume(run)
    else:
        _start(run)
    weight = None if run.rec_weight is None else run.rec_weight.to(run.device)
    # the reconstruction first, then the architecture's terms, then the caller's: the order they are summed in
    run.losses = [loss_terms(s, config.rec_loss, run.options, p.coefficient, weight, extra_losses)
                  for s, p in zip(run.saes, run.points, strict=True)]
    if not _loop(run, stop_after):
        return []
    return _finish(run)


# ------------------------------------------------------------------------------------------------ set-up


def _set_up(tc: TrainConfig, store: ActivationStore | None) -> _Run:
    acts, out = tc.paths()
    device = resolve_device(tc.device)
    rank, world = D.setup(device)
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    elif world > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // D.local_world()))
    triton_decode.set_enabled(tc.triton)
    store = store if store is not None else ActivationStore.open(acts)
    hook = resolve_hook(store, tc.hook)
    d_in = store.width(hook)
    points = sweep_points(tc, d_in)
    paths = RunPaths.for_names(out, [p.name for p in points])
    if tc.batch_size % world:
        raise UserError(f"--batch-size {tc.batch_size} must be divisible by the {world} processes")
    train_rows, eval_rows = store.split(holdout=tc.holdout, seed=tc.seed)
    labels = _row_labels(tc, store)
    data = Batches(store, hook, train_rows, tc.batch_size // world, seed=tc.seed, rank=rank, world_size=world,
                   labels=labels)
    if data.per_epoch < 1:
        raise UserError(f"the store has {len(train_rows)} training rows, fewer than one batch of {tc.batch_size}")
    options = tc.arch_options()
    saes = _new_saes(tc, store, hook, points, options, labelled=labels is not None, device=device)
    check_start(paths, resume=tc.resume, overwrite=tc.overwrite, acts=acts)
    lrs = [tc.lr or default_lr(p.d_sae, type(s).lr_constant) for s, p in zip(saes, points, strict=True)]
    fused = device.type in ("cpu", "cuda")
    betas = (tc.adam_betas[0], tc.adam_betas[1])
    opts: list[torch.optim.Optimizer] = [
        torch.optim.Adam(s.parameters(), lr=lr, betas=betas, eps=tc.adam_eps, fused=fused)
        for s, lr in zip(saes, lrs, strict=True)
    ]
    return _Run(
        tc=tc, store=store, hook=hook, device=device, points=points, paths=paths, data=data, eval_rows=eval_rows,
        total=max(1, math.ceil(tc.total_tokens() / tc.batch_size)), options=options, saes=saes,
        lrs=lrs, opts=opts, since_fired=[torch.zeros(p.d_sae, dtype=torch.int64, device=device) for p in points],
        world=world, unit_norm=[s.unit_norm_decoder(options) for s in saes],
    )


def _new_saes(tc: TrainConfig, store: ActivationStore, hook: str, points: list[SweepPoint], options: ArchOptions,
              *, labelled: bool, device: torch.device) -> list[SAE]:
    """The sweep's SAEs on ``device``, their weights drawn on the CPU from a CPU generator, so every device starts
    from the same SAE."""
    meta: dict[str, Any] = {
        "model_name": store.manifest.model.get("name"),
        "hook_name": hook,
        "dataset_path": str(Path(store.root).resolve()),
        "monosemantic": {"store": str(Path(store.root).resolve()), "dataset": store.manifest.dataset.get("name")},
    }
    if labelled:
        meta["monosemantic"]["concepts"] = store.label_names
    d_in = store.width(hook)
    saes = []
    for p in points:
        sae = SAE.create(sae_config(tc, p, d_in, json.loads(json.dumps(meta))))
        sae.init_for_training(options, torch.Generator().manual_seed(tc.seed))
        saes.append(sae.to(device))
    return saes


def _row_labels(tc: TrainConfig, store: ActivationStore) -> np.ndarray | None:
    """The store's per-row concept labels, for architectures that train on them (None for the others)."""
    if not tc.arch_class().needs_labels:
        return None
    labels = store.row_labels
    if labels is None:
        raise UserError(f"--arch {tc.arch} trains on concept labels, but the store {store.root} has none; extract "
                        "it from labelled data (a bundled set with labels, or --label-column for JSONL/CSV)")
    return labels


def _resume(run: _Run) -> None:
    ck = load_checkpoint(run.paths.checkpoint)
    d_in = run.store.width(run.hook)
    if ck.d_in != d_in or ck.hook != run.hook:
        raise UserError(
            f"the checkpoint in {run.paths.partial} was trained on hook {ck.hook!r} of width {ck.d_in}, "
            f"but the store gives {run.hook!r} of width {d_in}; use the same store or start afresh"
        )
    names = [p.name for p in run.points]
    if ck.names != names:
        raise UserError(f"the checkpoint trains {ck.names}, this command asks for {names}")
    run.step, run.scale, run.before = ck.step, ck.scale, float(ck.elapsed_s)
    run.rec_weight = ck.rec_weight
    for i, s in enumerate(run.saes):
        s.load_state_dict(ck.saes[i])
        run.opts[i].load_state_dict(ck.opts[i])
        run.since_fired[i] = ck.since_fired[i].to(run.device)
    set_rng_state(ck.rng)
    for p in run.points:
        truncate_log(run.paths.log(p.name), run.step)


def _start(run: _Run) -> None:
    tc = run.tc
    train_rows = run.data.rows
    run.scale = norm_scale(tc, run.store, run.hook, train_rows, run.store.width(run.hook))
    if tc.rec_weights == "variance":
        gamma = dimension_weights(scale_sample(tc, run.store, run.hook, train_rows) * run.scale, tc.rec_alpha,
                                  tc.rec_weights_norm)
        run.rec_weight = gamma.pow(2)
    first = run.data.global_batch(0, 0) * run.scale
    check_finite(first, f"hook {run.hook!r} of the store")
    if tc.init_b_dec != "zeros":
        b0 = geometric_median(first) if tc.init_b_dec == "geometric_median" else first.mean(0)
        for s in run.saes:
            s.set_initial_bias(b0)
    if D.is_main():
        if run.paths.partial.exists():
            shutil.rmtree(run.paths.partial)
        run.paths.partial.mkdir(parents=True)
        (run.paths.partial / "run.json").write_text(json.dumps(to_dict(tc), indent=2))
    D.barrier()


# ------------------------------------------------------------------------------------------------ steps


def _loop(run: _Run, stop_after: int | None) -> bool:
    """Train until the last step; False when ``stop_after`` ended this call early (nothing is saved then)."""
    bundle = _Bundle(run.saes, run.losses)
    model: nn.Module = D.wrap(bundle, run.device) if run.world > 1 else bundle
    logs: list[IO[str] | None] = [open(run.paths.log(p.name), "a") if D.is_main() else None  # noqa: SIM115
                                  for p in run.points]
    bar = _progress(run)
    if run.device.type == "cpu":
        native.lib()  # compile the kernels (first use only) before the clock starts
    clock = (time.perf_counter(), run.step)  # when and at which step this call's training started
    done_here = 0
    try:
        while run.step < run.total:
            epoch, start = divmod(run.step, run.data.per_epoch)
            for x, y in run.data.epoch(epoch, start):
                check_finite(x, f"hook {run.hook!r} of the store (a batch at step {run.step})")
                labels = None if y is None else to_device(y, run.device)
                outs, terms, factor = _step(run, model, to_device(x, run.device) * run.scale, labels)
                run.step += 1
                done_here += 1
                _report(run, clock, logs, bar, outs, terms, factor)
                if run.tc.checkpoint_every and run.step % run.tc.checkpoint_every == 0 and run.step < run.total:
                    _checkpoint(run, run.before + time.perf_counter() - clock[0])
                if stop_after is not None and done_here >= stop_after:
                    return False
                if run.step >= run.total:
                    break
    finally:
        for fh in logs:
            if fh is not None:
                fh.close()
        if bar is not None:
            bar.close()
    return True


def _report(run: _Run, clock: tuple[float, int], logs: list[IO[str] | None], bar: tqdm | None,
            outs: list[StepOutput], terms: list[dict[str, Tensor]], factor: float) -> None:
    """The training log and the progress bar after a step (the device is read only on logging steps)."""
    if run.step % run.tc.log_every == 0 or run.step == run.total:
        elapsed = time.perf_counter() - clock[0]
        if logs[0] is not None:
            _log(logs, run, outs, terms, factor, run.before + elapsed)
        if bar is not None:
            tok_s = (run.step - clock[1]) * run.tc.batch_size / max(elapsed, 1e-9)
            bar.set_postfix(tok_s=f"{tok_s:,.0f}",
                            fvu=f"{float(batch_fvu(outs[0].x, outs[0].x_hat)):.3f}",
                            l0=f"{float(outs[0].l0()):.1f}", refresh=False)
    if bar is not None:
        bar.update(1)


def _step(run: _Run, model: nn.Module, x: Tensor, labels: Tensor | None = None
          ) -> tuple[list[StepOutput], list[dict[str, Tensor]], float]:
    """One optimisation step of every SAE on the (scaled, on-device) batch ``x`` and its concept labels."""
    tc = run.tc
    ctxs = [
        StepContext(step=run.step, total_steps=run.total, dead_mask=sf >= tc.dead_tokens, bf16=tc.bf16,
                    distributed=run.world > 1, options=run.options, labels=labels)
        for sf in run.since_fired
    ]
    loss, outs, terms = model(x, ctxs)
    loss.backward()
    factor = lr_factor(run.step, run.total, steps_of(tc.warmup, run.total), steps_of(tc.decay, run.total))
    for i, s in enumerate(run.saes):
        if run.unit_norm[i]:
            remove_parallel_grad(s.W_dec)
        clip_grad_norm(list(s.parameters()), tc.grad_clip)
        for g in run.opts[i].param_groups:
            g["lr"] = run.lrs[i] * factor
        run.opts[i].step()
        run.opts[i].zero_grad(set_to_none=True)
        if run.unit_norm[i]:
            renormalise_rows(s.W_dec)
        s.after_step(outs[i], ctxs[i])
        fired = D.any_reduce(outs[i].fired(s.cfg.d_sae))
        run.since_fired[i].add_(tc.batch_size).masked_fill_(fired, 0)
    return outs, terms, factor


def _log(logs: list[IO[str] | None], run: _Run, outs: list[StepOutput], terms: list[dict[str, Tensor]],
         factor: float, elapsed: float) -> None:
    tc = run.tc
    for i, fh in enumerate(logs):
        assert fh is not None
        parts = {k: float(v) for k, v in terms[i].items()}
        rec = {
            "step": run.step, "tokens": run.step * tc.batch_size, "lr": float(factor * run.lrs[i]), **parts,
            "loss": sum(parts.values()), "fvu": float(batch_fvu(outs[i].x, outs[i].x_hat)),
            "l0": float(outs[i].l0()),
            "dead_fraction": float((run.since_fired[i] >= tc.dead_tokens).double().mean()),
            "elapsed_s": round(elapsed, 3),
        }
        fh.write(json.dumps(rec) + "\n")
        fh.flush()


def _progress(run: _Run) -> tqdm | None:
    """The bar of the main process (none with ``--no-progress``; ``log.quiet()`` switches it off as well)."""
    if not run.tc.progress or not D.is_main() or log.is_quiet():
        return None  # no bar also means no reading back FVU and L0 for it
    bar = log.bar(desc="train", unit="step", total=run.total)
    bar.mininterval = 0.5
    bar.n = bar.last_print_n = bar.initial = run.step  # a resumed run starts where it stopped
    return bar


def _checkpoint(run: _Run, elapsed: float) -> None:
    if D.is_main():
        save_checkpoint(run.paths.checkpoint, Checkpoint(
            step=run.step, scale=run.scale, d_in=run.store.width(run.hook), hook=run.hook,
            names=[p.name for p in run.points], saes=[s.state_dict() for s in run.saes],
            opts=[o.state_dict() for o in run.opts], since_fired=[sf.cpu() for sf in run.since_fired],
            rng=rng_state(), elapsed_s=elapsed, rec_weight=run.rec_weight,
        ))
    D.barrier()


# ------------------------------------------------------------------------------------------------ finish


def _finish(run: _Run) -> list[Path]:
    tc, paths = run.tc, run.paths
    if not D.is_main():
        D.barrier()
        return list(paths.finals.values())
    rows = run.eval_rows
    if len(rows) > tc.eval_rows:
        rows = rows[np.linspace(0, len(rows) - 1, tc.eval_rows).astype(np.int64)]
    batches = [run.store.gather(run.hook, rows[i : i + 4096]) for i in range(0, len(rows), 4096)]
    eval_labels = None if run.data.labels is None else run.data.labels[torch.from_numpy(rows)]
    out = []
    for p, s, sf in zip(run.points, run.saes, run.since_fired, strict=True):
        _finish_sae(run, s)
        stats: ReconStats = evaluate(s.eval(), batches)
        # only label-trained architectures have held-out results of their own
        auroc = None if eval_labels is None else s.concept_auroc(torch.cat(batches), eval_labels)
        result = stats.result(float((sf >= tc.dead_tokens).double().mean()), auroc)
        extra: dict[str, ExtraFile] = {"eval.json": result.to_json(),
                                       "sparsity.safetensors": {"sparsity": stats.log_frequency()}}
        if paths.log(p.name).exists():
            extra["train_log.jsonl"] = paths.log(p.name)
        target = paths.finals[p.name]
        if target.is_dir() and any(target.iterdir()) and not tc.overwrite:
            raise UserError(f"{target} appeared while training; it was left untouched")
        save_sae(s.cpu(), target, overwrite=tc.overwrite, extra=extra)
        out.append(target)
    shutil.rmtree(paths.partial, ignore_errors=True)
    D.barrier()
    return out


def _finish_sae(run: _Run, s: SAE) -> None:
    """Fold the input scale into the trained SAE, give it its last touches and record how it was trained."""
    tc = run.tc
    s.fold_input_scale(run.scale, tc.fold)
    s.finish_training(run.options)
    s.cfg.metadata["monosemantic"].update(
        {"norm_factor": 1.0 / run.scale, "fold": tc.fold, "input_scaling": tc.input_scaling,
         "train": to_dict(tc), "steps": run.total, "device": str(run.device)}
    )
    if run.rec_weight is not None:  # γ, as the WSAE paper states it; the saved SAE's inference is unchanged
        s.cfg.metadata["monosemantic"]["rec_weights"] = run.rec_weight.sqrt().tolist()

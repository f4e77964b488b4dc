"""TopK SAE training throughput and held-out FVU: monosemantic against sparsify, dictionary_learning and SAELens.

Every library trains a TopK SAE (d_sae = 16 × d_in, k = 32, batch 4096) on the same stored activations, sees
the same batches in the same order (inputs scaled to E||x||² = 1, as our trainer and dictionary_learning do; the
other two are scale-free in what they report) for the same number of tokens, with its own training step and its
own default optimizer settings (warm-up / decay lengths matched where the library has them). Tokens/s counts
the training loop only (batch reading included, set-up and evaluation excluded). FVU = Σ_d Var(x − x̂) /
Σ_d Var(x) on the store's held-out rows, computed by the same function for everyone.

    make bench                      # builds .bench-venv with the peers, then runs this script
    .bench-venv/bin/python benchmarks/train_throughput.py --store /tmp/stores/minilm-bbc --tokens 1M

``--arch batchtopk`` or ``--arch matryoshka`` trains that architecture instead, once with the dense autograd path
and once with the sparse triplet kernels (``batch_sparse``), side by side; the peers train TopK only and are skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from torch import Tensor

from monosemantic.sae import SAE, TrainConfig, parse_count, train
from monosemantic.sae.data import Batches
from monosemantic.sae.data import norm_scale as _norm_scale
from monosemantic.sae.evaluate import fvu
from monosemantic.sae.trainconfig import train_config
from monosemantic.store import ActivationStore


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor())
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"{model}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}, "
            f"Python {platform.python_version()}; load average at start {load}")


def pkg(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def timed_loop(step: Callable[[int, Tensor], None], data: Batches, steps: int, scale: float) -> float:
    t0, done = time.perf_counter(), 0
    epoch = 0
    while done < steps:
        for x in data.epoch(epoch):
            step(done, (x * scale).contiguous())
            done += 1
            if done == steps:
                break
        epoch += 1
    return time.perf_counter() - t0


def run_sparsify(
    d: int, F: int, k: int, steps: int, data: Batches, scale: float, x_eval: Tensor
) -> tuple[float, float]:
    from schedulefree import ScheduleFreeWrapper
    from sparsify import SparseCoder, SparseCoderConfig
    from sparsify.sign_sgd import SignSGD

    sae = SparseCoder(d, SparseCoderConfig(expansion_factor=F // d, k=k), "cpu", dtype=torch.float32)
    opt = ScheduleFreeWrapper(SignSGD([{"params": sae.parameters(), "lr": 5e-3 / (F / 2**14) ** 0.5}]),
                              momentum=0.95)  # sparsify's default optimizer ("signum")
    opt.train()

    def step(i: int, x: Tensor) -> None:
        if i == 0:
            sae.b_dec.data = x.mean(0)
        sae.set_decoder_norm_to_unit_norm()
        out = sae(x)
        out.fvu.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()

    secs = timed_loop(step, data, steps, scale)
    opt.eval()  # schedule-free: evaluate the averaged weights
    with torch.no_grad():
        sae.set_decoder_norm_to_unit_norm()
        xs = x_eval * scale
        top, idx, _ = sae.encode(xs)
        return secs, fvu(xs, sae.decode(top, idx))


def run_dictionary_learning(d: int, F: int, k: int, steps: int, data: Batches, scale: float, x_eval: Tensor,
                            warmup: int, decay: int) -> tuple[float, float]:
    from dictionary_learning.trainers.top_k import TopKTrainer

    tr = TopKTrainer(steps=steps, activation_dim=d, dict_size=F, k=k, layer=3, lm_name="minilm", warmup_steps=warmup,
                     decay_start=steps - decay, threshold_start_step=steps, seed=0, device="cpu")
    secs = timed_loop(lambda i, x: tr.update(i, x), data, steps, scale)
    with torch.no_grad():
        xs = x_eval * scale
        return secs, fvu(xs, tr.ae(xs))


def run_saelens(
    d: int, F: int, k: int, steps: int, data: Batches, scale: float, x_eval: Tensor
) -> tuple[float, float]:
    from sae_lens.saes.sae import TrainStepInput
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=F, k=k, dtype="float32", device="cpu"))
    opt = torch.optim.Adam(sae.parameters(), lr=3e-4, betas=(0.9, 0.999))  # SAELens defaults, constant LR

    def step(i: int, x: Tensor) -> None:
        sae.train()
        out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients={}, dead_neuron_mask=None,
                                                       n_training_steps=i, is_logging_step=False))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad()

    secs = timed_loop(step, data, steps, scale)
    with torch.no_grad():
        xs = x_eval * scale
        return secs, fvu(xs, sae.decode(sae.encode(xs)))


def check_saelens_load(folder: Path, x: Tensor) -> str:
    try:
        import sae_lens
    except ImportError:
        return "SAELens check: sae_lens not installed in this environment"
    theirs = sae_lens.SAE.load_from_disk(str(folder))
    ours = SAE.load(folder)
    with torch.no_grad():
        diff = float((theirs.encode(x) - ours.encode(x)).abs().max())
        same_support = bool(torch.equal(theirs.encode(x) > 0, ours.encode(x) > 0))
    ok = diff < 1e-5 and same_support
    if not ok:
        raise SystemExit(f"SAELens encodes our folder differently: max |diff| = {diff:.3g}")
    return f"SAELens {sae_lens.__version__} load_from_disk on our folder: encode max |diff| = {diff:.2g}, same support"


def train_ours(tc: TrainConfig, x_eval: Tensor) -> tuple[float, float, Path]:
    """Train with our trainer; tokens/s of the training loop (from the log) and held-out FVU of the saved SAE."""
    (folder,) = train(tc)
    log = [json.loads(ln) for ln in (folder / "train_log.jsonl").read_text().splitlines()]
    with torch.no_grad():
        f_ours = fvu(x_eval, SAE.load(folder)(x_eval))
    return log[-1]["tokens"] / log[-1]["elapsed_s"], f_ours, folder


def run_batch_family(args: argparse.Namespace, hook: str, F: int, k: int, bs: int, steps: int, x_eval: Tensor) -> None:
    """BatchTopK / Matryoshka: our dense autograd path against the sparse triplet kernels, same batches; our TopK
    (sparse kernels) on the same batches is the reference for what the selection costs."""
    rows = []
    for name, arch, mode in ((f"{args.arch} dense", args.arch, "dense"), (f"{args.arch} sparse", args.arch, "sparse"),
                             ("topk (reference)", "topk", "auto")):
        with tempfile.TemporaryDirectory() as tmp:
            tc = train_config(dict(acts=Path(args.store), hook=hook, out=Path(tmp) / "ours", arch=arch, d_sae=[F],
                             k=[float(k)], tokens=str(steps * bs), batch_size=bs, progress=False, checkpoint_every=0,
                             log_every=1, threads=args.threads,
                             **({"batch_sparse": mode} if arch != "topk" else {}),
                             **({"group_fraction": [0.0625, 0.125, 0.25, 0.5625]} if arch == "matryoshka" else {})))
            tps, f, _ = train_ours(tc, x_eval)
        rows.append((name, tps, f))
        print(f"{name}: {tps:,.0f} tokens/s, held-out FVU {f:.4f}", flush=True)
    print("\n| training path | tokens/s | vs dense | held-out FVU |")
    print("|---|---:|---:|---:|")
    for name, tps, f in rows:
        print(f"| {name} | {tps:,.0f} | {tps / rows[0][1]:.2f}x | {f:.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="/tmp/stores/minilm-bbc")
    ap.add_argument("--hook", default=None)
    ap.add_argument("--tokens", default="1M")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--peers", default="sparsify,dictionary_learning,sae_lens")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arch", default="topk", choices=["topk", "batchtopk", "matryoshka"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    store = ActivationStore.open(args.store)
    hook = args.hook or store.hooks[0]
    d = store.width(hook)
    F, k, bs = args.width * d, args.k, args.batch_size
    steps = math.ceil(parse_count(args.tokens) / bs)
    warmup, decay = round(0.05 * steps), round(0.2 * steps)
    train_rows, eval_rows = store.split(holdout=0.05, seed=0)
    x_eval = store.gather(hook, eval_rows)
    print(f"machine: {machine()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"store: {store}  train rows {len(train_rows)}, held-out rows {len(eval_rows)}")
    print(f"SAE: {args.arch} d_in={d} d_sae={F} k={k}, batch {bs}, {steps} steps = {steps * bs:,} tokens\n")

    results: list[tuple[str, str, float, float]] = []
    if args.arch != "topk":
        run_batch_family(args, hook, F, k, bs, steps, x_eval)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tc = TrainConfig(acts=Path(args.store), hook=hook, out=Path(tmp) / "ours", arch="topk", d_sae=[F], k=[k],
                         tokens=str(steps * bs), batch_size=bs, progress=False, checkpoint_every=0, log_every=1,
                         threads=args.threads)
        tps, f_ours, folder = train_ours(tc, x_eval)
        results.append(("monosemantic", pkg("monosemantic"), tps, f_ours))
        print(f"monosemantic: {results[0][2]:,.0f} tokens/s, held-out FVU {f_ours:.4f}", flush=True)
        saelens_line = check_saelens_load(folder, x_eval[:2048])

    data = Batches(store, hook, train_rows, bs, seed=0)
    scale = _norm_scale(tc, store, hook, train_rows, d)
    runners = {
        "sparsify": ("eai-sparsify", lambda: run_sparsify(d, F, k, steps, data, scale, x_eval)),
        "dictionary_learning": ("dictionary-learning",
                                lambda: run_dictionary_learning(d, F, k, steps, data, scale, x_eval, warmup, decay)),
        "sae_lens": ("sae-lens", lambda: run_saelens(d, F, k, steps, data, scale, x_eval)),
    }
    for name in [p for p in args.peers.split(",") if p]:
        dist, fn = runners[name]
        torch.manual_seed(0)
        try:
            secs, f = fn()
        except ImportError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        results.append((name, pkg(dist), steps * bs / secs, f))
        print(f"{name}: {steps * bs / secs:,.0f} tokens/s, held-out FVU {f:.4f}", flush=True)

    best_peer = max((r[2] for r in results[1:]), default=float("nan"))
    print("\n| library | version | tokens/s | vs fastest peer | held-out FVU |")
    print("|---|---|---:|---:|---:|")
    for name, ver, tps, f in results:
        print(f"| {name} | {ver} | {tps:,.0f} | {tps / best_peer:.2f}x | {f:.4f} |")
    print(f"\n{saelens_line}")


if __name__ == "__main__":
    main()

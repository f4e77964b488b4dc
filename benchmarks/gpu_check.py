"""GPU check: every stage on CUDA against the CPU on the same data and seed, then TopK training speed against sparsify
on the same GPU. One command, a few minutes, self-contained (no model or dataset downloads: the text model is a
small randomly initialised BERT built here, the training data planted sparse codes).

    PYTHONPATH=src python3 benchmarks/gpu_check.py                 # on a machine with a GPU
    PYTHONPATH=src python3 benchmarks/gpu_check.py --device cpu --quick   # dry run of the script itself

Part 1, correctness (same data, same seed, CPU then GPU): extract a store from the BERT (max |Δ| of the stored
rows), train a TopK and a Matryoshka SAE (held-out FVU within 1e-3; L0 equal for TopK and within 1% for
Matryoshka, whose inference threshold is learnt from the batches), score the store with both SAEs (MS of every
unit set within 1e-3). Part 2, speed: TopK (d_in 768, 32x = 24,576 latents, k 32, batch 4,096) trained by our
trainer and by sparsify's SparseCoder with its default optimizer on the same batches, tokens/s and held-out FVU
side by side. sparsify is optional (``pip install eai-sparsify``); without it part 2 times ours alone. Exit code 1
when a part-1 check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header
from monosemantic.devices import resolve_device
from monosemantic.sae import SAE, train
from monosemantic.sae.data import Batches
from monosemantic.sae.data import norm_scale as _norm_scale
from monosemantic.sae.evaluate import fvu
from monosemantic.sae.trainconfig import train_config
from monosemantic.store import write_store

WORDS = [
    "cat", "dog", "bird", "fish", "horse", "mouse", "goat", "lion", "bear",
    "market", "stock", "price", "bank", "trade", "money", "cash", "loan", "debt",
    "rain", "snow", "wind", "storm", "cloud", "sun", "fog", "hail", "frost",
]


def planted(n: int, d: int, atoms: int, seed: int) -> np.ndarray:
    """Sparse non-negative codes times a unit dictionary, plus noise and an offset (heavy-tailed like real layers)."""
    rng = np.random.default_rng(seed)
    dic = rng.standard_normal((atoms, d)).astype(np.float32)
    dic /= np.linalg.norm(dic, axis=1, keepdims=True)
    out = np.empty((n, d), dtype=np.float32)
    for a in range(0, n, 65536):
        b = min(a + 65536, n)
        codes = (rng.random((b - a, atoms)) < 16 / atoms) * rng.exponential(1.0, (b - a, atoms)).astype(np.float32)
        out[a:b] = codes @ dic + 0.05 * rng.standard_normal((b - a, d)).astype(np.float32) + 0.2
    return out


def tiny_bert(root: Path) -> tuple[Path, Path, Path]:
    """A random BERT with its own word-level vocabulary, a labelled JSONL corpus and random MS embeddings."""
    import transformers as tf
    from safetensors.torch import save_file

    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    model_dir = root / "bert"
    torch.manual_seed(0)
    cfg = tf.BertConfig(vocab_size=5 + len(WORDS), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=64)
    tf.BertModel(cfg).eval().save_pretrained(model_dir)
    tf.BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(model_dir)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(600):
        topic = i % 3
        words = rng.choice(WORDS[topic * 9 : topic * 9 + 9], size=rng.integers(4, 12))
        lines.append(json.dumps({"text": " ".join(words), "topic": ["animals", "money", "weather"][topic]}))
    data = root / "texts.jsonl"
    data.write_text("\n".join(lines) + "\n")
    emb = root / "emb.safetensors"
    save_file({"embeddings": torch.randn(600, 16, generator=torch.Generator().manual_seed(1))}, str(emb))
    return model_dir, data, emb


def correctness(device: torch.device, root: Path, quick: bool) -> bool:
    from monosemantic import log
    from monosemantic.experiments.extract import ExtractConfig
    from monosemantic.experiments.extract import run as extract
    from monosemantic.experiments.score import ScoreConfig
    from monosemantic.experiments.score import run as score

    model_dir, data, emb = tiny_bert(root)
    ok, results = True, {}
    for tag, dev in (("ref", "cpu"), ("dev", str(device))):
        t0 = time.perf_counter()
        with log.quiet():
            store = extract(ExtractConfig(model=str(model_dir), layers=["encoder.layer.1"], data=str(data),
                                          out=root / f"store-{tag}", label_columns=["topic"], device=dev)).open()
        x = planted(20_000 if quick else 60_000, 64, 256, seed=1)
        write_store(root / f"planted-{tag}", {"h": x}, item_index=np.arange(len(x)) // 10)
        saes = {}
        for arch, extra in (("topk", {}), ("matryoshka", {"group_fraction": [0.25, 0.75]})):
            tc = train_config(dict(acts=root / f"planted-{tag}", out=root / f"sae-{arch}-{tag}", arch=arch,
                                   d_sae=[512], k=[8], tokens="200K" if quick else "1M", batch_size=1024,
                                   progress=False, device=dev, **extra))
            (saes[arch],) = train(tc)
        # the planted SAEs read width 64 like the BERT layer: a numerical check of scoring on both devices
        with log.quiet():
            sc = score(ScoreConfig(acts=root / f"store-{tag}", sae=list(saes.values()), embeddings=emb,
                                   out=root / f"score-{tag}", device=dev))
        results[tag] = {
            "rows": store.rows("encoder.layer.1", 0, store.n_rows),
            "eval": {a: json.loads((p / "eval.json").read_text()) for a, p in saes.items()},
            "ms": [(s.kind, s.ms.mean) for s in sc.unit_sets],
            "seconds": time.perf_counter() - t0,
        }
    cpu, gpu = results["ref"], results["dev"]
    diff = float((cpu["rows"] - gpu["rows"]).abs().max())
    scale = float(cpu["rows"].abs().max())
    print(f"extract: {len(cpu['rows']):,} rows, max |CPU - {device}| = {diff:.3g} (rows up to {scale:.3g})")
    ok &= diff <= 1e-3 * max(scale, 1.0)
    for arch in ("topk", "matryoshka"):
        a, b = cpu["eval"][arch], gpu["eval"][arch]
        d_fvu, d_l0 = abs(a["fvu"] - b["fvu"]), abs(a["l0"] - b["l0"])
        l0_ok = d_l0 <= 0.01 * a["l0"]
        print(f"train {arch}: FVU cpu {a['fvu']:.5f} / {device} {b['fvu']:.5f} (|Δ| {d_fvu:.2g}), "
              f"L0 {a['l0']:.3f} / {b['l0']:.3f} -> {'ok' if d_fvu <= 1e-3 and l0_ok else 'FAIL'}")
        ok &= d_fvu <= 1e-3 and l0_ok
    for (kind, ms), (_, other) in zip(cpu["ms"], gpu["ms"], strict=True):
        same = abs(ms - other) <= 1e-3
        print(f"score {kind}: mean MS cpu {ms:.5f} / {device} {other:.5f} -> {'ok' if same else 'FAIL'}")
        ok &= same
    print(f"stage seconds: cpu {cpu['seconds']:.1f}, {device} {gpu['seconds']:.1f}")
    return bool(ok)


def speed(device: torch.device, root: Path, quick: bool) -> None:
    d, F, k, bs = (128, 4096, 32, 1024) if quick else (768, 32 * 768, 32, 4096)
    steps = 20 if quick else 300
    x = planted(bs * 64 + 20_000, d, 4 * F // 8, seed=2)
    store = write_store(root / "speed", {"h": x}, item_index=np.arange(len(x)) // 16)
    train_rows, eval_rows = store.split(holdout=0.05, seed=0)
    x_eval = store.gather("h", eval_rows[:8192])
    tc = train_config(dict(acts=root / "speed", out=root / "speed-ours", arch="topk", d_sae=[F], k=[k],
                           tokens=str(steps * bs), batch_size=bs, progress=False, checkpoint_every=0, log_every=50,
                           device=str(device)))
    (folder,) = train(tc)
    log = [json.loads(ln) for ln in (folder / "train_log.jsonl").read_text().splitlines()]
    with torch.no_grad():
        ours_fvu = fvu(x_eval, SAE.load(folder)(x_eval))
    rows = [("monosemantic", _pkg("monosemantic"), log[-1]["tokens"] / log[-1]["elapsed_s"], ours_fvu)]
    try:
        rows.append(("sparsify", _pkg("eai-sparsify"), *_sparsify(device, tc, store, train_rows, x_eval, steps)))
    except ImportError as exc:
        print(f"sparsify not importable ({exc}); timing ours alone")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    print(f"\nTopK d_in={d} d_sae={F} k={k} batch {bs}, {steps} steps on {where}")
    print("| library | version | tokens/s | held-out FVU |\n|---|---|---:|---:|")
    for name, ver, tps, f in rows:
        print(f"| {name} | {ver} | {tps:,.0f} | {f:.4f} |")


def _sparsify(device: torch.device, tc, store, train_rows, x_eval, steps: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    from schedulefree import ScheduleFreeWrapper
    from sparsify import SparseCoder, SparseCoderConfig
    from sparsify.sign_sgd import SignSGD

    d, F, k = x_eval.shape[1], tc.d_sae[0], int(tc.k[0])
    scale = _norm_scale(tc, store, "h", train_rows, d)
    data = Batches(store, "h", train_rows, tc.batch_size, seed=0)
    sae = SparseCoder(d, SparseCoderConfig(expansion_factor=F // d, k=k), device, dtype=torch.float32)
    opt = ScheduleFreeWrapper(SignSGD([{"params": sae.parameters(), "lr": 5e-3 / (F / 2**14) ** 0.5}]),
                              momentum=0.95)  # sparsify's default optimizer ("signum")
    opt.train()
    done, epoch = 0, 0
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    t0 = time.perf_counter()
    while done < steps:
        for xb in data.epoch(epoch):
            xd = (xb.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else xb) * scale
            if done == 0:
                sae.b_dec.data = xd.mean(0)
            sae.set_decoder_norm_to_unit_norm()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = sae(xd)
            out.fvu.backward()
            sae.remove_gradient_parallel_to_decoder_directions()
            opt.step()
            opt.zero_grad()
            done += 1
            if done == steps:
                break
        epoch += 1
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    secs = time.perf_counter() - t0
    opt.eval()
    with torch.no_grad():
        sae.set_decoder_norm_to_unit_norm()
        xs = x_eval.to(device) * scale
        top, idx, _ = sae.encode(xs)
        return steps * tc.batch_size / secs, fvu(xs.cpu(), sae.decode(top, idx).float().cpu())


def _pkg(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "source tree"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="the accelerator to check against the CPU (default cuda)")
    ap.add_argument("--quick", action="store_true", help="small sizes: a dry run of the script")
    ap.add_argument("--skip-speed", action="store_true", help="part 1 only")
    args = ap.parse_args()
    header("gpu_check")
    device = resolve_device(args.device)
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    from monosemantic.sae import triton_decode

    print(f"triton decode: {'on' if device.type == 'cuda' and triton_decode.enabled() else 'off'}\n")
    with tempfile.TemporaryDirectory() as tmp:
        ok = correctness(device, Path(tmp), args.quick)
        print(f"\npart 1: {'PASS' if ok else 'FAIL'}\n")
        if not args.skip_speed:
            speed(device, Path(tmp), args.quick)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

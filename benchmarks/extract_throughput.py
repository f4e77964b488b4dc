"""Extraction throughput against the bare forward pass up to the same layer.

The bare pass tokenises nothing inside the timed loop (inputs are prepared beforehand) and stores nothing; it
stops after the hooked layer exactly like the extractor does. The two runs alternate so machine load hits both.

    python benchmarks/extract_throughput.py                      # MiniLM layer 3 on bbc-news, all tokens
    python benchmarks/extract_throughput.py --vision             # + MobileNetV2 features.13 on mnist-5k, mean
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from common import header
from monosemantic import log
from monosemantic.experiments.extract import ExtractConfig, run
from monosemantic.sources import load_dataset, load_model, resolve_hook, run_captured


def bare_forward(
    model_name: str, hook: str, data: str, batch_size: int, max_items: int | None, image_size: int | None
) -> tuple[float, int]:
    model = load_model(model_name, image_size=image_size)
    ds = load_dataset(data)
    n = len(ds) if max_items is None else min(max_items, len(ds))
    path = resolve_hook(model.module, hook)
    batches = [model.prepare(ds.load(a, min(a + batch_size, n))) for a in range(0, n, batch_size)]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            run_captured(model.forward, batch, model.module, [path])
    seconds = time.perf_counter() - t0
    return seconds, n


def ours(
    model_name: str,
    hook: str,
    data: str,
    tokens: str,
    batch_size: int,
    max_items: int | None,
    image_size: int | None,
    out: Path,
) -> tuple[float, int]:
    cfg = ExtractConfig(
        model=model_name,
        layers=[hook],
        data=data,
        out=out,
        tokens=tokens,
        batch_size=batch_size,
        max_items=max_items,
        image_size=image_size,
        overwrite=True,
    )
    load_model(model_name, image_size=image_size)  # warm the loader cache outside the timing, as for bare
    t0 = time.perf_counter()
    with log.quiet():
        result = run(cfg)
    return time.perf_counter() - t0, result.rows


def run_case(
    label: str,
    model: str,
    hook: str,
    data: str,
    tokens: str,
    batch_size: int,
    max_items: int | None,
    image_size: int | None,
    repeat: int,
) -> str:
    bare_t, ours_t, rows = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            t, _n = bare_forward(model, hook, data, batch_size, max_items, image_size)
            bare_t.append(t)
            t, rows = ours(model, hook, data, tokens, batch_size, max_items, image_size, Path(tmp) / "store")
            ours_t.append(t)
    b, o = min(bare_t), min(ours_t)
    pairs = ", ".join(f"{x:.1f}/{y:.1f}" for x, y in zip(bare_t, ours_t, strict=True))
    median = sorted(100 * (y / x - 1) for x, y in zip(bare_t, ours_t, strict=True))[len(bare_t) // 2]
    return (
        f"| {label} | {rows:,} | {b:.1f} | {o:.1f} | {rows / o:,.0f} | {100 * (o / b - 1):+.1f}% "
        f"| {median:+.1f}% | {pairs} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-items", type=int, default=None, help="limit the text case to N items")
    ap.add_argument("--repeat", type=int, default=1, help="alternate bare/ours this many times")
    ap.add_argument("--vision", action="store_true", help="also run MobileNetV2 on mnist-5k")
    ap.add_argument("--no-text", action="store_true", help="skip the MiniLM case")
    args = ap.parse_args()
    header("extract_throughput")
    print(
        "| case | rows stored | bare forward (s, best) | monosemantic extract (s, best) | rows/s | overhead (best) "
        "| overhead (median pair) | each pair bare/ours (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    cases = [] if args.no_text else [
        ("minilm encoder.layer.3, bbc-news, all tokens", "minilm", "encoder.layer.3", "bbc-news", "all", 32,
         args.max_items, None)
    ]
    if args.vision:
        cases.append(("mobilenet_v2 features.13, mnist-5k, mean (96 px)", "mobilenet_v2", "features.13", "mnist-5k",
                      "mean", 64, None, 96))
    for case in cases:
        print(run_case(*case, args.repeat), flush=True)


if __name__ == "__main__":
    main()

"""A synthetic, demo-like run folder for the report: for tests and for the README screenshot without a real run.

The numbers are invented (seeded) but shaped like a real run: raw neurons score lower MS than SAE latents, MS
grows with width and falls with k, a few latents are dead, and image cards show digits of mostly one class.

    python -m monosemantic.report.synthetic OUT_DIR [--size demo|tiny] [--screenshot docs/report.png]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from monosemantic.report.data import DATA_NAME, FORMAT_VERSION, RUN_NAME

DIGITS = [str(d) for d in range(10)]
TOPICS = ["business", "entertainment", "politics", "sport", "tech"]
_WORDS = {
    "business": ["shares", "profits", "bank", "market", "investors", "economy", "firm", "sales"],
    "entertainment": ["film", "album", "actor", "festival", "singer", "award", "show", "band"],
    "politics": ["minister", "election", "party", "labour", "vote", "government", "tory", "mps"],
    "sport": ["match", "coach", "season", "goal", "champion", "cup", "team", "injury"],
    "tech": ["software", "phone", "users", "broadband", "games", "digital", "net", "mobile"],
}
_FILLER = ["the", "a", "of", "to", "and", "in", "said", "on", "for", "was", "with", "new", "after", "year", "last"]
SIZES = {
    "tiny": {"vision": (16, [("topk", 2, 4), ("topk", 4, 4)]), "language": (24, [("topk", 2, 4)]), "cards": 2},
    "demo": {
        "vision": (96, [("topk", 4, 8), ("topk", 8, 8), ("topk", 16, 8), ("topk", 8, 16), ("topk", 8, 32)]),
        "language": (384, [("topk", 4, 16), ("topk", 8, 16), ("batchtopk", 8, 16)]),
        "cards": 4,
    },
}


def digit_png(digit: int, rng: np.random.Generator, size: int = 28) -> str:
    """A small MNIST-like image of ``digit`` as a PNG data URI."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    img = Image.new("L", (size, size), 0)
    font = ImageFont.load_default(size=int(size * 0.8))
    dx, dy = rng.integers(-2, 3, size=2)
    ImageDraw.Draw(img).text((size / 2 + dx, size / 2 + dy), str(digit), fill=255, font=font, anchor="mm")
    img = img.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR).filter(ImageFilter.GaussianBlur(0.6))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _ms_values(rng: np.random.Generator, n: int, mean: float, spread: float, dead: float) -> list[float | None]:
    vals = np.clip(rng.beta(4, 4, size=n) * spread * 2 + mean - spread, 0.02, 0.99)
    out: list[float | None] = [round(float(v), 4) for v in vals]
    for i in rng.choice(n, size=round(dead * n), replace=False):
        out[int(i)] = None
    return out


def _summary(vals: list[float | None]) -> dict[str, Any]:
    finite = np.array([v for v in vals if v is not None], dtype=np.float64)
    return {"mean": float(finite.mean()), "std": float(finite.std()), "best": float(finite.max()),
            "worst": float(finite.min()), "dead": len(vals) - len(finite), "values": vals}


def _unit_set(rng: np.random.Generator, d: int, spec: tuple[str, float, int] | None, labels: list[str],
              tokens: int) -> dict[str, Any]:
    if spec is None:
        ms = _ms_values(rng, d, 0.21, 0.07, 0.0)
        fms_level, out = 0.18, {"id": "neurons", "kind": "neurons", "width": d, "l0": float(d), "fvu": None,
                                "dead_fraction": 0.0}
    else:
        arch, x, k = spec
        mean = 0.36 + 0.05 * math.log2(x) - 0.04 * math.log2(k / 8)
        dead = 0.01 * math.log2(x) + 0.005 * (arch == "topk")
        ms = _ms_values(rng, int(d * x), mean, 0.25, dead)
        fvu = 0.32 - 0.03 * math.log2(x) - 0.05 * math.log2(k / 4)
        fms_level = 0.25 + 0.04 * math.log2(x)
        steps = np.linspace(0, tokens, 25)
        decay = np.exp(-steps / (tokens / 5))
        out = {"id": f"{arch}-x{x:g}-k{k}", "kind": "sae", "arch": arch, "expansion": x, "k": k, "width": int(d * x),
               "l0": float(k), "fvu": round(fvu, 4), "dead_fraction": round(dead, 4),
               "training": {"tokens": steps.astype(int).tolist(),
                            "fvu": (fvu + (1 - fvu) * decay + rng.normal(0, 0.004, 25)).round(4).tolist(),
                            "l0": (k + 3 * k * decay).round(2).tolist(),
                            "dead_fraction": (dead + 0.2 * decay * (1 - decay) * 4).round(4).tolist()}}
    per = {}
    for c in labels:
        f1 = float(np.clip(rng.normal(fms_level, 0.08), 0.02, 0.95))
        per[c] = {"fms@1": round(f1, 4), "fms@5": round(f1 * rng.uniform(0.6, 0.9), 4),
                  "acc0": round(float(rng.uniform(0.6, 0.97)), 4)}
    out["ms"] = _summary(ms)
    out["fms"] = {"variant": "balanced", "fms@1": float(np.mean([p["fms@1"] for p in per.values()])),
                  "fms@5": float(np.mean([p["fms@5"] for p in per.values()])), "per_concept": per}
    out["corr_mean"] = round(0.2 + 0.3 * fms_level, 4)
    out["entropy_mean"] = round(2.0 - fms_level * 2, 4)
    return out


def _features(rng: np.random.Generator, unit_set: dict[str, Any], labels: list[str], n_items: int
              ) -> list[dict[str, Any]]:
    rows = []
    neurons = unit_set["kind"] == "neurons"
    for i, ms in enumerate(unit_set["ms"]["values"]):
        rate = float(rng.uniform(0.3, 0.7)) if neurons else float(10 ** rng.uniform(-3.3, -0.7))
        quality = 0.0 if ms is None else ms
        rows.append({
            "set": unit_set["id"], "id": i, "ms": ms,
            "fms": None if ms is None else round(float(np.clip(quality * 0.7 + rng.normal(0, 0.08), 0, 1)), 4),
            "firing_rate": 0.0 if ms is None else round(rate, 5),
            "active_items": 0 if ms is None else max(2, round(rate * n_items)),
            "best_label": None if ms is None else labels[int(rng.integers(len(labels)))],
            "best_corr": None if ms is None else round(float(np.clip(quality + rng.normal(0, 0.1), -1, 1)), 4),
            "entropy": None if ms is None else round(float(max(0.05, 2.2 - 2.2 * quality + rng.normal(0, .15))), 4),
        })
    return rows


def _snippet(rng: np.random.Generator, topic: str, peak: float) -> dict[str, Any]:
    words = [str(w) for w in rng.choice(_FILLER, size=13)]
    at = int(rng.integers(4, 9))
    words[at] = str(rng.choice(_WORDS[topic]))
    words[at + 2] = str(rng.choice(_WORDS[topic]))
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
    weights = [0.0] * len(tokens)
    weights[at], weights[at + 2], weights[at - 1] = 1.0, round(float(rng.uniform(0.3, 0.7)), 3), 0.15
    return {"tokens": tokens, "weights": weights, "acts": [round(w * peak, 4) for w in weights]}


def _cards(rng: np.random.Generator, track: dict[str, Any], per_set: int, image: bool) -> list[dict[str, Any]]:
    labels = track["label_names"]
    cache: dict[int, str] = {}
    cards = []
    for unit_set in track["unit_sets"]:
        feats = [f for f in track["features"] if f["set"] == unit_set["id"] and f["ms"] is not None]
        feats.sort(key=lambda f: -f["ms"])
        n = per_set if unit_set["kind"] != "neurons" else max(1, per_set // 2)
        for f in feats[:n]:
            main = labels.index(f["best_label"])
            top_labels = [main if rng.random() < 0.35 + 0.6 * f["ms"] else int(rng.integers(len(labels)))
                          for _ in range(16)]
            weak_labels = [int(rng.integers(len(labels))) for _ in range(16)]
            peak = float(rng.uniform(2, 6))
            values = sorted(rng.uniform(0.4, 1.0, size=16) * peak, reverse=True)
            weak_values = sorted(rng.uniform(0.001, 0.05, size=16) * peak)

            def example(lab: int, value: float) -> dict[str, Any]:
                item = int(rng.integers(track["n_items"] // len(labels))) * len(labels) + lab
                ex: dict[str, Any] = {"item": item, "value": round(float(value), 4), "label": labels[lab]}
                if image:
                    if item not in cache:
                        cache[item] = digit_png(lab, rng)
                    ex["image"] = cache[item]
                else:
                    ex.update(_snippet(rng, labels[lab], float(value)))
                return ex

            hist: dict[str, int] = {}
            for lab in top_labels:
                hist[labels[lab]] = hist.get(labels[lab], 0) + 1
            cards.append({
                "set": unit_set["id"], "id": f["id"], "ms": f["ms"], "fms": f["fms"], "firing_rate": f["firing_rate"],
                "best_label": f["best_label"], "active_items": f["active_items"], "label_hist": hist,
                "top": [example(lab, v) for lab, v in zip(top_labels, values, strict=True)],
                "weak": [example(lab, v) for lab, v in zip(weak_labels, weak_values, strict=True)],
            })
    return cards


def make_report_data(size: str = "tiny", seed: int = 0) -> dict[str, Any]:
    """A complete ``report_data.json`` payload with an image track and a text track."""
    rng = np.random.default_rng(seed)
    cfg = SIZES[size]
    tracks = []
    for name, modality, model, hook, dataset, labels, n_items, encoder in (
        ("vision", "image", "mobilenet_v2", "features.13", "mnist-5k", DIGITS, 5000, "efficientnet_lite0"),
        ("language", "text", "minilm", "encoder.layer.3", "bbc-news", TOPICS, 2225, "minilm"),
    ):
        d, saes = cfg[name]
        sets = [_unit_set(rng, d, None, labels, 0)]
        sets += [_unit_set(rng, d, spec, labels, 2_000_000) for spec in saes]
        track: dict[str, Any] = {
            "name": name, "modality": modality, "model": model, "hook": hook, "dataset": dataset,
            "n_items": n_items, "n_rows": n_items if modality == "image" else n_items * 180,
            "tokens": "mean" if modality == "image" else "all", "encoder": encoder, "label_names": labels,
            "unit_sets": sets, "features": [row for s in sets for row in _features(rng, s, labels, n_items)],
        }
        track["cards"] = _cards(rng, track, cfg["cards"], modality == "image")
        tracks.append(track)
    lines = []
    for tr in tracks:
        base = tr["unit_sets"][0]["ms"]["mean"]
        best = max(tr["unit_sets"][1:], key=lambda s: s["ms"]["mean"])
        lines.append(f"{tr['name']}: raw neurons mean MS {base:.2f}; best SAE ({best['id']}) {best['ms']['mean']:.2f}")
    return {"format_version": FORMAT_VERSION, "title": f"monosemantic synthetic {size} run",
            "created": "2026-11-21T07:00:00Z", "monosemantic_version": "0.1.0",
            "headline": [*lines, "Synthetic numbers for a layout preview; run `monosemantic demo` for real ones."],
            "tracks": tracks}


def write_synthetic_run(run_dir: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write ``report_data.json`` and a ``run.json`` with every stage done into ``run_dir``; return the folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / DATA_NAME).write_text(json.dumps(make_report_data(size, seed), allow_nan=False), encoding="utf-8")
    stages = {"extract": "done", "train": "done", "score": "done"}
    (run_dir / RUN_NAME).write_text(json.dumps({"config": "synthetic", "stages": stages}), encoding="utf-8")
    return run_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="run folder to write (report_data.json, run.json, report.html)")
    parser.add_argument("--size", choices=sorted(SIZES), default="demo")
    parser.add_argument("--screenshot", type=Path, help="also save a PNG screenshot of the report here")
    parser.add_argument("--height", type=int, default=1400, help="screenshot height in pixels")
    args = parser.parse_args(argv)
    from monosemantic.report import render_report, screenshot

    html = render_report(write_synthetic_run(args.out, args.size))
    print(html)
    if args.screenshot:
        print(screenshot(html, args.screenshot, height=args.height))


if __name__ == "__main__":
    main()

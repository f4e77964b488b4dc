"""`monosemantic steer`: continue prompts with and without an edit of SAE latents, side by side."""

from __future__ import annotations

import argparse

from monosemantic.config import add_arguments, from_namespace
from monosemantic.steer.run import SteerConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "steer", help="steer a language model through SAE latents and compare with its unsteered continuations",
        description="Load a causal LM and an SAE trained on one of its hooks, edit the chosen latents at that hook "
        "on every position (prompt and generated tokens) and print the greedy continuations of every prompt "
        "without and with the edit, for each α. The output names the edit and the error-term mode. With "
        "--vision-hook and --image the SAE sits in a vision tower (or an image classifier's block) instead, and the "
        "answers about each image (or the classifier's top classes) are printed before and after the edit.",
        epilog="Example: monosemantic steer --model smollm2 --sae runs/demo/saes/.../gsae-4608-k32 --latent 0 "
        "--mode direction --alpha 0.1 --alpha 0.2 --prompt 'I woke up today and'. Through a vision encoder "
        "(--vision-hook, --image): an image-text model from the Hugging Face cache answers --prompt about each image "
        "(monosemantic steer --model llava-hf/llava-1.5-7b-hf --vision-hook encoder.layers.22 --sae DIR --latent 39 "
        "--mode clamp --alpha 40 --image blank.png --prompt 'Write me a short love poem'), and an image classifier "
        "prints its top classes (monosemantic steer --model mobilenet_v2 --vision-hook features.13 --sae DIR "
        "--latent 7 --mode clamp --alpha 10 --image photo.jpg).",
    )
    add_arguments(p, SteerConfig, flags={"alpha": ("--alpha", "--alphas")})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import textwrap

    from monosemantic.steer.run import run_steer

    cfg = from_namespace(SteerConfig, args)
    if cfg.vision_hook or cfg.image:
        return _run_vision(cfg)
    records = run_steer(cfg)
    first = records[0]
    edit = f"{cfg.mode} latent(s) {', '.join(map(str, cfg.latent))}"
    if cfg.mode == "direction":
        edit += f", gamma {cfg.gamma}"
    print(f"hook {first['hook']}; edit: {edit}; error term: {cfg.error_term}")
    for prompt in dict.fromkeys(r["prompt"] for r in records):
        rows = [r for r in records if r["prompt"] == prompt]
        print(f"\n> {prompt}")
        print(textwrap.indent(f"baseline     | {rows[0]['baseline']!r}", "  "))
        for r in rows:
            print(textwrap.indent(f"α = {r['alpha']:<8g} | {r['steered']!r}", "  "))
    if cfg.out is not None:
        print(f"\n{cfg.out}")
    return 0


def _run_vision(cfg: SteerConfig) -> int:
    from monosemantic.steer.run import write_jsonl
    from monosemantic.steer.vision import run_vision_steer

    kind, records = run_vision_steer(cfg)
    edit = f"{cfg.mode} latent(s) {', '.join(map(str, cfg.latent))}"
    print(f"hook {records[0]['hook']}; edit: {edit}; error term: {cfg.error_term}; positions: {cfg.pooling}")
    for i, path in enumerate(cfg.image):
        rows = [r for r in records if r["image"] == i]
        print(f"\n[{path}]")
        if kind == "classifier":
            def fmt(top: list[tuple[str, float]]) -> str:
                return ", ".join(f"{name} {p:.2f}" for name, p in top)

            print(f"  before       | {fmt(rows[0]['before'])}")
            for r in rows:
                print(f"  α = {r['alpha']:<8g} | {fmt(r['after'])}")
            continue
        for prompt in dict.fromkeys(r["prompt"] for r in rows):
            sub = [r for r in rows if r["prompt"] == prompt]
            print(f"> {prompt}")
            print(f"  baseline     | {sub[0]['baseline']!r}")
            for r in sub:
                print(f"  α = {r['alpha']:<8g} | {r['steered']!r}")
    if cfg.out is not None:
        for r in records:
            r.update(image_path=str(cfg.image[r["image"]]), latents=list(cfg.latent), mode=cfg.mode,
                     error_term=cfg.error_term, pooling=cfg.pooling)
        write_jsonl(cfg.out, records)
        print(f"\n{cfg.out}")
    return 0

"""`monosemantic steer-measure` and `monosemantic steer-score`: measurements of steering through a vision encoder."""

from __future__ import annotations

import argparse

from monosemantic.config import add_arguments, from_namespace
from monosemantic.steer.vision_eval import VisionSteerConfig
from monosemantic.steer.vision_score import SteerScoreConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "steer-measure", help="clamp SAE latents of an image classifier and count top-1 moves to each latent's class",
        description="For each latent of an SAE on a block of an ImageNet classifier, find its top-activating images "
        "on --data and the class that dominates their top-1 predictions; clamp the latents whose top images agree "
        "most, and as many random latents, on neutral photos (scikit-image and scikit-learn samples, a grey image) "
        "and count how often the head's top-1 becomes that class (after Pach et al., arXiv 2504.02821, §5). "
        "Writes vision_steer.json and vision_steer.html; `monosemantic report` shows it from a run folder.",
        epilog="Example: monosemantic steer-measure --sae runs/vision-steer/sae --out runs/vision-steer/vision_steer",
    )
    add_arguments(p, VisionSteerConfig, flags={"alpha": ("--alpha", "--alphas")})
    p.set_defaults(func=run_measure)
    q = sub.add_parser(
        "steer-score", help="the steering score of an image-text model steered through its vision tower",
        description="Clamp each latent at a vision-tower block of a LLaVA-style model, ask for a one-word answer "
        "about each image, and score cos(CLIP text embedding of the answer, mean CLIP image embedding of the "
        "latent's top images) with the bounds cos(image, its class name) and cos(image, a random class name) "
        "(Pach et al., arXiv 2504.02821, §5). The models must be in the Hugging Face cache.",
        epilog="Example: monosemantic steer-score --model llava-hf/llava-1.5-7b-hf --vision-hook encoder.layers.22 "
        "--sae DIR --latent 0 --latent 1 --data imagenet-folder/ --clip openai/clip-vit-base-patch32 --out score.json",
    )
    add_arguments(q, SteerScoreConfig, flags={"alpha": ("--alpha",)})
    q.set_defaults(func=run_score)


def run_measure(args: argparse.Namespace) -> int:
    from monosemantic.report.render import result_page
    from monosemantic.report.sections.steer_measure import KIND
    from monosemantic.steer.vision_eval import check_result_out, measure_vision_steering, write_result

    cfg = from_namespace(VisionSteerConfig, args)
    check_result_out(cfg.out, overwrite=cfg.overwrite)
    result = measure_vision_steering(cfg)
    path = write_result(result, cfg.out, {"vision_steer.html": result_page(KIND, result)})
    print(f"{result['model']} {result['hook']}: {result['alive']:,} of {result['sae']['d_sae']:,} latents fire on "
          f"≥ {cfg.top_images} of {result['n_images']:,} images; {len(result['neutral'])} neutral photos")
    for s in result["summary"]:
        print(f"α = {s['alpha_multiple']:g} × peak, {s['group']:<6} latents ({s['latents']}): top-1 → latent's class "
              f"{s['successes']}/{s['pairs']} ({s['rate']:.3f}); top-1 changed {s['top1_changed']}/{s['pairs']}; "
              f"class in top-5 {s['top5_before']} → {s['top5_after']}; mean Δ log p(class) {s['mean_logp_delta']:+.2f}")
    print(path)
    return 0


def run_score(args: argparse.Namespace) -> int:
    from monosemantic.steer.vision_score import run_steer_score

    cfg = from_namespace(SteerScoreConfig, args)
    result = run_steer_score(cfg)
    s = result["score"]
    print(f"steering score {s['mean']:.4f} ± {s['std']:.4f} over {s['n']} (latent, image) pairs")
    if result.get("bounds"):
        b = result["bounds"]
        print(f"bounds: upper (image vs its class name) {b['upper']:.4f}, lower (vs a random class name) "
              f"{b['lower']:.4f}")
    if cfg.out is not None:
        print(cfg.out)
    return 0

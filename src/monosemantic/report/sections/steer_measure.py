"""The report section of steering through a vision encoder (Pach et al., arXiv 2504.02821, §5): the success rates
of clamped latents against random ones, and per latent its top images, its class and the predictions on the
neutral photos before and after the clamp.

Shown when the run folder holds ``steer_measure.json`` or ``steer_measure/steer_measure.json`` (written by
``monosemantic steer-measure``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monosemantic.report.blocks import esc
from monosemantic.report.result_pages import find_result, value_table
from monosemantic.results import ResultKind

KIND = ResultKind(name="steer_measure", file="steer_measure.json", format="monosemantic-steer-measure",
                  title="Steering through a vision encoder", page="steer_measure.html")

_FIGURE = "display:inline-block;width:96px;margin:2px;vertical-align:top"


def find_vision_steer(run_dir: Path) -> dict[str, Any] | None:
    """The vision-steering result of a run folder, if any."""
    return find_result(run_dir, KIND.file, KIND.format)


def _img(uri: str, title: str, side: int) -> str:
    return f"<img src='{esc(uri)}' title='{esc(title)}' alt='{esc(title)}' width={side} height={side} " \
           "style='object-fit:contain;image-rendering:pixelated;margin:1px'>"


def _latent_block(result: dict[str, Any], lat: dict[str, Any]) -> str:
    neutral = result["neutral"]
    rows = [r for r in result["rows"] if r["latent"] == lat["latent"]]
    thumbs = "".join(_img(u, c, 40) for u, c in zip(lat["top_images"], lat["top_classes"], strict=True))
    head = "".join(f"<th><small>{esc(n['name'])}</small></th>" for n in neutral)  # the photos are shown once, above
    before = "".join(f"<td>{esc(n['before'])}</td>" for n in neutral)
    after = ""
    for r in rows:
        cells = "".join(f"<td{' class=hit' if s else ''}>{'<b>' if s else ''}{esc(a)}{'</b>' if s else ''}</td>"
                        for a, s in zip(r["after"], r["success"], strict=True))
        after += f"<tr><td>α = {r['alpha_multiple']:g} × peak ({r['alpha']:.2f})</td>{cells}</tr>"
    return (f"<details><summary>latent {lat['latent']} ({esc(lat['group'])}): class <b>{esc(lat['target'])}</b>, "
            f"{lat['purity']:.0%} of its top images; hits {sum(sum(r['success']) for r in rows)}/"
            f"{sum(len(r['success']) for r in rows)}</summary><div>{thumbs}</div>"
            f"<div class=table-wrap><table class=summary><thead><tr><th>top-1</th>{head}</tr></thead><tbody>"
            f"<tr><td>before</td>{before}</tr>{after}</tbody></table></div></details>")


def vision_steer_section(result: dict[str, Any]) -> str:
    """The section as HTML."""
    cfg = result.get("config") or {}
    summary = [{**s, "group": "most class-pure latents" if s["group"] == "chosen" else "random latents (control)",
                "hits": f"{s['successes']}/{s['pairs']}", "moved": f"{s['moved_successes']}/{s['moved_pairs']}",
                "changed": f"{s['top1_changed']}/{s['pairs']}",
                "top5": f"{s.get('top5_before', '–')} → {s.get('top5_after', '–')}"} for s in result["summary"]]
    table = value_table(summary, (("group", "latents", None), ("alpha_multiple", "α (× peak)", 1),
                                  ("latents", "n", None), ("hits", "top-1 → class", None), ("rate", "rate", 3),
                                  ("moved", "among photos not already that class", None),
                                  ("changed", "top-1 changed", None), ("top5", "class in top-5 (before → after)", None),
                                  ("mean_logp_delta", "mean Δ log p(class)", 2)))
    sae = result["sae"]
    return (
        "<section id=vision-steer><h2>Steering through a vision encoder</h2>"
        "<p>After Pach et al., “Sparse Autoencoders Learn Monosemantic Features in Vision-Language Models” (arXiv "
        f"2504.02821, §5). An SAE ({esc(sae['architecture'])}, {sae['d_sae']:,} latents, k = {sae['k']}) on "
        f"{esc(result['model'])} {esc(result['hook'])} is inserted there and one latent is set by "
        f"<b>{esc(cfg.get('mode', 'clamp'))}</b> ({esc(cfg.get('error_term', 'keep_error'))}, "
        f"{esc(cfg.get('pooling', 'tokens'))}) while the rest of the network runs unchanged. Each latent's class is "
        f"the most common top-1 prediction among its {cfg.get('top_images', 16)} top-activating images of "
        f"{esc(result['data'])} ({result['n_images']:,} images, ranked by mean-pooled activation); success is the "
        f"head's top-1 on a neutral photo becoming that class. {result['alive']:,} latents fire on enough images; "
        f"{len(result['neutral'])} neutral photos.</p>" + table
        + "<h3>Neutral photos</h3><div>"
        + "".join(f"<figure style='{_FIGURE}'>{_img(n['thumb'], n['name'], 64)}<figcaption>"
                  f"<small>{esc(n['name'])}: {esc(n['before'])}</small></figcaption></figure>"
                  for n in result["neutral"])
        + "</div><h3>Latents</h3><p>Each latent's top images (hover: their top-1 class) and the top-1 class of every "
        "neutral photo before and after the edit; hits in bold.</p>"
        + "".join(_latent_block(result, lat) for lat in result["latents"]) + "</section>"
    )


def vision_steer_page(result: dict[str, Any]) -> str:
    """The section as a stand-alone page (CSS inline)."""
    from importlib import resources

    css = resources.files("monosemantic.report").joinpath("report.css").read_text(encoding="utf-8")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Steering through a vision encoder"
            f"</title><style>{css} td.hit{{background:#dfd}}</style></head><body><main>"
            f"{vision_steer_section(result)}</main></body></html>")

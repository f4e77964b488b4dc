"""HTML for the parts of a track: the summary table, the features-table data and the feature cards.

Every string that comes from the data (set ids, labels, item texts, tokens) goes through ``esc``; images are
accepted only as base64 ``data:image/...`` URIs, so a hostile report file can neither inject markup nor make the
page fetch anything.
"""

from __future__ import annotations

import base64
import html
import json
import re
import struct
from typing import Any

from monosemantic.report.data import num
from monosemantic.report.figures import set_colors

_DATA_URI = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+")
_PIXELATED_BELOW = 48  # thumbnails smaller than this are upscaled with hard pixel edges (MNIST-like images)


def esc(value: Any) -> str:
    """Text safe inside HTML element content and quoted attributes."""
    return html.escape(str(value), quote=True)


def script_json(obj: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element (no ``</script>``, no HTML comment)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (
        text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def fmt(value: Any, digits: int = 2, pct: bool = False) -> str:
    x = num(value)
    if x is None:
        return "–"
    return f"{100 * x:.{max(0, digits - 1)}f}%" if pct else f"{x:.{digits}f}"


def fmt_count(value: Any) -> str:
    x = num(value)
    return "–" if x is None else f"{x:,.0f}"


def _round(x: Any) -> float | None:
    v = num(x)
    return None if v is None else float(f"{v:.4g}")


# ------------------------------------------------------------------------------------------------- summary


def summary_table(track: dict[str, Any], t: int) -> str:
    """Per unit set: size, reconstruction and sparsity, MS and FMS, with the raw neurons as the baseline row."""
    colors = set_colors(track)
    sets = track["unit_sets"]
    neurons = next((s for s in sets if s["kind"] == "neurons"), None)
    base = None if neurons is None else num(neurons["ms"].get("mean"))
    means = [num(s["ms"].get("mean")) for s in sets]
    top = max((m for m in means if m is not None), default=None)
    best = {key: _best(sets, key) for key in ("fms@1", "fms@5")}
    head = (
        "<tr><th>Units</th><th class=n>Width</th><th class=n>k</th><th class=n title='mean active units per input'>"
        "L0</th><th class=n title='fraction of variance unexplained (lower is better)'>FVU</th>"
        "<th class=n title='fraction of units that never fire'>Dead</th><th class=ms>MS mean ± std</th>"
        "<th class=n>MS best</th><th class=n>MS worst</th><th class=n>FMS@1</th><th class=n>FMS@5</th>"
        "<th class=n>Δ MS vs neurons</th></tr>"
    )
    rows = []
    for s, mean in zip(sets, means, strict=True):
        ms = s["ms"]
        fms = s.get("fms") or {}
        is_base = s["kind"] == "neurons"
        label = esc(s["id"]) + (" <span class=tag>baseline</span>" if is_base else "")
        bar = "" if mean is None or not top or top <= 0 else (
            f"<span class=bar style='width:{max(0.0, 100 * mean / top):.1f}%;background:{colors[str(s['id'])]}'>"
            "</span>"
        )
        dead_ms = ms.get("dead")
        mean_cell = (
            f"<td class=ms{' best' if mean is not None and mean == top else ''}>{bar}<span class=v>{fmt(mean)}"
            f"<small> ± {fmt(ms.get('std'))}</small></span></td>"
        )
        rows.append(
            f"<tr class='{'baseline' if is_base else 'sae'}'>"
            f"<th scope=row><span class=swatch style='background:{colors[str(s['id'])]}'></span>{label}"
            f"<div class=sub>{esc(_describe(s))}</div></th>"
            f"<td class=n>{fmt_count(s.get('width'))}</td><td class=n>{fmt_count(s.get('k'))}</td>"
            f"<td class=n>{fmt(s.get('l0'), 1)}</td><td class=n>{fmt(s.get('fvu'), 3)}</td>"
            f"<td class=n title='{esc(fmt_count(dead_ms))} units with undefined MS'>"
            f"{fmt(s.get('dead_fraction'), 2, pct=True)}</td>"
            f"{mean_cell}<td class=n>{fmt(ms.get('best'))}</td><td class=n>{fmt(ms.get('worst'))}</td>"
            + "".join(
                f"<td class='n{' best' if best[key] is not None and num(fms.get(key)) == best[key] else ''}'>"
                f"{fmt(fms.get(key))}</td>"
                for key in ("fms@1", "fms@5")
            )
            + f"<td class=n>{_delta(mean, base, is_base)}</td></tr>"
        )
    return (
        f"<div class=scroll><table class=summary id='t{t}-summary-table'><thead>{head}</thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _best(sets: list[dict[str, Any]], key: str) -> float | None:
    values = [num((s.get("fms") or {}).get(key)) for s in sets]
    return max((v for v in values if v is not None), default=None)


def _describe(s: dict[str, Any]) -> str:
    if s["kind"] == "neurons":
        return "raw neurons of the layer"
    parts = [str(s.get("arch", "sae"))]
    if num(s.get("expansion")) is not None:
        parts.append(f"×{num(s.get('expansion')):g}")
    if num(s.get("k")) is not None:
        parts.append(f"k={num(s.get('k')):g}")
    return " ".join(parts)


def _delta(mean: float | None, base: float | None, is_base: bool) -> str:
    if is_base or mean is None or base is None:
        return "–"
    d = mean - base
    ratio = f" (×{mean / base:.1f})" if base > 0 else ""
    return f"<span class={'up' if d >= 0 else 'down'}>{d:+.2f}{ratio}</span>"


def kpi_tiles(track: dict[str, Any], t: int) -> str:
    """The two headline contrasts of a track: MS and FMS@1, raw neurons against the best SAE."""
    from monosemantic.report.figures import best_sae

    neurons = next((s for s in track["unit_sets"] if s["kind"] == "neurons"), None)
    best = best_sae(track)
    fms_best = max(
        (s for s in track["unit_sets"] if s["kind"] != "neurons"),
        key=lambda s: num((s.get("fms") or {}).get("fms@1")) or -1.0, default=None,
    )

    def tile(title: str, base: Any, value: Any, who: Any) -> str:
        return (
            f"<div class=kpi><div class=k-title>{esc(title)}</div><div class=k-values>"
            f"<span class=k-base title='raw neurons'>{fmt(base)}</span><span class=arrow>→</span>"
            f"<span class=k-best>{fmt(value)}</span></div>"
            f"<div class=k-sub>raw neurons → {esc(who if who is not None else 'no SAE')}</div></div>"
        )

    tiles = [
        tile("Mean MS", None if neurons is None else neurons["ms"].get("mean"),
             None if best is None else best["ms"].get("mean"), None if best is None else best["id"]),
        tile("FMS@1", None if neurons is None else (neurons.get("fms") or {}).get("fms@1"),
             None if fms_best is None else (fms_best.get("fms") or {}).get("fms@1"),
             None if fms_best is None else fms_best["id"]),
    ]
    if best is not None:
        tiles.append(
            f"<div class=kpi><div class=k-title>Best-MS SAE fit</div><div class=k-values>"
            f"<span class=k-best>{fmt(best.get('fvu'), 3)}</span><span class=k-unit>FVU</span>"
            f"<span class=k-best>{fmt(best.get('l0'), 1)}</span><span class=k-unit>L0</span></div>"
            f"<div class=k-sub>{esc(best['id'])}</div></div>"
        )
    return (
        f"<a class=kpis href='#t{t}'><div class=kpi-track>{esc(track['name'])}"
        f"<small>{esc(_where(track))}</small></div>{''.join(tiles)}</a>"
    )


def _where(track: dict[str, Any]) -> str:
    return " · ".join(str(track[k]) for k in ("model", "hook", "dataset") if track.get(k) not in (None, ""))


def facts(track: dict[str, Any]) -> str:
    """The provenance line of a track: model, hook, data, sizes, token pooling, MS encoder, labels."""
    items = [
        ("model", track.get("model")), ("hook", track.get("hook")), ("dataset", track.get("dataset")),
        ("items", fmt_count(track.get("n_items")) if track.get("n_items") is not None else None),
        ("rows", fmt_count(track.get("n_rows")) if track.get("n_rows") is not None else None),
        ("tokens", track.get("tokens")), ("MS encoder", track.get("encoder")),
        ("labels", ", ".join(map(str, track.get("label_names") or [])) or None),
    ]
    cells = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in items if v not in (None, ""))
    return f"<dl class=facts>{cells}</dl>"


# ---------------------------------------------------------------------------------------------- features


def features_payload(track: dict[str, Any], card_keys: set[tuple[str, str]]) -> dict[str, Any]:
    """Column-wise, rounded feature rows for the JS table (columns keep tens of thousands of rows small)."""
    sets = [str(s["id"]) for s in track["unit_sets"]]
    set_index = {name: i for i, name in enumerate(sets)}
    labels: list[str] = []
    label_index: dict[str, int] = {}
    cols: dict[str, list[Any]] = {k: [] for k in ("set", "id", "ms", "fms", "fr", "label", "corr", "ent", "card")}
    for f in track.get("features") or []:
        label = f.get("best_label")
        if label is None:
            li = -1
        else:
            li = label_index.setdefault(str(label), len(labels))
            if li == len(labels):
                labels.append(str(label))
        cols["set"].append(set_index[str(f["set"])])
        cols["id"].append(f["id"] if isinstance(f["id"], int) else str(f["id"]))
        cols["ms"].append(_round(f.get("ms")))
        cols["fms"].append(_round(f.get("fms")))
        cols["fr"].append(_round(f.get("firing_rate")))
        cols["label"].append(li)
        cols["corr"].append(_round(f.get("best_corr")))
        cols["ent"].append(_round(f.get("entropy")))
        cols["card"].append(1 if (str(f["set"]), str(f["id"])) in card_keys else 0)
    return {"sets": sets, "colors": [set_colors(track)[s] for s in sets], "labels": labels, **cols}


def features_block(track: dict[str, Any], t: int, card_keys: set[tuple[str, str]]) -> str:
    """Controls and an empty table that report.js fills from the JSON beside it."""
    payload = features_payload(track, card_keys)
    set_opts = "".join(f"<option value='{i}'>{esc(s)}</option>" for i, s in enumerate(payload["sets"]))
    label_opts = "".join(
        f"<option value='{i}'>{esc(s)}</option>" for i, s in sorted(enumerate(payload["labels"]), key=lambda p: p[1])
    )
    cols = (
        ("set", "Units", "s"), ("id", "Id", "n"), ("ms", "MS", "n"), ("fms", "FMS", "n"),
        ("fr", "Firing rate", "n"), ("label", "Best label", "s"), ("corr", "Best corr", "n"),
        ("ent", "Label entropy", "n"), ("card", "Card", "s"),
    )
    head = "".join(
        f"<th data-col='{c}' class='{kind}' tabindex=0 aria-sort=none>{esc(name)}</th>" for c, name, kind in cols
    )
    return (
        f"<div class=ftable data-track='{t}'>"
        "<div class=controls>"
        f"<label>Search id <input type=search class=f-search placeholder='e.g. 17 or topk:17' "
        f"aria-label='search a feature id'></label>"
        f"<label>Units <select class=f-set><option value=''>all</option>{set_opts}</select></label>"
        f"<label>Best label <select class=f-label><option value=''>all</option>{label_opts}</select></label>"
        "<label>MS ≥ <input type=number class=f-ms-min step=0.05></label>"
        "<label>MS ≤ <input type=number class=f-ms-max step=0.05></label>"
        "<label>FMS ≥ <input type=number class=f-fms-min step=0.05></label>"
        "<label>Firing ≥ <input type=number class=f-fr-min step=0.001 min=0></label>"
        "<label>Firing ≤ <input type=number class=f-fr-max step=0.001 min=0></label>"
        "<label class=chk><input type=checkbox class=f-card> with card</label>"
        "<button type=button class=f-reset>Reset</button></div>"
        f"<div class=scroll><table class=features><thead><tr>{head}</tr></thead><tbody></tbody></table></div>"
        "<div class=pager><button type=button class=f-prev>‹ Prev</button><span class=f-status></span>"
        "<button type=button class=f-next>Next ›</button></div>"
        "<noscript><p class=note>The features table needs JavaScript.</p></noscript>"
        f"<script type='application/json' class=f-data>{script_json(payload)}</script></div>"
    )


# ------------------------------------------------------------------------------------------------- cards


class ImageClasses:
    """Each distinct thumbnail once, as a CSS class: cards repeat the same inputs many times."""

    def __init__(self) -> None:
        self._by_uri: dict[str, str] = {}
        self._rules: list[str] = []

    def __call__(self, uri: Any) -> str | None:
        if not isinstance(uri, str) or not _DATA_URI.fullmatch(uri):
            return None
        name = self._by_uri.get(uri)
        if name is None:
            name = f"im{len(self._by_uri)}"
            self._by_uri[uri] = name
            pix = " image-rendering:pixelated;" if _png_width(uri) < _PIXELATED_BELOW else ""
            self._rules.append(f'.{name}{{background-image:url("{uri}");{pix}}}')
        return name

    def css(self) -> str:
        return "\n".join(self._rules)


def _png_width(uri: str) -> int:
    if not uri.startswith("data:image/png;base64,"):
        return 10**6
    try:
        head = base64.b64decode(uri[22:54])
        return struct.unpack(">I", head[16:20])[0] if head[12:16] == b"IHDR" else 10**6
    except (ValueError, struct.error):
        return 10**6


def card_id(t: int, s: int, unit: Any) -> str:
    return f"c{t}-{s}-{re.sub(r'[^A-Za-z0-9_-]', '_', str(unit))}"


def cards_block(track: dict[str, Any], t: int, images: ImageClasses) -> str:
    sets = [str(s["id"]) for s in track["unit_sets"]]
    colors = set_colors(track)
    cards = track.get("cards") or []
    if not cards:
        return "<p class=note>This run selected no units for cards.</p>"
    present = [s for s in sets if any(str(c["set"]) == s for c in cards)]
    chips = "<button type=button class='chip on' data-set=''>all</button>" + "".join(
        f"<button type=button class=chip data-set='{sets.index(s)}'>"
        f"<span class=swatch style='background:{colors[s]}'></span>{esc(s)}</button>"
        for s in present
    )
    body = "".join(_card(c, t, sets, colors, track, images) for c in cards)
    kind = "cards text" if track["modality"] == "text" else "cards"
    return f"<div class=chips data-track='{t}'>{chips}</div><div class='{kind}' data-track='{t}'>{body}</div>"


def _card(card: dict[str, Any], t: int, sets: list[str], colors: dict[str, str], track: dict[str, Any],
          images: ImageClasses) -> str:
    s = sets.index(str(card["set"]))
    stats = (
        f"<span><b>MS</b> {fmt(card.get('ms'))}</span><span><b>FMS</b> {fmt(card.get('fms'))}</span>"
        f"<span><b>firing</b> {fmt(card.get('firing_rate'), 2, pct=True)}</span>"
        + (f"<span><b>label</b> {esc(card['best_label'])}</span>" if card.get("best_label") is not None else "")
    )
    if track["modality"] == "image":
        examples = (
            f"<div class=ex-title>Top {len(card.get('top') or [])} activating</div>"
            f"{_thumbs(card.get('top'), 'top', images)}"
            f"<div class=ex-title>{len(card.get('weak') or [])} weakest firing</div>"
            f"{_thumbs(card.get('weak'), 'weak', images)}"
        )
    else:
        weak = card.get("weak") or []
        examples = (
            f"<div class=ex-title>Top {len(card.get('top') or [])} snippets</div>{_snippets(card.get('top'))}"
            + (f"<details><summary>{len(weak)} weakest firing</summary>{_snippets(weak)}</details>" if weak else "")
        )
    return (
        f"<article class=card id='{card_id(t, s, card['id'])}' data-set='{s}'>"
        f"<header><span class=swatch style='background:{colors[sets[s]]}'></span>"
        f"<span class=c-set>{esc(sets[s])}</span><span class=c-id>#{esc(card['id'])}</span>"
        f"<a class=c-back href='#t{t}-features' data-find='{esc(card['id'])}' data-set='{s}'>in table</a></header>"
        f"<div class=stats>{stats}</div>{examples}{_label_hist(card.get('label_hist'))}</article>"
    )


def _thumbs(examples: Any, kind: str, images: ImageClasses) -> str:
    cells = []
    for ex in examples or []:
        cls = images(ex.get("image"))
        tip = f"item {ex.get('item')} · activation {fmt(ex.get('value'), 3)}"
        if ex.get("label") is not None:
            tip += f" · label {ex['label']}"
        if cls is None:
            cells.append(f"<i class='th missing' role=img title='{esc(tip)} (no image)'></i>")
        else:
            cells.append(f"<i class='th {cls}' role=img aria-label='{esc(tip)}' title='{esc(tip)}'></i>")
    if not cells:
        return "<p class=note>none</p>"
    return f"<div class='thumbs {kind}'>{''.join(cells)}</div>"


def _snippets(examples: Any) -> str:
    out = []
    for ex in examples or []:
        tokens = ex.get("tokens") or []
        weights = ex.get("weights") or []
        acts = ex.get("acts") or []
        spans = []
        for i, tok in enumerate(tokens):
            w = min(1.0, max(0.0, num(weights[i]) or 0.0)) if i < len(weights) else 0.0
            a = num(acts[i]) if i < len(acts) else None
            tip = f"weight {w:.2f}" + ("" if a is None else f" · activation {a:.3f}")
            text = esc(tok).replace("\n", "⏎").replace("\t", "⇥")
            style = f" style='background:rgba(234,106,18,{w:.2f})'" if w > 0.005 else ""
            spans.append(f"<span class=tok{style} title='{tip}'>{text}</span>")
        label = f"<span class=s-label>{esc(ex['label'])}</span>" if ex.get("label") is not None else ""
        out.append(
            f"<div class=snip><span class=s-val title='item {esc(ex.get('item'))}'>{fmt(ex.get('value'))}</span>"
            f"<span class=s-text>{''.join(spans)}</span>{label}</div>"
        )
    return f"<div class=snips>{''.join(out)}</div>" if out else "<p class=note>none</p>"


def _label_hist(hist: Any, top: int = 8) -> str:
    if not isinstance(hist, dict) or not hist:
        return ""
    pairs = sorted(((str(k), num(v) or 0.0) for k, v in hist.items()), key=lambda kv: -kv[1])
    total = sum(v for _, v in pairs) or 1.0
    peak = pairs[0][1] or 1.0
    rest = len(pairs) - top
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td><span class=hbar style='width:{100 * v / peak:.1f}%'></span></td>"
        f"<td class=n>{v:g}</td><td class='n dim'>{100 * v / total:.0f}%</td></tr>"
        for k, v in pairs[:top]
    )
    more = f"<tr><td colspan=4 class=dim>+{rest} more labels</td></tr>" if rest > 0 else ""
    return f"<div class=ex-title>Labels of the top examples</div><table class=hist>{rows}{more}</table>"

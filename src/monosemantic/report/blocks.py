"""HTML for the parts of a track: the headline tiles, the summary table and the features table.

Every string that comes from the data (set ids, labels, item texts, tokens) goes through ``esc``, and JSON for the
page's script through ``script_json``, so a hostile report file cannot inject markup.
"""

from __future__ import annotations

import html
import json
from typing import Any

from monosemantic.report.data import num
from monosemantic.report.figures import fms_title, set_colors

# Units active on fewer items than this are hidden from the features table until the filter is changed.
MIN_ACTIVE_DEFAULT = 16


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
    top_shown = fmt(top)
    best = {key: _best(sets, key) for key in ("fms@1", "fms@5")}
    ranked = any(s.get("rank_norm") for s in sets)
    rank_head = (
        "<th class=n title='rank-normalised label correlation, mean over classes (MedSAE): 1 = best of these sets'>"
        "Rank ρ</th><th class=n title='rank-normalised entropy of the label correlations (lower entropy ranks "
        "higher): 1 = best of these sets'>Rank H</th>"
    ) if ranked else ""
    head = (
        "<tr><th>Units</th><th class=n>Width</th><th class=n>k</th><th class=n title='mean active units per input'>"
        "L0</th><th class=n title='fraction of variance unexplained (lower is better)'>FVU</th>"
        "<th class=n title='fraction of units that never fire'>Dead</th><th class=ms>MS mean ± std</th>"
        f"<th class=n>MS best</th><th class=n>MS worst</th><th class=n>{esc(fms_title(track, 'FMS@1'))}</th>"
        f"<th class=n>{esc(fms_title(track, 'FMS@5'))}</th>"
        f"<th class=n>Δ MS vs neurons</th>{rank_head}</tr>"
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
        is_top = mean is not None and fmt(mean) == top_shown
        mean_cell = (
            f"<td class=ms{' best' if is_top else ''}>{bar}<span class=v>{fmt(mean)}"
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
                f"<td class='n{' best' if best[key] is not None and fmt(fms.get(key)) == fmt(best[key]) else ''}'>"
                f"{fmt(fms.get(key))}</td>"
                for key in ("fms@1", "fms@5")
            )
            + f"<td class=n>{_delta(mean, base, is_base)}</td>"
            + ("".join(f"<td class=n>{fmt((s.get('rank_norm') or {}).get(key))}</td>"
                       for key in ("corr_mean", "entropy_mean")) if ranked else "")
            + "</tr>"
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
        tile(fms_title(track), None if neurons is None else (neurons.get("fms") or {}).get("fms@1"),
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
        ("tokens", track.get("tokens")), ("pooling", track.get("pool")), ("MS encoder", track.get("encoder")),
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
    cols: dict[str, list[Any]] = {
        k: [] for k in ("set", "id", "ms", "fms", "fr", "active", "label", "corr", "ent", "card")
    }
    names: list[str | None] = []
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
        active = num(f.get("active_items"))
        cols["active"].append(None if active is None else int(active))
        cols["label"].append(li)
        cols["corr"].append(_round(f.get("best_corr")))
        cols["ent"].append(_round(f.get("entropy")))
        cols["card"].append(1 if (str(f["set"]), str(f["id"])) in card_keys else 0)
        names.append(f.get("name") or None)
    if all(v is None for v in cols["active"]):
        del cols["active"]  # older runs have no per-unit item counts: no empty column
    if any(names):  # automated names (`monosemantic name`): a column, and the search matches them
        cols["name"] = names
    return {"sets": sets, "colors": [set_colors(track)[s] for s in sets], "labels": labels, **cols}


def features_block(track: dict[str, Any], t: int, card_keys: set[tuple[str, str]]) -> str:
    """Controls and an empty table that report.js fills from the JSON beside it."""
    payload = features_payload(track, card_keys)
    set_opts = "".join(f"<option value='{i}'>{esc(s)}</option>" for i, s in enumerate(payload["sets"]))
    label_opts = "".join(
        f"<option value='{i}'>{esc(s)}</option>" for i, s in sorted(enumerate(payload["labels"]), key=lambda p: p[1])
    )
    cols = (
        ("set", "Units", "s"), ("id", "Id", "n"), ("name", "Name", "s"), ("ms", "MS", "n"),
        ("fms", fms_title(track, "FMS"), "n"),
        ("fr", "Firing rate", "n"), ("active", "Active items", "n"), ("label", "Best label", "s"),
        ("corr", "Best corr", "n"), ("ent", "Label entropy", "n"), ("card", "Card", "s"),
    )
    cols = tuple(c for c in cols if c[0] in payload)
    head = "".join(
        f"<th data-col='{c}' class='{kind}' tabindex=0 aria-sort=none>{esc(name)}</th>" for c, name, kind in cols
    )
    active_filter = (
        "<label title='units active on few inputs can score a trivially high MS (a latent firing on two "
        "near-duplicates scores 1.0), so the table starts with those active on at least 16'>Active items ≥ "
        f"<input type=number class=f-active-min step=1 min=0 value={MIN_ACTIVE_DEFAULT}></label>"
        if "active" in payload
        else ""
    )
    return (
        f"<div class=ftable data-track='{t}'>"
        "<div class=controls>"
        f"<label>Search id <input type=search class=f-search placeholder='e.g. 17 or topk:17"
        + (" or a name" if "name" in payload else "") + "' aria-label='search a feature id or name'></label>"
        f"<label>Units <select class=f-set><option value=''>all</option>{set_opts}</select></label>"
        f"<label>Best label <select class=f-label><option value=''>all</option>{label_opts}</select></label>"
        "<label>MS ≥ <input type=number class=f-ms-min step=0.05></label>"
        "<label>MS ≤ <input type=number class=f-ms-max step=0.05></label>"
        "<label>FMS ≥ <input type=number class=f-fms-min step=0.05></label>"
        "<label>Firing ≥ <input type=number class=f-fr-min step=0.001 min=0></label>"
        "<label>Firing ≤ <input type=number class=f-fr-max step=0.001 min=0></label>"
        f"{active_filter}<label class=chk><input type=checkbox class=f-card> with card</label>"
        "<button type=button class=f-reset>Reset</button></div>"
        f"<div class=scroll><table class=features><thead><tr>{head}</tr></thead><tbody></tbody></table></div>"
        "<div class=pager><button type=button class=f-prev>‹ Prev</button><span class=f-status></span>"
        "<button type=button class=f-next>Next ›</button></div>"
        "<noscript><p class=note>The features table needs JavaScript.</p></noscript>"
        f"<script type='application/json' class=f-data>{script_json(payload)}</script></div>"
    )

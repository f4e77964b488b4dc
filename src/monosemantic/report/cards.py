"""HTML of the feature cards: top and weakest examples (image grids or highlighted text), stats, label histogram.

Images are accepted only as base64 ``data:image/...`` URIs, so a hostile report file cannot make the page fetch
anything; all text goes through ``esc``.
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

from monosemantic.report.blocks import esc, fmt, fmt_count
from monosemantic.report.data import num
from monosemantic.report.figures import fms_title, set_colors
from monosemantic.report.sections.names import card_name

_DATA_URI = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+")
_SNIPPETS_SHOWN = 8  # the rest of a text card's top snippets fold away, so cards stay scannable
_PIXELATED_BELOW = 48  # thumbnails smaller than this are upscaled with hard pixel edges (MNIST-like images)

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
        f"<span><b>MS</b> {fmt(card.get('ms'))}</span>"
        f"<span><b>{esc(fms_title(track, 'FMS'))}</b> {fmt(card.get('fms'))}</span>"
        f"<span><b>firing</b> {fmt(card.get('firing_rate'), 2, pct=True)}</span>"
        + (f"<span><b>active on</b> {fmt_count(card['active_items'])} items</span>"
           if num(card.get("active_items")) is not None else "")
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
        top, weak = card.get("top") or [], card.get("weak") or []
        shown, more = top[:_SNIPPETS_SHOWN], top[_SNIPPETS_SHOWN:]
        examples = (
            f"<div class=ex-title>Top {len(top)} snippets</div>{_snippets(shown)}"
            + (f"<details><summary>{len(more)} more top snippets</summary>{_snippets(more)}</details>" if more else "")
            + (f"<details><summary>{len(weak)} weakest firing</summary>{_snippets(weak)}</details>" if weak else "")
        )
    return (
        f"<article class=card id='{card_id(t, s, card['id'])}' data-set='{s}'>"
        f"<header><span class=swatch style='background:{colors[sets[s]]}'></span>"
        f"<span class=c-set>{esc(sets[s])}</span><span class=c-id>#{esc(card['id'])}</span>"
        f"<a class=c-back href='#t{t}-features' data-find='{esc(card['id'])}' data-set='{s}'>in table</a></header>"
        f"{card_name(card)}<div class=stats>{stats}</div>{examples}{_label_hist(card.get('label_hist'))}</article>"
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
            tok = str(tok).replace("\n", "⏎").replace("\t", "⇥")
            # The space a BPE token carries stays outside the highlight, so words, not gaps, light up.
            word = tok.lstrip(" ")
            style = f" style='background:rgba(234,106,18,{w:.2f})'" if w > 0.005 else ""
            spans.append(f"{' ' * (len(tok) - len(word))}<span class=tok{style} title='{tip}'>{esc(word)}</span>")
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
        f"<tr><th>{esc(k)}</th><td class=barcell><span class=hbar style='width:{100 * v / peak:.1f}%'></span></td>"
        f"<td class=n>{v:g}</td><td class='n dim'>{100 * v / total:.0f}%</td></tr>"
        for k, v in pairs[:top]
    )
    more = f"<tr><td colspan=4 class=dim>+{rest} more labels</td></tr>" if rest > 0 else ""
    return f"<div class=ex-title>Labels of the top examples</div><table class=hist>{rows}{more}</table>"

"""The feature cards, as template contexts: top and weakest examples (image grids or highlighted text), stats, the
label histogram and the automated name. The markup is in ``templates/cards.html.j2``.

Images are accepted only as base64 ``data:image/...`` URIs, so a hostile report file cannot make the page fetch
anything; all text is escaped by the templates.
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

from markupsafe import Markup

from monosemantic.report.figures import fms_title
from monosemantic.report.numbers import fmt, fmt_count, num
from monosemantic.report.style import set_colors
from monosemantic.report.templating import Context
from monosemantic.results import JSONDict

_DATA_URI = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+")
_SNIPPETS_SHOWN = 8  # the rest of a text card's top snippets fold away, so cards stay scannable
_PIXELATED_BELOW = 48  # thumbnails smaller than this are upscaled with hard pixel edges (MNIST-like images)
_LABELS_SHOWN = 8


class ImageClasses:
    """Each distinct thumbnail once, as a CSS class: cards repeat the same inputs many times."""

    def __init__(self) -> None:
        self._by_uri: dict[str, str] = {}
        self._rules: list[str] = []

    def __call__(self, uri: Any) -> str | None:
        """The class that shows ``uri``, or None when it is not an inline image."""
        if not isinstance(uri, str) or not _DATA_URI.fullmatch(uri):
            return None
        name = self._by_uri.get(uri)
        if name is None:
            name = f"im{len(self._by_uri)}"
            self._by_uri[uri] = name
            pix = " image-rendering:pixelated;" if _png_width(uri) < _PIXELATED_BELOW else ""
            self._rules.append(f'.{name}{{background-image:url("{uri}");{pix}}}')
        return name

    def css(self) -> Markup:
        """The style rules of every class handed out (the URIs matched ``_DATA_URI``: nothing to escape)."""
        return Markup("\n".join(self._rules))


def _png_width(uri: str) -> int:
    if not uri.startswith("data:image/png;base64,"):
        return 10**6
    try:
        head = base64.b64decode(uri[22:54])
        return struct.unpack(">I", head[16:20])[0] if head[12:16] == b"IHDR" else 10**6
    except (ValueError, struct.error):
        return 10**6


def card_id(t: int, s: int, unit: Any) -> str:
    """The element id of the card of unit ``unit`` of set ``s`` in track ``t`` (the features table links to it)."""
    return f"c{t}-{s}-{re.sub(r'[^A-Za-z0-9_-]', '_', str(unit))}"


def cards_context(track: JSONDict, t: int, images: ImageClasses) -> Context:
    """Every card of a track, with the chips that filter them by unit set."""
    sets = [str(s["id"]) for s in track["unit_sets"]]
    colors = set_colors(track)
    cards = track.get("cards") or []
    present = [s for s in sets if any(str(c["set"]) == s for c in cards)]
    return {
        "t": t, "text": track["modality"] == "text",
        "chips": [{"index": sets.index(s), "id": s, "color": colors[s]} for s in present],
        "cards": [_card(c, t, sets, colors, track, images) for c in cards],
    }


def _card(card: JSONDict, t: int, sets: list[str], colors: dict[str, str], track: JSONDict,
          images: ImageClasses) -> Context:
    s = sets.index(str(card["set"]))
    out: Context = {
        "id": card_id(t, s, card["id"]), "unit": card["id"], "s": s, "set": sets[s], "color": colors[sets[s]],
        "t": t, "ms": fmt(card.get("ms")), "fms_title": fms_title(track, "FMS"), "fms": fmt(card.get("fms")),
        "firing": fmt(card.get("firing_rate"), 2, pct=True),
        "active": fmt_count(card["active_items"]) if num(card.get("active_items")) is not None else None,
        "label": card.get("best_label"), "name": card_name(card), "image": track["modality"] == "image",
        "labels": label_hist(card.get("label_hist")),
    }
    top, weak = card.get("top") or [], card.get("weak") or []
    if out["image"]:
        out |= {"top": thumbs(top, images), "weak": thumbs(weak, images)}
    else:
        out |= {"top": snippets(top[:_SNIPPETS_SHOWN]), "more": snippets(top[_SNIPPETS_SHOWN:]),
                "weak": snippets(weak), "n_top": len(top)}
    return out


def card_name(card: JSONDict) -> Context | None:
    """The automated name of a card (``monosemantic name``) with its judges' F1, or None when it has none."""
    if not card.get("name"):
        return None
    scores = " · ".join(f"F1 ({j}) {fmt(v)}" for j, v in (card.get("name_f1") or {}).items())
    return {"name": card["name"], "description": card.get("description"), "scores": scores}


def thumbs(examples: Any, images: ImageClasses) -> list[Context]:
    """One thumbnail per example: its CSS class (None when its image is missing or not inline) and its tooltip."""
    cells = []
    for ex in examples or []:
        tip = f"item {ex.get('item')} · activation {fmt(ex.get('value'), 3)}"
        if ex.get("label") is not None:
            tip += f" · label {ex['label']}"
        cells.append({"cls": images(ex.get("image")), "tip": tip})
    return cells


def snippets(examples: Any) -> list[Context]:
    """One highlighted text per example: its tokens with their weight (0..1) as the highlight's opacity."""
    out = []
    for ex in examples or []:
        tokens = ex.get("tokens") or []
        weights = ex.get("weights") or []
        acts = ex.get("acts") or []
        spans = []
        for i, tok in enumerate(tokens):
            w = min(1.0, max(0.0, num(weights[i]) or 0.0)) if i < len(weights) else 0.0
            a = num(acts[i]) if i < len(acts) else None
            tok = str(tok).replace("\n", "⏎").replace("\t", "⇥")
            # The space a BPE token carries stays outside the highlight, so words, not gaps, light up.
            word = tok.lstrip(" ")
            spans.append({"lead": " " * (len(tok) - len(word)), "word": word,
                          "alpha": f"{w:.2f}" if w > 0.005 else None,
                          "tip": f"weight {w:.2f}" + ("" if a is None else f" · activation {a:.3f}")})
        out.append({"item": ex.get("item"), "value": fmt(ex.get("value")), "tokens": spans, "label": ex.get("label")})
    return out


def label_hist(hist: Any) -> Context | None:
    """The most common labels among a card's top examples (count, share of the top, bar against the most common)."""
    if not isinstance(hist, dict) or not hist:
        return None
    pairs = sorted(((str(k), num(v) or 0.0) for k, v in hist.items()), key=lambda kv: -kv[1])
    total = sum(v for _, v in pairs) or 1.0
    peak = pairs[0][1] or 1.0
    rows = [{"label": k, "bar": f"{100 * v / peak:.1f}", "count": f"{v:g}", "share": f"{100 * v / total:.0f}"}
            for k, v in pairs[:_LABELS_SHOWN]]
    return {"rows": rows, "rest": len(pairs) - _LABELS_SHOWN}

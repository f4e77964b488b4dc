"""The report section of a `monosemantic compare` result: layer-pair heatmaps, kept pairs, correlation histograms,
the semantic-subspace table and example pairs side by side (Lan et al., arXiv 2410.06981).

``compare_section(result)`` is HTML for the main report (shown when the run folder holds a compare result);
``write_compare_page(folder, result)`` writes the same section as a page of its own, ``compare.html``, beside
compare.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monosemantic.report.blocks import esc
from monosemantic.report.result_pages import write_page
from monosemantic.results import JSONDict, ResultKind

KIND = ResultKind(name="compare", file="compare.json", format="monosemantic-compare",
                  title="Comparing feature spaces", page="compare.html")

SCORES = (("svcca:variance_99", "SVCCA"), ("svcca:reference_k1", "SVCCA k=1 (reference)"), ("rsa", "RSA"))


def find_compare(run_dir: Path) -> JSONDict | None:
    """A compare result inside a run folder (``compare.json`` or ``compare/compare.json``), if any."""
    return KIND.find(run_dir)


def _num(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _p(v: Any) -> str:
    return "–" if v is None else (f"{v:.3f}" if v >= 0.001 else f"{v:.1e}")


def _colour(v: Any) -> str:
    if v is None:
        return "#eee"
    t = max(0.0, min(1.0, float(v)))
    return f"hsl(210, 70%, {int(96 - 50 * t)}%)"


def _heatmap(cells: list[dict[str, Any]], key: str, label: str) -> str:
    rows = list(dict.fromkeys(c["a"] for c in cells))
    cols = list(dict.fromkeys(c["b"] for c in cells))
    at = {(c["a"], c["b"]): c for c in cells}
    head = "".join(f"<th>{esc(b)}</th>" for b in cols)
    body = ""
    for a in rows:
        tds = ""
        for b in cols:
            c = at.get((a, b))
            s = c.get("scores", {}).get(key) if c else None
            if c is None or not s:
                note = esc(c.get("note", "")) if c else ""
                tds += f"<td title='{note}' style='background:#eee'>–</td>"
                continue
            tds += (f"<td style='background:{_colour(s['score'])}' title='null mean {_num(s['null_mean'])}, "
                    f"p {_p(s['p'])}, random subset {_num(s.get('random_subset_mean'))}'>"
                    f"<b>{_num(s['score'], 2)}</b><br><small>null {_num(s['null_mean'], 2)} · p {_p(s['p'])}"
                    f"<br>{c['counts']['kept']:,} pairs</small></td>")
        body += f"<tr><th>{esc(a)}</th>{tds}</tr>"
    return (f"<figure class=plot><figcaption><b>{esc(label)}</b> rows: A, columns: B; each cell: score of the "
            f"paired decoder vectors, mean of the shuffled-pairing null, permutation p and kept pairs</figcaption>"
            f"<table class=summary><tr><th>A \\ B</th>{head}</tr>{body}</table></figure>")


def _histogram(cell: dict[str, Any]) -> str:
    """An inline SVG bar chart of the paired correlations (all pairs light, kept pairs dark)."""
    allc, kept = cell["corr_hist"]["counts"], cell["corr_hist_kept"]["counts"]
    top = max(max(allc, default=0), 1)
    w, h, n = 240, 60, len(allc)
    bars = "".join(
        f"<rect x='{i * w / n:.1f}' y='{h - h * a / top:.1f}' width='{w / n - 1:.1f}' height='{h * a / top:.1f}' "
        f"fill='#bcd'/><rect x='{i * w / n:.1f}' y='{h - h * k / top:.1f}' width='{w / n - 1:.1f}' "
        f"height='{h * k / top:.1f}' fill='#247'/>" for i, (a, k) in enumerate(zip(allc, kept, strict=True)))
    return (f"<svg width={w} height={h + 12} role=img aria-label='correlation histogram'>{bars}"
            f"<text x=0 y={h + 11} font-size=9>-1</text><text x={w / 2 - 3} y={h + 11} font-size=9>0</text>"
            f"<text x={w - 8} y={h + 11} font-size=9>1</text></svg>")


def _counts_table(cells: list[dict[str, Any]]) -> str:
    rows = ""
    for c in cells:
        k = c["counts"]
        rows += (f"<tr><td>{esc(c['a'])}</td><td>{esc(c['b'])}</td><td>{esc(c['kind'])}</td>"
                 f"<td>{k['paired']:,}</td><td>{k.get('after_junk', '–')}</td>"
                 f"<td>{k.get('after_shared_tokens', '–')}</td><td>{k['kept']:,}</td>"
                 f"<td>{_num(c['mean_corr_before'])}</td><td>{_num(c['mean_corr_after'])}</td>"
                 f"<td>{_histogram(c)}</td><td>{esc(c.get('note') or c.get('warning', ''))}</td></tr>")
    return ("<table class=summary><tr><th>A</th><th>B</th><th>units</th><th>paired</th><th>no junk</th>"
            "<th>shared top token</th><th>kept</th><th>mean corr (all)</th><th>mean corr (kept)</th>"
            f"<th>correlations (light: all, dark: kept)</th><th>note</th></tr>{rows}</table>")


def _subspace_table(cells: list[dict[str, Any]]) -> str:
    rows = ""
    for c in cells:
        for s in c.get("subspaces") or []:
            def score(key: str, s: dict[str, Any] = s) -> str:
                v = s.get(key)
                return (f"<td>{_num(v['score'])}</td><td>{_num(v['null_mean'])}</td><td>{_p(v['p'])}</td>"
                        f"<td>{_num(v.get('random_subset_mean'))}</td>") if v else "<td>–</td>" * 4
            rows += (f"<tr><td>{esc(c['a'])}</td><td>{esc(c['b'])}</td><td>{esc(s['concept'])}</td>"
                     f"<td>{s['members_a']}</td><td>{s['members_b']}</td><td>{s['pairs']}</td>"
                     f"{score('svcca')}{score('svcca_k1')}{score('rsa')}<td>{esc(s.get('note', ''))}</td></tr>")
    if not rows:
        return "<p class=note>No semantic-subspace scores (no SAE × SAE cell with enough pairs).</p>"
    return ("<table class=summary><tr><th>A</th><th>B</th><th>concept</th><th>A members</th><th>B members</th>"
            "<th>pairs</th><th>SVCCA</th><th>null</th><th>p</th><th>random</th><th>SVCCA k=1</th><th>null</th>"
            "<th>p</th><th>random</th><th>RSA</th><th>null</th><th>p</th><th>random</th><th>note</th>"
            f"</tr>{rows}</table>")


def _decoder_table(cells: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{esc(c['a'])}</td><td>{esc(c['b'])}</td><td>{c['decoder_match']['matched']:,}</td>"
        f"<td>{_num(c['decoder_match']['mean_abs_cos'])}</td><td>{_num(c['decoder_match']['random_mean'])}</td></tr>"
        for c in cells if c.get("decoder_match"))
    if not rows:
        return "<p class=note>No decoder matching (it needs two SAEs writing into one space).</p>"
    return ("<p class=legend-note>Every B decoder vector matched one-to-one to an A decoder vector (Hungarian, by "
            "|cos|), without activations; chance is the same matching against as many random directions.</p>"
            "<table class=summary><tr><th>A</th><th>B</th><th>matched</th><th>mean |cos|</th><th>chance</th></tr>"
            f"{rows}</table>")


def _examples(cells: list[dict[str, Any]]) -> str:
    out = ""
    for c in cells:
        if c["kind"] != "sae" or not c.get("examples"):
            continue
        rows = "".join(
            f"<tr><td>{e['a']}</td><td>{'<br>'.join(esc(t) for t in e['a_top'])}</td><td>{e['b']}</td>"
            f"<td>{'<br>'.join(esc(t) for t in e['b_top'])}</td><td>{_num(e['corr'])}</td></tr>"
            for e in c["examples"])
        out += (f"<h4>{esc(c['a'])} ↔ {esc(c['b'])}</h4><table class=summary><tr><th>A feature</th>"
                f"<th>A top snippets</th><th>B feature</th><th>B top snippets</th><th>corr</th></tr>{rows}</table>")
    return out or "<p class=note>No kept SAE pairs to show.</p>"


def compare_section(result: dict[str, Any]) -> str:
    """The whole section (``<section id=compare>``)."""
    cells = result["cells"]
    sae_cells = [c for c in cells if c["kind"] == "sae"]
    a, b = result["a"], result["b"]
    intro = (f"<p class=facts>A: <b>{esc(a.get('model'))}</b> ({esc(a['store'])}) · B: <b>{esc(b.get('model'))}</b> "
             f"({esc(b['store'])}) · aligned by {esc(result['unit'])}"
             f"{' (' + esc(result['pool']) + ' over tokens)' if result.get('pool') else ''} · "
             f"{result['n_units']:,} units over {result['n_items']:,} items · pairing "
             f"{esc(result['settings'].get('pairing'))}, correlation &gt; {result['settings'].get('min_corr')}</p>")
    maps = "".join(_heatmap(sae_cells, key, label) for key, label in SCORES) if sae_cells else ""
    return (f"<section class=track id=compare><h2>Comparing feature spaces</h2>{intro}"
            "<p class=legend-note>Each B feature is paired with the A feature whose activations correlate best with "
            "it on the same text; pairs are filtered, and the paired decoder vectors are compared with SVCCA and "
            "RSA. The null shuffles the pairing; p = (#null ≥ observed + 1)/(shuffles + 1). Raw neurons are paired "
            "the same way as a baseline.</p>"
            f"<h3>Layer-pair heatmaps</h3><div class=plots>{maps}</div>"
            f"<h3>Kept pairs and correlations</h3>{_counts_table(cells)}"
            f"<h3>Decoder matching</h3>{_decoder_table(sae_cells)}"
            f"<h3>Semantic subspaces</h3>{_subspace_table(sae_cells)}"
            f"<h3>Example pairs</h3>{_examples(sae_cells)}</section>")


def write_compare_page(folder: Path | str, result: JSONDict) -> Path:
    """``FOLDER/compare.html``: the section on a page of its own (CSS inline, works offline)."""
    return write_page(folder, str(KIND.page), "monosemantic compare", compare_section(result))

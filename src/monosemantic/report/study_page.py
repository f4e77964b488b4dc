"""The blind pairwise study page: one self-contained HTML file that shows pairs of unit cards (top inputs only, no
scores, sides shuffled), records which one the participant finds more coherent, and downloads the answers as the
pairs.csv that `monosemantic study agree` reads. Answers survive a reload (localStorage)."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from monosemantic.report.blocks import esc, script_json
from monosemantic.report.cards import ImageClasses, _snippets, _thumbs

_CSS = """
body { max-width: 1100px; margin: 0 auto; padding: 24px; }
.pair { border: 1px solid var(--line, #ddd); border-radius: 8px; padding: 14px; margin: 18px 0; }
.pair.done { border-color: #3a8a3a; }
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.side { border-radius: 6px; padding: 8px; }
.side.picked { outline: 3px solid #3a8a3a; }
.choices { display: flex; gap: 8px; margin-top: 10px; }
.choices button { padding: 6px 14px; cursor: pointer; }
#bar { position: sticky; top: 0; background: #fff; padding: 10px 0; display: flex; gap: 14px; align-items: center;
       border-bottom: 1px solid #ddd; z-index: 2; }
#csv { width: 100%; height: 90px; font: 12px monospace; }
"""

_JS = """
(function () {
  const pairs = JSON.parse(document.getElementById('pairs').textContent);
  const study = document.body.dataset.study;
  const key = 'monosemantic-study-' + study;
  let answers = new Array(pairs.length).fill(null);
  try { const saved = JSON.parse(localStorage.getItem(key) || 'null');
        if (Array.isArray(saved) && saved.length === pairs.length) answers = saved; } catch (e) { /* private mode */ }
  const quote = (s) => /[",\\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  function csv() {
    const lines = ['unit_x,unit_y,R_user'];
    pairs.forEach((p, i) => { if (answers[i] !== null) lines.push([quote(p.x), quote(p.y), answers[i]].join(',')); });
    return lines.join('\\n') + '\\n';
  }
  function render() {
    let done = 0;
    pairs.forEach((p, i) => {
      const el = document.getElementById('p' + i);
      const r = answers[i];
      if (r !== null) done += 1;
      el.classList.toggle('done', r !== null);
      const xLeft = !p.swap;
      el.querySelector('.side.left').classList.toggle('picked', r !== null && r !== 0 && (r > 0) === xLeft);
      el.querySelector('.side.right').classList.toggle('picked', r !== null && r !== 0 && (r > 0) !== xLeft);
    });
    document.getElementById('progress').textContent = done + ' of ' + pairs.length + ' answered';
    document.getElementById('csv').textContent = csv();  // a readonly textarea: its text is its value
    document.body.dataset.answered = String(done);
    try { localStorage.setItem(key, JSON.stringify(answers)); } catch (e) { /* private mode */ }
  }
  function choose(i, side) {
    const xLeft = !pairs[i].swap;
    answers[i] = side === 'tie' ? 0 : ((side === 'left') === xLeft ? 1 : -1);
    render();
  }
  document.querySelectorAll('.choices button').forEach((b) => b.addEventListener('click', () =>
    choose(Number(b.dataset.pair), b.dataset.side)));
  document.getElementById('download').addEventListener('click', () => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([csv()], {type: 'text/csv'}));
    a.download = 'pairs.csv';
    document.body.appendChild(a); a.click(); a.remove();
  });
  // #answers=LRT...: one letter per pair (left, right, tie), for scripted runs of the page
  const m = location.hash.match(/answers=([LRT]+)/);
  if (m) [...m[1]].forEach((c, i) => { if (i < pairs.length) choose(i, {L: 'left', R: 'right', T: 'tie'}[c]); });
  render();
  document.body.dataset.ready = '1';
})();
"""


def _examples(card: dict[str, Any], modality: str, images: ImageClasses) -> str:
    if modality == "image":
        return _thumbs(card.get("top"), "top", images)
    return _snippets(card.get("top"))


def study_html(pairs: list[dict[str, Any]], *, modality: str, title: str) -> str:
    """``pairs``: ``{"x", "y", "swap", "cards": [card_x, card_y]}`` (cards as the report builds them); with
    ``swap`` the x unit is shown on the right."""
    images = ImageClasses()
    blocks = []
    for i, p in enumerate(pairs):
        left, right = (p["cards"][1], p["cards"][0]) if p["swap"] else (p["cards"][0], p["cards"][1])
        blocks.append(
            f"<section class=pair id=p{i}><h3>Pair {i + 1}</h3><div class=sides>"
            f"<div class='side left'><b>Left</b>{_examples(left, modality, images)}</div>"
            f"<div class='side right'><b>Right</b>{_examples(right, modality, images)}</div></div>"
            f"<div class=choices><button type=button data-pair={i} data-side=left>Left is more coherent</button>"
            f"<button type=button data-pair={i} data-side=right>Right is more coherent</button>"
            f"<button type=button data-pair={i} data-side=tie>Can't tell</button></div></section>")
    meta = [{"x": p["x"], "y": p["y"], "swap": p["swap"]} for p in pairs]
    study = hashlib.sha256(script_json(meta).encode()).hexdigest()[:12]
    css = resources.files("monosemantic.report").joinpath("report.css").read_text(encoding="utf-8")
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>"
        f"<style>{css}{_CSS}{images.css()}</style></head><body data-study='{study}'>"
        f"<h1>{esc(title)}</h1><p>Each pair shows the inputs that drive two units of a network most strongly. Pick the "
        "unit whose inputs share one clear concept. Your answers stay in this browser until you download them; send "
        "the downloaded <code>pairs.csv</code> back.</p>"
        "<div id=bar><span id=progress></span><button type=button id=download>Download answers (CSV)</button></div>"
        f"{''.join(blocks)}<h3>Answers so far</h3><textarea id=csv readonly></textarea>"
        f"<script type=application/json id=pairs>{script_json(meta)}</script><script>{_JS}</script></body></html>"
    )

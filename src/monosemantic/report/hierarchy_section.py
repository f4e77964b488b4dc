"""The Matryoshka hierarchy table of a track: per nested group, how deep in the label hierarchy its latents are."""

from __future__ import annotations

from typing import Any

from monosemantic.report.blocks import esc, fmt


def hierarchy_block(track: dict[str, Any], t: int) -> str:
    """Empty when no unit set of the track was scored with ``--hierarchy``."""
    sets = [s for s in track["unit_sets"] if s.get("hierarchy")]
    if not sets:
        return ""
    out = []
    for s in sets:
        h = s["hierarchy"]
        groups = "".join(
            f"<tr><td class=n>{g['group']}</td><td class=n>{g['size']:,}</td><td class=n>{g['scored']:,}</td>"
            f"<td class=n>{fmt(g.get('mean_depth'))}</td><td class=n>{fmt(g.get('ms_mean'))}</td></tr>"
            for g in h["groups"])
        levels = "".join(
            f"<tr><td class=n>{lv['level']}</td><td>"
            + ", ".join(f"{esc(n['node'])} → group {n['group']} (#{n['latent']}, ρ {fmt(n['corr'])})"
                        for n in lv["nodes"])
            + f"</td><td class=n>{fmt(lv['mean_group'])}</td></tr>"
            for lv in h["levels"])
        out.append(
            f"<h4>{esc(s['id'])}</h4><div class=plots><table class=summary><tr><th>group</th><th>latents</th>"
            f"<th>scored</th><th>mean depth</th><th>MS mean</th></tr>{groups}</table>"
            f"<table class=summary><tr><th>level</th><th>best latent of each node</th><th>mean group</th></tr>"
            f"{levels}</table></div>")
    return (f"<h3 id='t{t}-hierarchy'>Matryoshka groups and the label hierarchy</h3>"
            "<p class=legend-note>A latent's depth is the mean, over all pairs of its 16 top items, of how deep their "
            "labels' common ancestor lies (0: different roots); latents firing on fewer than 16 items are not scored. "
            "Nested groups that follow the hierarchy hold shallow, general latents first. Per level, the latent that "
            "correlates best with each node and the group it lives in.</p>" + "".join(out))

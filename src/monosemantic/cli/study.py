"""`monosemantic study`: the user-study harness (a blind pairwise study page, score agreement, a simulated
participant)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from monosemantic.config import add_arguments, from_namespace
from monosemantic.experiments.study import AgreeConfig, StudyConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study", help="user-study harness: a blind pairwise study page, and how well scores agree with the answers",
        description="Check a score against people, as the MS paper (arXiv 2504.02821) does: `study page` writes a "
        "self-contained HTML page showing pairs of units (top inputs only, no scores) where a participant picks the "
        "more coherent one and downloads the answers as pairs.csv; `study agree` gives each score's agreement with "
        "such answers, overall and by |Δscore| bin of 0.1; `study simulate` answers with a participant who follows "
        "the dataset's labels, to check that the harness measures what it says.",
    )
    modes = p.add_subparsers(dest="mode", metavar="MODE", parser_class=type(p), required=True)
    page = modes.add_parser("page", help="write the study page (.html)")
    add_arguments(page, StudyConfig, skip=("noise",), flags={"sae": ("--sae",)})
    page.set_defaults(func=run_page)
    agree = modes.add_parser("agree", help="agreement of scores with a pairs.csv of answers")
    add_arguments(agree, AgreeConfig)
    agree.set_defaults(func=run_agree)
    sim = modes.add_parser("simulate", help="answers of a label-following participant, and the scores' agreement")
    add_arguments(sim, StudyConfig, skip=("sae",))
    sim.set_defaults(func=run_simulate)


def run_page(args: argparse.Namespace) -> int:
    from monosemantic.experiments.study import build_page

    cfg = from_namespace(StudyConfig, args)
    print(f"study page: {build_page(cfg)} ({cfg.pairs} pairs; open it in a browser)")
    return 0


def run_agree(args: argparse.Namespace) -> int:
    from monosemantic.experiments.study import agree

    _print(agree(from_namespace(AgreeConfig, args)))
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    from monosemantic.experiments.study import simulate

    cfg = from_namespace(StudyConfig, args)
    result = simulate(cfg)
    print(f"simulated participant ({result['participant']}), {result['pairs']} pairs -> {cfg.out}")
    _print(result["agreement"])
    return 0


def _print(table: dict[str, Any]) -> None:
    print(f"{'score':<12} {'agreement':>9} {'pairs':>6} {'ties':>5}  by |Δscore| bin (agreement, n)")
    for name, row in table.items():
        overall = "-" if math.isnan(row["overall"]) else f"{row['overall']:.3f}"
        bins = "  ".join(f"[{b['lo']:.1f},{b['hi']:.1f}) {b['agreement']:.2f} ({b['n']})" for b in row["bins"][:6])
        print(f"{name:<12} {overall:>9} {row['n']:>6} {row['ties']:>5}  {bins}")

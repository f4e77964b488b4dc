"""`monosemantic compare`: pair two models' SAE features on the same texts and compare their geometry."""

from __future__ import annotations

import argparse

from monosemantic.compare.run import CompareConfig
from monosemantic.config import add_arguments, from_namespace


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="pair SAE features across layers, seeds or models and compare their geometry",
        description="Pair every B feature with its best-correlated A feature over the same texts (token by token "
        "for one tokenizer, word by word across tokenizers), filter the pairs, and score the paired decoder "
        "vectors with SVCCA, RSA, CKA and Procrustes against permutation nulls and random subsets, for the whole "
        "space and for keyword concept subspaces (Lan et al., arXiv 2410.06981); SAEs writing into one space "
        "are also matched one-to-one by decoder |cos| (Hungarian). Several SAEs per side give a "
        "layer x layer grid; raw neurons are paired too, as a baseline. Writes compare.json, grid.csv, pairs.csv "
        "and compare.html.",
    )
    add_arguments(p, CompareConfig, skip=("extra",), flags={"a": ("--a",), "b": ("--b",)})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from monosemantic.compare.run import compare
    from monosemantic.report.render import write_result_page
    from monosemantic.report.sections.compare import KIND

    cfg = from_namespace(CompareConfig, args)
    result = compare(cfg)
    print(f"{result['n_units']:,} {result['unit']}s over {result['n_items']:,} items")
    print(f"{'A':<24} {'B':<24} {'kept':>7} {'corr':>6} {'SVCCA':>6} {'null':>5} {'p':>6} {'RSA':>6} {'null':>5} "
          f"{'p':>6} {'dec|cos|':>8}")
    for c in result["cells"]:
        s = c.get("scores")
        line = f"{c['a'][:24]:<24} {c['b'][:24]:<24} {c['counts']['kept']:>7,} {_f(c['mean_corr_after'])}"
        if s:
            for key in ("svcca:variance_99", "rsa"):
                line += f" {_f(s[key]['score'])} {_f(s[key]['null_mean'], 5)} {s[key]['p']:>6.3f}"
            line += f" {_f((c.get('decoder_match') or {}).get('mean_abs_cos'), 8)}"
        else:
            line += f"  ({c.get('note', '')})"
        print(line)
    page = write_result_page(cfg.out, KIND, json.loads((cfg.out / KIND.file).read_text()))
    print(json.dumps({"compare": str(cfg.out / "compare.json"), "html": str(page)}))
    return 0


def _f(v: float | None, width: int = 6) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.3f}"

"""`monosemantic name`: name SAE latents with a model, judge the names on held-out inputs, score P/R/F1."""

from __future__ import annotations

import argparse

from monosemantic.config import add_arguments, from_namespace
from monosemantic.naming.run import NameConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "name", help="name latents automatically and check the names with judges (P/R/F1 vs shuffled names)",
        description="Name the latents of a scored unit set from the inputs they fire on (strong and moderate "
        "activations), then let judges decide for held-out activating and silent inputs whether they match each "
        "name: precision, recall and F1 per latent and their means, the parse-failure rate, and the same scores "
        "for names shuffled across latents as a control. Writes names.json, names.csv and summary.json; "
        "`monosemantic report` shows the names on feature cards when a run folder holds them.",
    )
    add_arguments(p, NameConfig, flags={"scores": ("--scores",), "sets": ("--set",)})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from monosemantic.naming.run import name_latents

    cfg = from_namespace(NameConfig, args)
    result = name_latents(cfg)
    s = result["summary"]
    print(f"named {s['n_latents']} latents with {s['namer']}; parse failures {s['parse_failures']} "
          f"({100 * (s['parse_failure_rate'] or 0):.0f}%)")
    print(f"{'judge':<10} {'':<9} {'P':>6} {'R':>6} {'F1':>6} {'AUC':>6}")
    for judge, parts in s["judges"].items():
        for part in ("names", "parsed", "control"):  # control: the parsed latents, each judged with another's name
            m = parts["names_parsed" if part == "parsed" else part]
            if m["n"]:
                print(f"{judge:<10} {part:<9} " + " ".join(_f(m[k]) for k in ("precision", "recall", "f1", "auc")))
    print(json.dumps({"names": str(cfg.out / "names.json")}))
    return 0


def _f(v: float | None) -> str:
    return f"{'-':>6}" if v is None else f"{v:>6.3f}"

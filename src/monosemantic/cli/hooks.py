"""`monosemantic hooks MODEL`: list hook points with their widths."""

from __future__ import annotations

import argparse

from monosemantic.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hooks",
        help="list a model's hook points (module paths) with their output widths",
        description="Run one sample through MODEL and list every module on its forward path, in execution "
        "order, with the width a store would record and the raw output shape.",
    )
    p.add_argument(
        "model", nargs="?",
        help="registered name (minilm, smollm2, mobilenet_v2, efficientnet_lite0), Hugging Face id or local folder",
    )
    p.add_argument("--model", dest="model_option", metavar="MODEL", help="the same as MODEL, spelled as in extract")
    p.add_argument("--all", action="store_true", help="also list leaf modules (linear layers, norms, activations)")
    p.add_argument("--filter", default="", help="only paths containing this text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported here, so that `monosemantic --help` does not import torch
    from monosemantic.sources import load_model
    from monosemantic.sources.hooks import model_hooks

    name = _model_name(args.model, args.model_option)
    model = load_model(name)
    leaves = {n for n, m in model.module.named_modules() if not list(m.children())}
    shown = [i for i in model_hooks(model) if (args.all or i.path not in leaves) and args.filter in i.path]
    if not shown:
        where = "" if args.all else " (leaf modules are listed with --all)"
        raise UserError(f"no hook path of {name} contains {args.filter!r}{where}; try a shorter --filter")
    print(f"{model.name} ({model.modality}): hook path, width, output shape for one sample")
    for info in shown:
        print(f"  {info.path:<48} {info.width:>6}  {list(info.shape)}  {info.kind}")
    return 0


def _model_name(positional: str | None, option: str | None) -> str:
    """The model given as MODEL or as --model (the same one, if both)."""
    if positional and option and positional != option:
        raise UserError(f"two models given ({positional} and {option}); give one")
    name = positional or option
    if not name:
        raise UserError("no model given; run `monosemantic hooks MODEL`, e.g. `monosemantic hooks minilm`")
    return name

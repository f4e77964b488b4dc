"""Run folders and checkpoints.

While training, everything lives in ``<out>.partial/``: ``checkpoint.pt`` (written atomically), one
``<name>.train_log.jsonl`` per SAE and ``run.json``. Finished SAE folders appear at their final path only when
complete (temporary folder, then rename), and the ``.partial`` folder is removed afterwards.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from monosemantic.errors import UserError
from monosemantic.files import check_out

CHECKPOINT = "checkpoint.pt"


@dataclass
class RunPaths:
    out: Path
    partial: Path
    finals: dict[str, Path]

    @staticmethod
    def for_names(out: Path, names: list[str]) -> RunPaths:
        out = Path(out)
        finals = {names[0]: out} if len(names) == 1 else {n: out / n for n in names}
        return RunPaths(out, out.with_name(out.name + ".partial"), finals)

    @property
    def checkpoint(self) -> Path:
        return self.partial / CHECKPOINT

    def log(self, name: str) -> Path:
        return self.partial / f"{name}.train_log.jsonl"


def check_start(paths: RunPaths, *, resume: bool, overwrite: bool, acts: Path | None = None) -> None:
    """Refuse to clobber finished SAEs, anything that is not an SAE folder, the input store, or an interrupted
    run the user did not ask to resume."""
    inputs = [acts] if acts is not None else []
    if len(paths.finals) > 1:
        # a sweep writes <out>/<name>/ and leaves other things in <out> alone; <out> itself must be a folder
        check_out(paths.out, what="a folder", marker=None, overwrite=overwrite, inputs=inputs)
    for final in paths.finals.values():
        check_out(final, what="an SAE folder", marker="cfg.json", overwrite=overwrite, inputs=inputs)
    if resume and not paths.checkpoint.exists():
        raise UserError(f"nothing to resume: {paths.checkpoint} does not exist; drop --resume to start afresh")
    if not resume and paths.checkpoint.exists() and not overwrite:
        raise UserError(
            f"an interrupted run is in {paths.partial}; pass --resume to continue it or --overwrite to restart"
        )


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


@dataclass
class Checkpoint:
    """Everything a run needs to continue exactly where it stopped (saved as a plain dict of these fields)."""

    step: int
    scale: float
    """The input scale the run trains with."""
    d_in: int
    hook: str
    names: list[str]
    """The sweep's SAE names, in order."""
    saes: list[dict[str, Tensor]]
    """Each SAE's state dict."""
    opts: list[dict[str, Any]]
    """Each SAE's optimizer state dict."""
    since_fired: list[Tensor]
    """Rows since each latent last fired, per SAE."""
    rng: dict[str, Any]
    """The torch, numpy and python RNG states (:func:`rng_state`)."""
    elapsed_s: float = 0.0
    """Training seconds so far (absent from checkpoints of older versions)."""
    rec_weight: Tensor | None = None
    """WSAE weights γ² [d_in] (None: the plain reconstruction loss)."""


def save_checkpoint(path: Path, ck: Checkpoint) -> None:
    """Write to a temporary name, fsync, then rename: a kill leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save({f.name: getattr(ck, f.name) for f in fields(ck)}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> Checkpoint:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        return Checkpoint(**{f.name: state[f.name] for f in fields(Checkpoint) if f.name in state})
    except Exception as exc:  # a damaged file raises several exception types
        raise UserError(
            f"cannot read checkpoint {path} ({type(exc).__name__}); delete it or pass --overwrite"
        ) from None


def truncate_log(path: Path, max_step: int) -> None:
    """Drop log lines written after the checkpoint so a resumed run's log has no repeats."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= max_step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(ln + "\n" for ln in keep))
    os.replace(tmp, path)

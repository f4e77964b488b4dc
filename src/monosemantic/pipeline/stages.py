"""Stage caching: each stage's output lives in a folder named by a hash of everything it depends on.

A re-run skips a stage whose hash and completion are recorded in ``run.json``; a changed setting changes the
hash of that stage and of every stage downstream of it, and only those run again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monosemantic.errors import UserError
from monosemantic.files import check_out
from monosemantic.files import write_json

RUN_FORMAT = 1
RUN_FILE = "run.json"


def digest(inputs: Any) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class Stage:
    state: RunState
    key: str
    hash: str
    path: Path

    @property
    def done(self) -> bool:
        rec = self.state.stages.get(self.key)
        return bool(rec and rec["hash"] == self.hash and rec["done"] and self.path.exists())

    def start(self) -> float:
        if self.path.exists():  # an interrupted attempt of this exact stage: start it clean
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.state.record(self.key, self.hash, self.path, done=False)
        return time.perf_counter()

    def finish(self, started: float) -> None:
        self.state.record(self.key, self.hash, self.path, done=True, seconds=time.perf_counter() - started)


class RunState:
    """``run.json``: the run's config and the hash, folder and completion of every stage."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        # the run adds its stage folders to an earlier run's, so any run folder will do, but nothing else
        check_out(root, what="a run folder", marker=RUN_FILE, overwrite=True)
        root.mkdir(parents=True, exist_ok=True)
        path = root / RUN_FILE
        self.stages: dict[str, dict[str, Any]] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise UserError(f"{path} is damaged ({exc}); choose a new --out, or delete {root} to redo every stage"
                                ) from None
            if not isinstance(data, dict) or not isinstance(data.get("stages", {}), dict):
                raise UserError(f"{path} is not a run record; choose a new --out, or delete {root} to redo every stage")
            if data.get("format_version") != RUN_FORMAT:
                raise UserError(
                    f"{root} is a run folder from an older monosemantic format "
                    f"(version {data.get('format_version')}, this is {RUN_FORMAT}); use a new --out or delete it"
                )
            self.stages = data.get("stages", {})
        self.config = config
        self._save()

    def stage(self, key: str, folder: str, inputs: dict[str, Any], suffix: str = "") -> Stage:
        h = digest({"stage": key, **inputs})
        name = key.replace("/", "-")
        return Stage(self, key, h, self.root / folder / f"{name}-{h}{suffix}")

    def record(self, key: str, h: str, path: Path, *, done: bool, seconds: float | None = None) -> None:
        self.stages[key] = {"hash": h, "path": str(path.relative_to(self.root)), "done": done, "seconds": seconds}
        self._save()

    def _save(self) -> None:
        write_json(
            self.root / RUN_FILE, {"format_version": RUN_FORMAT, "config": self.config, "stages": self.stages}
        )

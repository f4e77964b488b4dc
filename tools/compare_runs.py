"""Compare the result files of two run folders (e.g. `make demo` before and after a change).

    python tools/compare_runs.py RUN_A RUN_B

Every JSON, JSONL, CSV and safetensors file is compared; JSON values under keys that hold wall-clock facts
(seconds, dates, throughput) are ignored, and each run folder's own path is read as ``RUN`` (a store path
recorded inside the run is equal when it is the same place in each run); everything else must be equal. Prints one
line per differing file and the differing JSON paths, and exits 1 if any file differs or is missing on one side.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

VOLATILE = {"seconds", "created", "tok_s", "elapsed", "wall_s", "time", "started", "finished", "duration_s",
            "steps_per_s", "tokens_per_s", "rows_per_s", "monosemantic_version", "elapsed_s"}
SUFFIXES = (".json", ".jsonl", ".csv", ".safetensors")


def _diff(a: Any, b: Any, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in VOLATILE:
                continue
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'B' if k not in a else 'A'}")
            else:
                _diff(a[k], b[k], f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} vs {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{where}[{i}]", out)
    elif a != b:
        out.append(f"{where}: {str(a)[:60]!r} vs {str(b)[:60]!r}")


def _load(path: Path, root: Path) -> Any:
    text = path.read_text().replace(str(root.resolve()), "RUN")
    if path.suffix == ".jsonl":
        return [json.loads(x) for x in text.splitlines() if x]
    return json.loads(text)


def compare(a_root: Path, b_root: Path) -> int:
    files = sorted({p.relative_to(a_root) for p in a_root.rglob("*") if p.suffix in SUFFIXES}
                   | {p.relative_to(b_root) for p in b_root.rglob("*") if p.suffix in SUFFIXES})
    bad = 0
    for rel in files:
        a, b = a_root / rel, b_root / rel
        if not a.exists() or not b.exists():
            print(f"{rel}: only in {'B' if not a.exists() else 'A'}")
            bad += 1
            continue
        if a.read_bytes() == b.read_bytes():
            continue
        diffs: list[str] = []
        if rel.suffix in (".json", ".jsonl"):
            _diff(_load(a, a_root), _load(b, b_root), "", diffs)
        else:
            diffs.append(f"bytes differ (sha256 {hashlib.sha256(a.read_bytes()).hexdigest()[:12]} vs "
                         f"{hashlib.sha256(b.read_bytes()).hexdigest()[:12]})")
        if diffs:
            bad += 1
            print(f"{rel}: {len(diffs)} difference(s)")
            for d in diffs[:8]:
                print(f"    {d}")
    print(f"{len(files)} files compared, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(compare(Path(sys.argv[1]), Path(sys.argv[2])))

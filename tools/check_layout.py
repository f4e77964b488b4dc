"""Check the import graph of ``src/monosemantic``: no import circle, no private name imported from another module,
and no import from a stage to one on its right in the data flow.

    python tools/check_layout.py          # prints each problem, exits 1 if there is any

Imports inside functions count (they run too); imports under ``if TYPE_CHECKING:`` do not. A node is a file.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "monosemantic"

LAYERS: dict[str, int] = {
    # the ground floor: plain helpers every stage may use (no torch)
    "__init__": 0, "errors": 0, "results": 0, "files": 0, "log": 0, "devices": 0, "config": 0, "experiment": 0,
    "sources": 1,
    "store": 2,
    "sae": 3,
    "metrics": 4, "synthetic": 4,
    "steer": 5, "compare": 5, "knowledge": 5, "naming": 5,
    "report": 6,
    "experiments": 7,
    "pipeline": 8,
    "cli": 9, "__main__": 9,
}
"""The data flow, left to right: a module may import its own stage and any stage with a smaller number."""


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, str | None, int]]:
    """(imported module, imported attribute or None, line) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_pkg else name.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join([*here, *([base] if base else [])])
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    yield sub, None, node.lineno
                else:
                    yield base, alias.name, node.lineno


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def check() -> list[str]:
    known = modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    problems: list[str] = []
    for name, path in known.items():
        rel = path.relative_to(ROOT.parent)
        for target, attr, line in imports(name, path, known):
            if target not in known:
                problems.append(f"{rel}:{line}: imports {target}, which does not exist")
                continue
            if target != name:
                graph[name].add(target)
            if attr and attr.startswith("_") and not attr.startswith("__") and target != name:
                problems.append(f"{rel}:{line}: imports the private name {attr} from {target}")
            last = target.split(".")[-1]
            if last.startswith("_") and not last.startswith("__"):
                owner = target.rsplit(".", 1)[0]
                if not name.startswith(owner + ".") and name != owner:
                    problems.append(f"{rel}:{line}: imports the private module {target} from outside {owner}")
            a, b = stage(name), stage(target)
            if a in LAYERS and b in LAYERS and LAYERS[b] > LAYERS[a]:
                problems.append(f"{rel}:{line}: {a} imports {b}, a stage to its right in the data flow")
    for cycle in _cycles(graph):
        problems.append("import circle: " + " -> ".join([*cycle, cycle[0]]))
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def main() -> int:
    problems = check()
    for p in problems:
        print(p)
    print(f"layout: {len(problems)} problem{'s' if len(problems) != 1 else ''} in {len(modules())} modules")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

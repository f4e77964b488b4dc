"""The store's JSON manifest: what produced the activations, and which shard files hold them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from monosemantic.errors import StoreError
from monosemantic.files import write_json

FORMAT = "monosemantic-activations"
VERSION = 1
MANIFEST = "manifest.json"
ITEMS = "items.jsonl"
VOCAB = "vocab.json"
DTYPE_NAMES = ("float32", "bfloat16", "float16")


@dataclass
class ShardInfo:
    """One shard file of a store: its name, row count, the items it holds and the sha256 of its bytes."""

    file: str
    rows: int
    items: list[int]
    """[first item, one past the last item]; shards always hold whole items, so resuming is exact."""
    sha256: str


@dataclass
class Manifest:
    """``manifest.json`` of a store: what was extracted (model, dataset, hooks and widths, token selection,
    dtype, settings) and what is on disk (shards, total rows, items done)."""

    model: dict[str, Any]
    """name, source, fingerprint (sha256 of the weights), modality."""
    dataset: dict[str, Any]
    """name, source, n_items, label_names."""
    hooks: dict[str, dict[str, Any]]
    """hook path -> {"width": d}."""
    tokens: str
    """Which token rows were kept per item: all, cls, mean, max or random-K."""
    dtype: str
    settings: dict[str, Any]
    """Everything that determines the contents; a resume must match it exactly."""
    shards: list[ShardInfo] = field(default_factory=list)
    n_rows: int = 0
    items_done: int = 0
    complete: bool = False
    format: str = FORMAT
    version: int = VERSION
    monosemantic_version: str = ""
    created: str = ""

    @property
    def n_items(self) -> int:
        return int(self.dataset["n_items"])

    def save(self, root: Path) -> None:
        """Write ``root/manifest.json``."""
        write_json(root / MANIFEST, asdict(self))

    @classmethod
    def load(cls, root: Path) -> Manifest:
        """Read ``root/manifest.json``; a missing or malformed manifest is a one-line `UserError`."""
        path = root / MANIFEST
        if not root.is_dir():
            if root.exists():
                raise StoreError(f"{root} is a file, not an activation store; give the folder that extract wrote")
            raise StoreError(f"no activation store at {root}; create one with `monosemantic extract ... --out {root}`")
        if not path.is_file():
            raise StoreError(f"{root} has no {MANIFEST}, so it is not an activation store (or not finished)")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{path} is not valid JSON ({exc}); the store is damaged: {REBUILD}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StoreError(f"{path} is not a monosemantic activation manifest")
        if data.get("version") != VERSION:
            raise StoreError(
                f"{path} is format version {data.get('version')}; this monosemantic reads version {VERSION}; "
                "re-extract the store"
            )
        _check_fields(data, path)
        try:
            data["shards"] = [ShardInfo(**s) for s in data.get("shards", [])]
            return cls(**data)
        except TypeError as exc:
            raise StoreError(f"{path} does not match the manifest format ({exc}); {REBUILD}") from None


REBUILD = "re-run the same `monosemantic extract` command with --overwrite to rebuild it"


_ABSENT = object()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_fields(data: dict[str, Any], path: Path) -> None:
    """Check every field that readers rely on, so a hand-edited manifest fails here, naming the field, rather
    than as a KeyError or AttributeError deep inside a later command."""

    def bad(field_name: str, want: str, got: Any = _ABSENT) -> StoreError:
        if got is _ABSENT:
            shown = ", but it is missing"
        else:
            text = json.dumps(got)
            shown = f", found {text if len(text) <= 40 else text[:37] + '...'}"
        return StoreError(f"{path}: field {field_name!r} must be {want}{shown}; {REBUILD}")

    def get(obj: dict[str, Any], key: str) -> Any:
        return obj.get(key, _ABSENT)

    for key in ("model", "dataset", "settings"):
        if not isinstance(data.get(key), dict):
            raise bad(key, "an object", get(data, key))
    for key in ("name", "modality"):
        if not isinstance(data["model"].get(key), str):
            raise bad(f"model.{key}", "a string", get(data["model"], key))
    if not isinstance(data["dataset"].get("name"), str):
        raise bad("dataset.name", "a string", get(data["dataset"], "name"))
    n_items = get(data["dataset"], "n_items")
    if not _is_int(n_items) or n_items < 0:
        raise bad("dataset.n_items", "a whole number of items (0 or more)", n_items)
    if not isinstance(data["dataset"].get("label_names", []), list):
        raise bad("dataset.label_names", "a list of label names", data["dataset"]["label_names"])
    hooks = get(data, "hooks")
    if not isinstance(hooks, dict) or not hooks:
        raise bad("hooks", 'an object mapping each hook path to {"width": d}', hooks)
    for hook, meta in hooks.items():
        if not isinstance(meta, dict) or not _is_int(meta.get("width")) or meta["width"] < 1:
            raise bad(f"hooks.{hook}", 'an object {"width": d} with d a positive whole number', meta)
    if not isinstance(data.get("tokens"), str):
        raise bad("tokens", "a string", get(data, "tokens"))
    if data.get("dtype") not in DTYPE_NAMES:
        raise bad("dtype", "one of " + ", ".join(DTYPE_NAMES), get(data, "dtype"))
    complete = data.get("complete", False)
    if not isinstance(complete, bool):
        raise bad("complete", "true or false", complete)
    shards = data.get("shards", [])
    if not isinstance(shards, list):
        raise bad("shards", "a list", shards)
    items_done, n_rows = 0, 0
    for i, s in enumerate(shards):
        where = f"shards[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("file"), str) or not isinstance(s.get("sha256"), str):
            raise bad(where, "an object with file, rows, items and sha256", s)
        if not _is_int(s.get("rows")) or s["rows"] < 0:
            raise bad(f"{where}.rows", "a whole number of rows", get(s, "rows"))
        span = get(s, "items")
        if not (isinstance(span, list) and len(span) == 2 and all(map(_is_int, span))):
            raise bad(f"{where}.items", "[first item, one past the last item]", span)
        if span[0] != items_done or span[1] < span[0]:
            raise bad(f"{where}.items", f"[{items_done}, end]: shards hold consecutive items", span)
        items_done, n_rows = span[1], n_rows + s["rows"]
    # Counts that disagree with the shard list would let readers index past the data or miss some of it.
    if data.get("items_done", 0) != items_done:
        raise bad("items_done", f"{items_done}, where the last shard's items end", get(data, "items_done"))
    if data.get("n_rows", 0) != n_rows:
        raise bad("n_rows", f"{n_rows}, the sum of the shards' rows", get(data, "n_rows"))
    if items_done > n_items:
        raise bad("dataset.n_items", f"at least {items_done}, the number of items the shards hold", n_items)

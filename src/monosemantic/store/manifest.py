"""The store's JSON manifest: what produced the activations, and which shard files hold them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from monosemantic.errors import StoreError
from monosemantic.files import write_json

FORMAT = "monosemantic-activations"
VERSION = 1
MANIFEST = "manifest.json"
ITEMS = "items.jsonl"
VOCAB = "vocab.json"
DTYPE_NAMES = ("float32", "bfloat16", "float16")


class ModelInfo(TypedDict):
    """The model a store was extracted from."""

    name: str
    """The name it was given by (a bundled name, a Hugging Face id or a folder)."""
    modality: str
    """``text``, ``image``, or ``vector`` for activations written directly."""
    source: NotRequired[str]
    fingerprint: NotRequired[str]
    """sha256 of the weights (or the hub commit)."""


class DatasetInfo(TypedDict):
    """The data a store was extracted from."""

    name: str
    n_items: int
    source: NotRequired[str]
    ref: NotRequired[str]
    """What ``load_dataset`` finds the data by again: a bundled name or an absolute path."""
    fingerprint: NotRequired[dict[str, int] | None]
    """Size and mtime of local data when it was extracted (None for a bundled set)."""
    label_names: NotRequired[list[str]]


class HookMeta(TypedDict):
    width: int
    """Width d of the hook's rows."""


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

    model: ModelInfo
    dataset: DatasetInfo
    hooks: dict[str, HookMeta]
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


def _is_count(v: Any) -> bool:
    return _is_int(v) and v >= 0


def _is_object(v: Any) -> bool:
    return isinstance(v, dict)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_hooks(v: Any) -> bool:
    return isinstance(v, dict) and bool(v)


def _is_width(v: Any) -> bool:
    return isinstance(v, dict) and _is_int(v.get("width")) and v["width"] >= 1


def _is_span(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(map(_is_int, v))


# (field, test, what it must be, whether it may be left out); objects come before the fields inside them
_FIELDS: tuple[tuple[str, Callable[[Any], bool], str, bool], ...] = (
    ("model", _is_object, "an object", False),
    ("dataset", _is_object, "an object", False),
    ("settings", _is_object, "an object", False),
    ("model.name", _is_str, "a string", False),
    ("model.modality", _is_str, "a string", False),
    ("dataset.name", _is_str, "a string", False),
    ("dataset.n_items", _is_count, "a whole number of items (0 or more)", False),
    ("dataset.label_names", lambda v: isinstance(v, list), "a list of label names", True),
    ("hooks", _is_hooks, 'an object mapping each hook path to {"width": d}', False),
    ("hooks.*", _is_width, 'an object {"width": d} with d a positive whole number', False),
    ("tokens", _is_str, "a string", False),
    ("dtype", lambda v: v in DTYPE_NAMES, "one of " + ", ".join(DTYPE_NAMES), False),
    ("complete", lambda v: isinstance(v, bool), "true or false", True),
    ("shards", lambda v: isinstance(v, list), "a list", True),
    ("shards[*]", lambda s: isinstance(s, dict) and _is_str(s.get("file")) and _is_str(s.get("sha256")),
     "an object with file, rows, items and sha256", False),
    ("shards[*].rows", _is_count, "a whole number of rows", False),
    ("shards[*].items", _is_span, "[first item, one past the last item]", False),
)
"""What each field of a manifest must hold, so a hand-edited manifest fails on loading, naming the field, rather
than as a KeyError or AttributeError deep inside a later command."""


def _bad(path: Path, field_name: str, want: str, got: Any = _ABSENT) -> StoreError:
    if got is _ABSENT:
        shown = ", but it is missing"
    else:
        text = json.dumps(got)
        shown = f", found {text if len(text) <= 40 else text[:37] + '...'}"
    return StoreError(f"{path}: field {field_name!r} must be {want}{shown}; {REBUILD}")


def _values(data: Any, name: str) -> list[tuple[str, Any]]:
    """(name, value) of every field that ``name`` addresses: ``a.b`` a key, ``a.*`` every entry of an object,
    ``a[*]`` every element of a list; the value is ``_ABSENT`` for a key that is missing."""
    found: list[tuple[str, Any]] = [("", data)]
    for part in name.split("."):
        key, each = part.removesuffix("[*]"), part.endswith("[*]")
        step = []
        for where, obj in found:
            here = f"{where}.{key}" if where else key
            if key == "*":
                step += [(f"{where}.{k}", v) for k, v in obj.items()]
            elif each:
                step += [(f"{here}[{i}]", v) for i, v in enumerate(obj.get(key, []))]
            else:
                step.append((here, obj.get(key, _ABSENT)))
        found = step
    return found


def _check_fields(data: dict[str, Any], path: Path) -> None:
    """Every field against ``_FIELDS``, then the counts that tie the shard list together."""
    for name, test, want, optional in _FIELDS:
        for where, value in _values(data, name):
            if not (value is _ABSENT and optional) and (value is _ABSENT or not test(value)):
                raise _bad(path, where, want, value)
    _check_counts(data, path)


def _check_counts(data: dict[str, Any], path: Path) -> None:
    """Shards hold consecutive items, and the totals agree with them: counts that disagree with the shard list
    would let readers index past the data or miss some of it."""
    items_done, n_rows = 0, 0
    for i, s in enumerate(data.get("shards", [])):
        span = s["items"]
        if span[0] != items_done or span[1] < span[0]:
            raise _bad(path, f"shards[{i}].items", f"[{items_done}, end]: shards hold consecutive items", span)
        items_done, n_rows = span[1], n_rows + s["rows"]
    if data.get("items_done", 0) != items_done:
        raise _bad(path, "items_done", f"{items_done}, where the last shard's items end",
                   data.get("items_done", _ABSENT))
    if data.get("n_rows", 0) != n_rows:
        raise _bad(path, "n_rows", f"{n_rows}, the sum of the shards' rows", data.get("n_rows", _ABSENT))
    n_items = data["dataset"]["n_items"]
    if items_done > n_items:
        raise _bad(path, "dataset.n_items", f"at least {items_done}, the number of items the shards hold", n_items)

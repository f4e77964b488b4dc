"""The store's JSON manifest: what produced the activations, and which shard files hold them."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from monosemantic.errors import StoreError

FORMAT = "monosemantic-activations"
VERSION = 1
MANIFEST = "manifest.json"
ITEMS = "items.jsonl"
VOCAB = "vocab.json"


@dataclass
class ShardInfo:
    file: str
    rows: int
    items: list[int]
    """[first item, one past the last item]; shards always hold whole items, so resuming is exact."""
    sha256: str


@dataclass
class Manifest:
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
        write_json(root / MANIFEST, asdict(self))

    @classmethod
    def load(cls, root: Path) -> Manifest:
        path = root / MANIFEST
        if not root.is_dir():
            raise StoreError(f"no activation store at {root}; create one with `monosemantic extract ... --out {root}`")
        if not path.is_file():
            raise StoreError(f"{root} has no {MANIFEST}, so it is not an activation store (or not finished)")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{path} is not valid JSON ({exc}); the store is damaged") from None
        if data.get("format") != FORMAT:
            raise StoreError(f"{path} is not a monosemantic activation manifest")
        if data.get("version") != VERSION:
            raise StoreError(
                f"{path} is format version {data.get('version')}; this monosemantic reads version {VERSION}; "
                "re-extract the store"
            )
        try:
            data["shards"] = [ShardInfo(**s) for s in data.get("shards", [])]
            return cls(**data)
        except TypeError as exc:
            raise StoreError(f"{path} does not match the manifest format ({exc})") from None


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)

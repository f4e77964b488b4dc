from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from monosemantic.config import add_arguments, field_docs, from_dict, from_namespace, load_toml
from monosemantic.errors import UserError


@dataclass(frozen=True)
class Demo:
    name: str
    """The name of the thing."""
    width: int = 16
    """Expansion factor."""
    arch: Literal["topk", "relu"] = "topk"
    """Architecture."""
    rates: list[float] = field(default_factory=list)
    """Several rates."""
    out: Path | None = None
    """Where to write."""
    fast: bool = False
    """Go fast (100% of the time)."""


def test_field_docstrings_are_read() -> None:
    docs = field_docs(Demo)
    assert docs["name"] == "The name of the thing."
    assert docs["rates"] == "Several rates."


def test_help_shows_docstrings_and_parses_types() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, Demo)
    help_text = parser.format_help()
    assert "Expansion factor. (default: 16)" in help_text
    assert "100% of the time" in help_text
    ns = parser.parse_args(["--name", "x", "--width", "4", "--rates", "0.1", "--rates", "0.2", "--fast"])
    cfg = from_namespace(Demo, ns)
    assert cfg == Demo(name="x", width=4, rates=[0.1, 0.2], fast=True)


def test_from_dict_names_unknown_key_and_wrong_type(tmp_path: Path) -> None:
    assert from_dict(Demo, {"name": "a", "width": 8, "out": "x"}) == Demo(name="a", width=8, out=Path("x"))
    with pytest.raises(UserError, match="unknown key 'widht'"):
        from_dict(Demo, {"name": "a", "widht": 8})
    with pytest.raises(UserError, match=r"config\.width must be an integer"):
        from_dict(Demo, {"name": "a", "width": "8"})
    with pytest.raises(UserError, match="one of 'topk', 'relu'"):
        from_dict(Demo, {"name": "a", "arch": "gated"})
    with pytest.raises(UserError, match="missing 'name'"):
        from_dict(Demo, {})
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_toml(bad)

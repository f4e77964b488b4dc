"""Result kinds: the one contract between the code that writes a result file and the report that reads it back.

A :class:`ResultKind` names a result's file, its format tag and version, its stand-alone page and its title. It is
declared once, in the report section that shows it (``monosemantic.report.sections.<name>``), and the experiment
that writes the file imports it from there, so the writer and the reader cannot disagree about a name.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSONDict = dict[str, Any]
"""A parsed JSON object: what a result file holds on disk (the typed result lives with its experiment)."""


@dataclass(frozen=True)
class ResultKind:
    """One kind of result file and how the report finds it."""

    name: str
    """Key of the result in the report's data, and the id of its section (e.g. ``"atoms"``)."""
    file: str
    """File name of the result's JSON (e.g. ``"atoms.json"``)."""
    format: str
    """The ``"format"`` tag inside the JSON, so a file of another kind with the same name is never misread."""
    title: str
    """Title of the report section and of the stand-alone page."""
    page: str | None = None
    """File name of the stand-alone HTML page written beside the JSON, if the result has one."""
    version: int = 1
    """Version of the file's layout; raised when a field changes meaning."""

    def header(self) -> JSONDict:
        """The fields every file of this kind starts with."""
        return {"format": self.format, "version": self.version}

    def matches(self, data: object) -> bool:
        """Whether parsed JSON is a file of this kind."""
        return isinstance(data, dict) and data.get("format") == self.format

    def find(self, run_dir: Path | str) -> JSONDict | None:
        """The result in a run folder (``RUN_DIR/FILE`` or ``RUN_DIR/<stem>/FILE``), or None when there is none
        or the file there is of another kind or unreadable."""
        stem = Path(self.file).stem
        for path in (Path(run_dir) / self.file, Path(run_dir) / stem / self.file):
            if path.is_file():
                try:
                    data = json.loads(path.read_text())
                except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                    return None
                return data if self.matches(data) else None
        return None


def to_json(value: Any) -> Any:
    """A JSON-ready copy of ``value``: dataclasses become objects (fields in order), paths strings, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_json(x) for x in value]
    if isinstance(value, dict):
        return {k: to_json(x) for k, x in value.items()}
    return value

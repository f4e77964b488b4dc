"""MkDocs hook: every findings page (``docs/findings/*.md``, ``docs/findings-*.md``) appears under "Findings" in the
nav, titled by its first heading, without editing mkdocs.yml.

Findings pages are written by whoever measures a result; listing them by hand would make the strict build fail
("page not in nav") whenever a new one lands before mkdocs.yml is edited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _title(page: Path) -> str:
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            title = line[2:].strip().removeprefix("Findings:").strip() or page.stem
            return title[:1].upper() + title[1:]
    return page.stem


def on_config(config: Any) -> Any:
    docs = Path(config["docs_dir"])
    nav = config["nav"]
    section = next((entry for entry in nav if isinstance(entry, dict) and "Findings" in entry), None)
    if section is None:
        section = {"Findings": []}
        nav.append(section)
    listed = {next(iter(e.values())) if isinstance(e, dict) else e for e in section["Findings"]}
    pages = sorted([*docs.glob("findings/*.md"), *docs.glob("findings-*.md")])
    for page in pages:
        rel = page.relative_to(docs).as_posix()
        if rel not in listed:
            section["Findings"].append({_title(page): rel})
    return config

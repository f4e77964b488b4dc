"""Re-take the docs screenshots in docs/img/ from a built site: `make docs && .venv/bin/python docs/screenshots.py`.

Uses the report's headless-Chromium helper, so the images are what a browser shows from disk (file://).
"""

from __future__ import annotations

from pathlib import Path

from monosemantic.report import screenshot

ROOT = Path(__file__).resolve().parents[1]
SHOTS = {"docs-home.png": "index.html", "methods-ms.png": "methods/ms.html"}

if __name__ == "__main__":
    for png, page in SHOTS.items():
        print(screenshot(ROOT / "site" / page, ROOT / "docs" / "img" / png, width=1440, height=900))

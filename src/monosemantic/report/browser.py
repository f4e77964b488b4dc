"""Headless Chromium: screenshots of a report and its DOM after the page's scripts ran.

Used by the browser test and to make the README screenshot. Nothing here installs Chromium; ``find_chromium``
looks for it (``MONOSEMANTIC_CHROMIUM`` first, then the usual names on PATH).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from monosemantic.errors import UserError
from monosemantic.files import publish_file, temp_beside

CHROMIUM_ENV = "MONOSEMANTIC_CHROMIUM"
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# Headless, offline, no profile state kept: the page must render from the file alone.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-dev-shm-usage", "--disable-breakpad", "--hide-scrollbars", "--mute-audio",
)
_CONSOLE_ERROR = re.compile(r"(Uncaught|CONSOLE.*\b(Error|error)\b|:ERROR:CONSOLE)")


@dataclass
class PageLoad:
    """What headless Chromium saw: the DOM after scripts ran and the console lines the page logged."""

    dom: str
    console: list[str]

    @property
    def errors(self) -> list[str]:
        """Console lines that report a JavaScript error (uncaught exceptions, console.error)."""
        return [line for line in self.console if _CONSOLE_ERROR.search(line)]


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or None."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium(chromium: str | None) -> str:
    exe = chromium or find_chromium()
    if not exe:
        raise UserError(
            f"no Chromium found; install it (Debian/Ubuntu: `apt-get install -y chromium`) or set {CHROMIUM_ENV} "
            "to a Chrome/Chromium executable"
        )
    return exe


def _run(args: list[str], chromium: str | None, timeout: float) -> subprocess.CompletedProcess[str]:
    exe = _chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="monosemantic-chromium-") as profile:
        env = {**os.environ, "HOME": profile}  # keeps Chromium's caches and crash dumps out of the user's home
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise UserError(f"Chromium did not finish within {timeout:g} s ({exe})") from exc
    return proc


def load_page(html_path: str | Path, *, width: int = 1400, height: int = 1000, budget_ms: int = 3000,
              chromium: str | None = None, timeout: float = 90, fragment: str = "") -> PageLoad:
    """Load ``html_path`` headless (with ``#fragment`` when given), let its scripts run for ``budget_ms`` of virtual
    time, return DOM and console."""
    url = Path(html_path).resolve().as_uri() + (f"#{fragment}" if fragment else "")
    proc = _run(
        [f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}", "--enable-logging=stderr",
         "--v=0", "--dump-dom", url],
        chromium, timeout,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise UserError(f"Chromium could not load {html_path} (exit {proc.returncode}): {tail}")
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return PageLoad(dom=proc.stdout, console=console)


def page_height(html_path: str | Path, width: int = 1400, chromium: str | None = None) -> int | None:
    """Full height of a report page at ``width`` (report.js records it on ``<body data-page-height>``)."""
    found = re.search(r'data-page-height="(\d+)"', load_page(html_path, width=width, chromium=chromium).dom)
    return int(found.group(1)) if found else None


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1400, height: int | None = 1000, *,
               scale: float = 1.0, chromium: str | None = None, timeout: float = 120) -> Path:
    """Save a PNG of the top ``width`` x ``height`` CSS pixels of ``html_path``; ``height=None``: the whole page.

    ``scale`` is the device pixel ratio (2 gives a sharp image for high-density screens, at four times the bytes).
    The PNG is written under a temporary name and renamed.
    """
    html_path, png_path = Path(html_path), Path(png_path)
    if not html_path.is_file():
        raise UserError(f"{html_path} does not exist; render the report first (`monosemantic report RUN_DIR`)")
    if height is None:
        height = min(page_height(html_path, width, chromium) or 4000, 16000)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(png_path, ".png")
    try:
        proc = _run(
            [f"--window-size={width},{height}", f"--force-device-scale-factor={scale:g}",
             "--virtual-time-budget=3000", f"--screenshot={tmp}", html_path.resolve().as_uri()],
            chromium, timeout,
        )
        if proc.returncode != 0 or tmp.stat().st_size == 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise UserError(f"Chromium could not screenshot {html_path} (exit {proc.returncode}): {tail}")
        publish_file(tmp, png_path)
    finally:
        tmp.unlink(missing_ok=True)
    return png_path

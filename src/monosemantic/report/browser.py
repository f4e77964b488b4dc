"""Headless Chromium: a screenshot of a report (``monosemantic report --screenshot``).

Nothing here installs Chromium; ``find_chromium`` looks for it (``MONOSEMANTIC_CHROMIUM`` first, then the usual
names on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
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


def run_chromium(args: list[str], chromium: str | None, timeout: float) -> subprocess.CompletedProcess[str]:
    """Chromium (``chromium``, else the one ``find_chromium`` finds) headless with ``args``, in a fresh profile."""
    exe = _chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="monosemantic-chromium-") as profile:
        env = {**os.environ, "HOME": profile}  # keeps Chromium's caches and crash dumps out of the user's home
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise UserError(f"Chromium did not finish within {timeout:g} s ({exe})") from exc
    return proc


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1400, height: int = 1000, *,
               scale: float = 1.0, chromium: str | None = None, timeout: float = 120) -> Path:
    """Save a PNG of the top ``width`` x ``height`` CSS pixels of ``html_path``.

    ``scale`` is the device pixel ratio (2 gives a sharp image for high-density screens, at four times the bytes).
    The PNG is written under a temporary name and renamed.
    """
    html_path, png_path = Path(html_path), Path(png_path)
    if not html_path.is_file():
        raise UserError(f"{html_path} does not exist; render the report first (`monosemantic report RUN_DIR`)")
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(png_path, ".png")
    try:
        proc = run_chromium(
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

"""Test helper: a headless Chromium for the browser tests, installed once with apt where that is possible.

Set MONOSEMANTIC_NO_CHROMIUM_INSTALL=1 to never install (the browser tests then skip when none is found).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from monosemantic.report.browser import CHROMIUM_ENV, find_chromium

APT_INSTALL = ("apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=120", "chromium")
INSTALL_TIMEOUT_S = 600


def chromium_or_reason() -> tuple[str | None, str]:
    """``(path, "")`` for a usable Chromium, else ``(None, why not)``; installs it when root with apt."""
    found = find_chromium()
    if found:
        return found, ""
    if os.environ.get(CHROMIUM_ENV):
        return None, f"{CHROMIUM_ENV}={os.environ[CHROMIUM_ENV]} is not an executable"
    if os.environ.get("MONOSEMANTIC_NO_CHROMIUM_INSTALL"):
        return None, "no Chromium on PATH and MONOSEMANTIC_NO_CHROMIUM_INSTALL is set"
    if not shutil.which("apt-get"):
        return None, "no Chromium on PATH and no apt-get to install it (install chromium or set MONOSEMANTIC_CHROMIUM)"
    if os.geteuid() != 0:
        return None, "no Chromium on PATH and not root, so `apt-get install chromium` cannot run"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for cmd in (("apt-get", "update", "-qq"), APT_INSTALL):
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=env, check=False)
            if proc.returncode != 0:
                tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
                return None, f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {tail}"
    except subprocess.TimeoutExpired:
        return None, f"installing Chromium with apt took over {INSTALL_TIMEOUT_S} s"
    found = find_chromium()
    return (found, "") if found else (None, "apt installed chromium but no executable was found on PATH")

"""Headless Chromium (Debian's package) for the browser test and the README screenshots."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(url: str, extra: list[str], budget_ms: int, size: tuple[int, int]) -> str:
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
               f"--window-size={size[0]},{size[1]}", *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True).stdout


def dump_dom(url: str, budget_ms: int = 20000, size: tuple[int, int] = (1600, 1000)) -> str:
    """The page's DOM after its scripts ran for ``budget_ms`` of virtual time."""
    return _run(url, ["--dump-dom"], budget_ms, size)


def screenshot(url: str, path: Path, budget_ms: int = 20000, size: tuple[int, int] = (1600, 1000)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(url, [f"--screenshot={path}"], budget_ms, size)
    return path

"""Headless Chromium for the browser tests and the docs screenshots (no driver, no network).

Only the Chromium binary is needed: ``--dump-dom`` gives the DOM after load (inline
scripts have run), ``--screenshot`` a PNG. ``python -m tests.reports.chromium`` prints
why it is unavailable, if it is.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--hide-scrollbars", "--mute-audio",
         "--allow-file-access-from-files", "--virtual-time-budget=5000"]


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env and Path(env).exists():
        return env
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _run(binary: str, args: list[str], timeout: float = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def dump_dom(binary: str, url: str) -> str:
    proc = _run(binary, ["--dump-dom", url])
    if proc.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def screenshot(binary: str, url: str, out, width: int = 1200, height: int = 1600) -> Path:
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    proc = _run(binary, [f"--screenshot={out}", f"--window-size={width},{height}", url])
    if not out.exists():
        raise RuntimeError(f"chromium --screenshot wrote nothing ({proc.returncode}): {proc.stderr[-2000:]}")
    return out


def launch_problem(binary: str | None) -> str | None:
    """None when Chromium renders a trivial page, else the reason it cannot."""
    if binary is None:
        return "no Chromium binary on PATH (apt-get install -y chromium)"
    with tempfile.TemporaryDirectory() as d:
        page = Path(d) / "probe.html"
        page.write_text("<!DOCTYPE html><title>probe</title><p id=ok>ok</p>")
        try:
            dom = dump_dom(binary, page.as_uri())
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
            return f"Chromium at {binary} cannot launch: {e}"
    return None if 'id="ok"' in dom else f"Chromium at {binary} rendered nothing"


if __name__ == "__main__":
    b = find_chromium()
    problem = launch_problem(b)
    print(problem or f"ok: {b}")
    sys.exit(1 if problem else 0)

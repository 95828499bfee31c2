"""The app in a process of its own, for the tests and benchmarks that need a real restart or the server
off their own CPU time: a free loopback port, start until it serves, stop.

    port = free_port()
    process = start_app(["--data-dir", str(data), "--port", str(port), "--no-preload"], port)
    ...
    stop_app(process)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(arguments: list[str], port: int, *, env: dict | None = None, output=subprocess.DEVNULL,
              timeout: float = 120.0, ready_path: str = "config") -> subprocess.Popen:
    """``python app.py ARGUMENTS`` from the repository root, returned once ``ready_path`` answers on ``port``."""
    process = subprocess.Popen([sys.executable, "app.py", *arguments], cwd=ROOT, env=env, stdout=output,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with status {process.returncode} before it served")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{ready_path}", timeout=2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the app did not serve within {timeout:.0f} s")


def stop_app(process: subprocess.Popen, kill: bool = False) -> None:
    """Ends the app: SIGTERM (a clean shutdown), or SIGKILL with ``kill`` (a crash)."""
    process.kill() if kill else process.terminate()
    process.wait(timeout=30)

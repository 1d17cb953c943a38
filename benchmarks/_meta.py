"""What the benchmarks record about the run itself: the machine, its load, the commit."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["git_describe", "machine"]

HERE = Path(__file__).resolve().parent


def machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """CPUs, platform, Python, and the load average before the run (given) and now."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }


def git_describe() -> str:
    """``git describe --always --dirty`` of the checkout the benchmarks are in."""
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()

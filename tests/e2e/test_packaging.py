"""The built wheel carries what a non-editable install needs (templates, migrations, types)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_package_data(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(tmp_path),
        str(ROOT),
    ]
    built = subprocess.run(command, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("shipyard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "shipyard/py.typed",
        "shipyard/evaluate/templates/run_report.html.j2",
        "shipyard/store/migrations/env.py",
        "shipyard/store/migrations/versions/0001_initial.py",
        "shipyard/store/migrations/versions/0005_run_value_indexes.py",
        "shipyard/ui/templates/base.html.j2",
        "shipyard/ui/templates/runs.html.j2",
        "shipyard/ui/static/ui.css",
        "shipyard/ui/static/ui.js",
        "shipyard/ui/static/vendor/htmx/htmx.min.js",
        "shipyard/ui/static/vendor/htmx/LICENSE",
        "shipyard/ui/static/vendor/uplot/uPlot.iife.min.js",
        "shipyard/ui/static/vendor/uplot/uPlot.min.css",
        "shipyard/ui/static/vendor/uplot/LICENSE",
        "shipyard/cli/__init__.py",
        "shipyard/deploy/templates/Dockerfile.j2",
    ):
        assert needed in names, f"{needed} is missing from the wheel"
    metadata = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "shipyard = shipyard.cli:main" in zipfile.ZipFile(wheel).read(metadata).decode()

"""Take the README's screenshots of the web UI: a real ``shipyard run`` on Palmer penguins,
the UI tests' runs and model, and 2,000 generated runs, served by ``shipyard ui`` and shot by
a headless Chromium at 1366 px (a laptop).

Usage (needs /usr/bin/chromium and /usr/bin/chromedriver)::

    python docs/screenshots/capture.py        # writes docs/screenshots/*.png
    python docs/screenshots/capture.py monitoring serving   # only these
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPEC = """\
name: penguins
data: {source: {type: csv, path: data/penguins.csv}, target: species}
models: [{model: logistic_regression}, {model: random_forest, params: {n_estimators: 30}}]
evaluation: {bootstrap: 0, explain: false, learning_curve: false}
"""


def _store(home: Path) -> dict[str, str]:
    """Fill the store under ``home``; returns the ids the shots need."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]
    from palmerpenguins import load_penguins

    from shipyard.pipeline import run_project
    from shipyard.spec import load_spec
    from shipyard.store import Store
    from shipyard.tracking import page_runs
    from ui import seed  # benchmarks/ui.py
    from ui_store import fill, fill_monitoring  # tests/ui_store.py

    (home / "data").mkdir()
    load_penguins().dropna(subset=["sex"]).to_csv(home / "data" / "penguins.csv", index=False)
    (home / "shipyard.yaml").write_text(SPEC)
    with Store.open(root=home / ".shipyard") as store:
        result = run_project(load_spec(home / "shipyard.yaml"), store=store)
        filled = fill(store)
        fill_monitoring(store)
        seed(store, 2000)
        with store.connect() as conn:
            trial = page_runs(conn, parent_id=result.run_id).runs[0].id
    churn = filled.churn
    return {"run": result.run_id, "trial": trial, "compare": f"{churn[0]},{churn[10]},{churn[20]}"}


def main() -> int:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as tmp, _metrics_server() as live:
        home = Path(tmp)
        ids = _store(home)
        command = [
            sys.executable,
            "-m",
            "shipyard",
            "ui",
            "--port",
            "8791",
            "--log-level",
            "warning",
            "--server",
            live,
        ]
        env = {"SHIPYARD_HOME": str(home / ".shipyard"), "PATH": "/usr/bin:/bin"}
        server = subprocess.Popen(command, cwd=home, env=env)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get("http://127.0.0.1:8791/health", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
                options.add_argument(flag)
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            shots = {
                "runs": ("/runs?q=accuracy+%3E+0.6&sort=metric.accuracy&dir=desc", 900),
                "run": (f"/runs/{ids['run']}", 1400),
                "trial": (f"/runs/{ids['trial']}#charts", 900),
                "compare": (f"/compare?ids={ids['compare']}", 1250),
                "model": ("/models/penguins", 1300),
                "monitoring": ("/models/penguins/versions/2/monitoring", 1500),
                "serving": ("/serving", 1250),
            }
            wanted = set(sys.argv[1:]) or set(shots)
            try:
                for name, (url, height) in shots.items():
                    if name not in wanted:
                        continue
                    driver.set_window_size(1366, height)
                    driver.get("http://127.0.0.1:8791" + url)
                    time.sleep(7 if name == "serving" else 0.5)  # charts drawn; 3 live reads
                    driver.save_screenshot(str(HERE / f"{name}.png"))
            finally:
                driver.quit()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


def _metrics_server() -> Any:
    """A stand-in ``/metrics`` with growing traffic (tests/ui_store.py) for the serving page."""
    sys.path[:0] = [str(ROOT / "tests")]
    from ui_store import metrics_server

    return metrics_server()


if __name__ == "__main__":
    sys.exit(main())

"""The README's main job, as a user runs it: quickstart, run again, predict, serve."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.http]

ROOT = Path(__file__).resolve().parents[2]


def shipyard(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "SHIPYARD_USER": "e2e"}
    env.pop("SHIPYARD_STORE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"shipyard {args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("quickstart")
    result = shipyard(root, "quickstart")
    (root / "quickstart.out").write_text(result.stdout)
    assert "Model URI: models:/penguins@production" in result.stdout
    assert "shipyard serve models:/penguins@production" in result.stdout
    assert (root / ".shipyard" / "shipyard.db").exists()
    assert (root / "shipyard.yaml").exists() and (root / "data" / "penguins.csv").exists()
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "SHIPYARD_USER": "e2e"}
    env.pop("SHIPYARD_STORE_URL", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shipyard",
            "serve",
            "models:/penguins@production",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("server not ready within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _shape(text: str) -> list[str]:
    """Output lines with what legitimately varies (ids, times, scores, widths) flattened."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"[0-9a-f]{8,32}", "<id>", line)
        line = re.sub(r"\d", "0", line)
        line = re.sub(r"[━─]+", "-", line)
        line = re.sub(r"\s+", " ", line).strip()
        if line:
            out.append(line)
    return out


def test_readme_shows_what_quickstart_prints(project: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```\n\$ shipyard quickstart\n(.*?)```", readme, re.S)
    assert block, "README.md lost its 'What you get' block"
    printed = (project / "quickstart.out").read_text()
    assert _shape(block.group(1)) == _shape(printed)


def test_second_run_gives_the_same_metrics(project: Path) -> None:
    second = shipyard(project, "run").stdout
    assert "not promoted" in second and "a tie keeps the champion" in second
    show = shipyard(project, "models", "show", "penguins").stdout
    assert "v1" in show and "v2" in show
    import sqlite3

    with sqlite3.connect(project / ".shipyard" / "shipyard.db") as conn:
        rows = conn.execute(
            "SELECT version, metrics FROM model_versions WHERE name='penguins' ORDER BY version"
        ).fetchall()
    assert len(rows) == 2
    assert json.loads(rows[0][1]) == json.loads(rows[1][1])


def test_served_predictions_equal_batch_predictions(project: Path, server: str) -> None:
    shipyard(
        project, "predict", "models:/penguins@production", "data/penguins.csv", "-o", "out.parquet"
    )
    batch = pd.read_parquet(project / "out.parquet")
    data = pd.read_csv(project / "data" / "penguins.csv")
    records = json.loads(data.drop(columns=["species", "year"]).to_json(orient="records"))
    response = httpx.post(f"{server}/predict", json=records, timeout=30)
    assert response.status_code == 200, response.text
    served = response.json()["predictions"]
    assert [p["prediction"] for p in served] == batch["prediction"].tolist()
    for cls in ("Adelie", "Chinstrap", "Gentoo"):
        np.testing.assert_allclose(
            [p["probabilities"][cls] for p in served], batch[f"proba_{cls}"], rtol=1e-9
        )
    assert (batch["prediction"] == batch["species"]).mean() > 0.95


def test_readme_curl_example_works(server: str) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    body = readme.split("-d \\\n", 1)[1].split("'", 2)[1]
    response = httpx.post(
        f"{server}/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["prediction"] in {"Adelie", "Chinstrap", "Gentoo"}


def test_a_v2_client_and_a_plain_client_agree(project: Path, server: str) -> None:
    """A KServe V2 client that knows only the metadata endpoint, against the quickstart model."""
    rows = pd.read_csv(project / "data" / "penguins.csv").drop(columns=["species"]).head(20)
    meta = httpx.get(f"{server}/v2/models/penguins").json()
    inputs = []
    for tensor in meta["inputs"]:
        values = rows[tensor["name"]].astype(object).where(rows[tensor["name"]].notna(), None)
        inputs.append(
            {
                "name": tensor["name"],
                "datatype": tensor["datatype"],
                "shape": [len(rows), 1],
                "data": [
                    v if tensor["datatype"] != "BYTES" or v is None else str(v) for v in values
                ],
            }
        )
    v2 = httpx.post(f"{server}/v2/models/penguins/infer", json={"inputs": inputs}, timeout=30)
    assert v2.status_code == 200, v2.text
    labels = next(o for o in v2.json()["outputs"] if o["name"] == "label")["data"]
    records = json.loads(rows.to_json(orient="records"))
    plain = httpx.post(f"{server}/predict", json=records, timeout=30).json()["predictions"]
    assert labels == [p["prediction"] for p in plain]


def test_server_rejects_bad_records_with_4xx(server: str) -> None:
    bad = {
        "island": "Atlantis",
        "bill_length_mm": "long",
        "bill_depth_mm": 1,
        "flipper_length_mm": 1,
        "sex": None,
    }
    response = httpx.post(f"{server}/predict", json=bad, timeout=10)
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["detail"]}
    assert {"island", "bill_length_mm", "body_mass_g"} <= fields
    assert (
        httpx.post(
            f"{server}/predict", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_runs_and_models_commands(project: Path) -> None:
    listing = shipyard(project, "runs", "list").stdout
    assert "finished" in listing and "penguins" in listing
    assert "f1_macro" in shipyard(project, "models", "show", "models:/penguins@production").stdout
    # the second run tied with version 1, so production stayed there
    moved = shipyard(project, "models", "promote", "penguins", "2", "--reason", "e2e").stdout
    assert "v1 -> v2" in moved
    back = shipyard(project, "models", "rollback", "penguins").stdout
    assert "v2 -> v1" in back
    history = shipyard(project, "models", "show", "penguins").stdout
    assert history.count("e2e") >= 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "missing.yaml"), "no such project file"),
        (("models", "show", "models:/nope@production"), "nope"),
        (("predict", "models:/penguins@production", "nothing.csv"), "nothing.csv"),
        (("serve", "not-a-uri"), "cannot parse model URI"),
        (("runs", "show", "zzzzzzzz"), "zzzzzzzz"),
        (("frobnicate",), "No such command"),
    ],
)
def test_user_errors_exit_1_with_a_message(
    project: Path, args: tuple[str, ...], message: str
) -> None:
    result = shipyard(project, *args, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_marks_the_run_killed(tmp_path: Path) -> None:
    import signal
    import sqlite3

    from sklearn.datasets import load_breast_cancer

    load_breast_cancer(as_frame=True).frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "shipyard.yaml").write_text(
        "name: slow\ndata: {source: {type: csv, path: d.csv}, target: target}\n"
        "split: {cv_folds: 10}\nmodels: [{model: random_forest, params: {n_estimators: 400}}]\n"
    )
    env = {**os.environ}
    env.pop("SHIPYARD_STORE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "run"],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    db = tmp_path / ".shipyard" / "shipyard.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if db.exists():
            with sqlite3.connect(db) as conn:
                try:
                    n = conn.execute(
                        "SELECT count(*) FROM runs WHERE parent_id IS NOT NULL"
                    ).fetchone()[0]
                except sqlite3.OperationalError:
                    n = 0
            if n:
                break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    with sqlite3.connect(db) as conn:
        statuses = {row[0] for row in conn.execute("SELECT status FROM runs")}
    assert statuses == {"killed"}

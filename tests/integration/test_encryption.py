"""Encryption at rest through the whole lifecycle: run, load, batch predict, serve and read the
prediction log back with ``SHIPYARD_ENCRYPTION_KEY`` set; no artifact or log file Shipyard
stores holds a value in clear."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from _served import serving
from palmerpenguins import load_penguins

import shipyard
from cli_runner import cli
from shipyard.errors import EncryptionError
from shipyard.store import ENCRYPTION_KEY_ENV, generate_key_text, read_predictions
from shipyard.store._crypto import MAGIC

pytestmark = [pytest.mark.slow, pytest.mark.http]

SPEC = """\
name: penguins
data: {source: {type: csv, path: data/penguins.csv}, target: species}
features: {exclude: [year]}
split: {cv_folds: 2}
models:
  - model: logistic_regression
"""
# values that a clear model package or log would hold: an input category and a column name
MARKERS = (b"Torgersen", b"bill_length_mm")


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Path]:
    """A project run with a key: ``models:/penguins@production``, encrypted."""
    monkeypatch.chdir(tmp_path)
    for name in ("SHIPYARD_STORE_URL", "SHIPYARD_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, generate_key_text())
    (tmp_path / "data").mkdir()
    load_penguins().to_csv(tmp_path / "data" / "penguins.csv", index=False)
    (tmp_path / "shipyard.yaml").write_text(SPEC)
    code, out = cli(capsys, "run")
    assert code == 0, out
    assert "shipyard runs report" in out  # the report on disk is encrypted: export it
    yield tmp_path


def _stored(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_run_stores_every_artifact_encrypted_and_the_model_still_works(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = _stored(project / ".shipyard" / "artifacts")
    assert {"pipeline.joblib", "signature.json", "profile.json", "report.html"} <= set(stored)
    clear = [name for name, data in stored.items() if not data.startswith(MAGIC)]
    assert not clear, f"artifacts stored in clear: {clear}"
    leaked = [name for name, data in stored.items() if any(m in data for m in MARKERS)]
    assert not leaked, f"artifacts holding a plaintext marker: {leaked}"

    model = shipyard.load_model("models:/penguins@production")
    frame = pd.read_csv(project / "data" / "penguins.csv").dropna()
    assert (model.predict(frame).labels == frame["species"]).mean() > 0.9

    code, out = cli(capsys, "predict", "models:/penguins@production", "data/penguins.csv")
    assert code == 0, out
    code, out = cli(capsys, "runs", "list")
    run_id = next(line.split()[1] for line in out.splitlines() if "finished" in line)
    code, out = cli(capsys, "runs", "report", run_id, "-o", "report.html")
    assert code == 0 and "bill_length_mm" in (project / "report.html").read_text()

    monkeypatch.delenv(ENCRYPTION_KEY_ENV)
    with pytest.raises(EncryptionError, match=f"{ENCRYPTION_KEY_ENV} is not set"):
        shipyard.load_model("models:/penguins@production")
    code, out = cli(capsys, "models", "show", "models:/penguins@production")
    assert code == 0  # the registry's records are not encrypted
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, generate_key_text())
    code, out = cli(capsys, "predict", "models:/penguins@production", "data/penguins.csv")
    assert code == 1 and "encrypted with key id" in out and "Traceback" not in out


def test_the_server_answers_and_its_prediction_log_is_encrypted(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = pd.read_csv(project / "data" / "penguins.csv").dropna().head(20)
    records = json.loads(data.drop(columns=["species", "year"]).to_json(orient="records"))
    with serving(project, "models:/penguins@production", "--workers", "1") as served:
        url = f"http://127.0.0.1:{served.port}/predict"
        response = httpx.post(url, json=records, timeout=30)
    assert response.status_code == 200, response.text
    answered = [p["prediction"] for p in response.json()["predictions"]]
    assert answered == data["species"].tolist()

    log = project / ".shipyard" / "predictions"
    stored = _stored(log)  # the drain on exit flushed the log
    assert stored and all(d.startswith(MAGIC) for d in stored.values())
    assert not any(m in d for d in stored.values() for m in (*MARKERS, b"Adelie"))
    frame = read_predictions(log, model="penguins")
    assert frame["prediction"].tolist() == answered
    assert frame["input.island"].tolist() == data["island"].tolist()
    monkeypatch.delenv(ENCRYPTION_KEY_ENV)
    with pytest.raises(EncryptionError, match="the prediction log file"):
        read_predictions(log, model="penguins")

"""The server writes every answered prediction to its log, with the ids the client got."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_serve_app import RECORD, _samples, build_package

from shipyard.model import ModelPackage
from shipyard.serve import ServeConfig, create_app
from shipyard.serve._predlog import PredictionLogConfig
from shipyard.store import read_predictions


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    return build_package("multiclass")


def test_every_answer_is_logged_with_its_ids(package: ModelPackage, tmp_path: Path) -> None:
    config = ServeConfig(prediction_log=str(tmp_path / "log"))
    with TestClient(create_app(package, config=config)) as client:
        one = client.post("/predict", json=RECORD, headers={"x-request-id": "abc"})
        many = client.post("/predict", json=[RECORD, {**RECORD, "sex": None}])
        client.post("/predict", json={**RECORD, "island": "Atlantis"})  # a 422: not logged
    # leaving the client ran the lifespan's shutdown: the log was written before it returned
    logged = read_predictions(tmp_path / "log", model="penguins-multiclass")
    ids = [one.json()["prediction_id"], *(p["prediction_id"] for p in many.json()["predictions"])]
    assert ids[0] == "abc" == one.headers["x-request-id"]
    assert list(logged["prediction_id"]) == ids
    assert list(logged["model_version"]) == ["3"] * 3
    assert list(logged["prediction"]) == [one.json()["prediction"]] + [
        p["prediction"] for p in many.json()["predictions"]
    ]
    assert logged["input.island"].tolist() == ["Biscoe"] * 3
    assert logged["input.sex"].isna().tolist() == [False, False, True]
    assert (logged["latency_ms"] > 0).all()


def test_log_counts_are_in_the_metrics(package: ModelPackage, tmp_path: Path) -> None:
    fast = PredictionLogConfig(flush_records=1, flush_interval_s=0.05)
    config = ServeConfig(prediction_log=str(tmp_path / "log"), prediction_log_buffer=fast)
    with TestClient(create_app(package, config=config)) as client:
        for _ in range(3):
            client.post("/predict", json=RECORD)
        samples = _samples(client)
        deadline = time.monotonic() + 30
        while samples.get(("shipyard_prediction_log_written_total", ()), 0) < 3:
            assert time.monotonic() < deadline, samples
            time.sleep(0.02)
            samples = _samples(client)  # the writer thread flushes every 50 ms
    assert samples["shipyard_prediction_log_dropped_total", ()] == 0


def test_no_log_when_off(package: ModelPackage) -> None:
    app = create_app(package, config=ServeConfig(prediction_log="off"))
    assert app.shipyard.predlog is None


def test_the_log_buffer_must_hold_one_request(package: ModelPackage, tmp_path: Path) -> None:
    small = PredictionLogConfig(max_buffer_records=10, flush_records=10)
    config = ServeConfig(prediction_log=str(tmp_path), prediction_log_buffer=small, max_records=20)
    with pytest.raises(ValueError, match="prediction log's buffer"):
        create_app(package, config=config)

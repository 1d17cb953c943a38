"""Served records are checked against the training profile: counted, logged, or refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from palmerpenguins import load_penguins
from test_serve_app import RECORD, _samples, build_package

from shipyard.data import ReferenceProfile, coerce_frame, profile_frame
from shipyard.model import ModelPackage
from shipyard.serve import ServeConfig, create_app
from shipyard.store import read_predictions

ODD = {**RECORD, "body_mass_g": 60_000.0}  # ten times the heaviest penguin
WORSE = {**RECORD, "bill_length_mm": 1.0, "year": None}


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    package = build_package("multiclass")
    frame = coerce_frame(load_penguins(), package.signature)
    profile = ReferenceProfile(inputs=profile_frame(frame, package.signature))
    return dataclasses.replace(package, profile=profile)


def _ood(client: TestClient) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["field"], dict(labels)["reason"]): value
        for (name, labels), value in _samples(client).items()
        if name == "shipyard_out_of_distribution_total"
    }


@pytest.mark.parametrize("sink", ["parquet", "sql"])
def test_flagged_records_are_answered_counted_and_logged(
    package: ModelPackage, tmp_path: Path, sink: str
) -> None:
    target = str(tmp_path / "log") if sink == "parquet" else f"sqlite:///{tmp_path}/log.db"
    config = ServeConfig(prediction_log=target)
    with TestClient(create_app(package, config=config)) as client:
        assert client.post("/predict", json=RECORD).status_code == 200
        assert client.post("/predict", json=[ODD, RECORD, WORSE]).status_code == 200
        assert _ood(client) == {
            ("body_mass_g", "above_range"): 1,
            ("bill_length_mm", "below_range"): 1,
            ("year", "missing"): 1,
        }
        records = _samples(client)
        flagged = ("shipyard_out_of_distribution_records_total", (("action", "flagged"),))
        assert records[flagged] == 2
    logged = read_predictions(target, model="penguins-multiclass")
    assert [v if isinstance(v, str) else None for v in logged["ood"]] == [
        None,
        "body_mass_g:above_range",
        None,
        "year:missing;bill_length_mm:below_range",
    ]


def test_reject_refuses_with_a_422_naming_record_and_field(package: ModelPackage) -> None:
    with TestClient(create_app(package, config=ServeConfig(ood="reject"))) as client:
        assert client.post("/predict", json=RECORD).status_code == 200
        one = client.post("/predict", json=ODD)
        assert one.status_code == 422
        (detail,) = one.json()["detail"]
        assert detail["field"] == "body_mass_g"
        assert detail["loc"] == ["body", "body_mass_g"]
        assert detail["type"] == "out_of_distribution.above_range"
        assert "training range" in detail["msg"] and "--ood reject" in detail["msg"]
        many = client.post("/predict", json=[RECORD, WORSE])
        assert many.status_code == 422
        assert [(d["record"], d["field"]) for d in many.json()["detail"]] == [
            (1, "year"),
            (1, "bill_length_mm"),
        ]
        rejected = ("shipyard_out_of_distribution_records_total", (("action", "rejected"),))
        assert _samples(client)[rejected] == 2
        assert _samples(client)["shipyard_predictions_total", ()] == 1  # never reached the model


def test_v2_inference_is_checked_too(package: ModelPackage) -> None:
    inputs = [
        {
            "name": name,
            "shape": [1, 1],
            "datatype": "FP64" if isinstance(v, float) else "BYTES",
            "data": [v],
        }
        for name, v in ODD.items()
    ]
    inputs[-1] = {"name": "year", "shape": [1, 1], "datatype": "INT64", "data": [2008]}
    body = {"inputs": inputs}
    with TestClient(create_app(package, config=ServeConfig(ood="reject"))) as client:
        refused = client.post("/v2/models/penguins-multiclass/infer", json=body)
        assert refused.status_code == 422, refused.text
        assert "body_mass_g" in refused.json()["error"]
    with TestClient(create_app(package)) as client:
        assert client.post("/v2/models/penguins-multiclass/infer", json=body).status_code == 200
        assert _ood(client) == {("body_mass_g", "above_range"): 1}


def test_off_and_packages_without_a_profile_check_nothing(package: ModelPackage) -> None:
    for app in (
        create_app(package, config=ServeConfig(ood="off")),
        create_app(dataclasses.replace(package, profile=None)),
    ):
        assert app.shipyard.slot.domain is None
        with TestClient(app) as client:
            assert client.post("/predict", json=ODD).status_code == 200
            assert _ood(client) == {}


def test_the_margin_is_configurable(package: ModelPackage) -> None:
    wide = ServeConfig(ood="reject", ood_margin=100.0)
    with TestClient(create_app(package, config=wide)) as client:
        assert client.post("/predict", json=ODD).status_code == 200
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        ServeConfig(ood_margin=-0.5)

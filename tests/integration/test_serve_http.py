"""The prediction server over real HTTP: uvicorn in a thread on a free loopback port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn
from palmerpenguins import load_penguins
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.data import ColumnSchema, Signature, coerce_frame
from shipyard.registry import ModelPackage
from shipyard.serve import ServeConfig, create_app

pytestmark = pytest.mark.http

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]


def _build_package() -> ModelPackage:
    frame = load_penguins()
    inputs = [
        ColumnSchema(
            name=c,
            kind="category",
            dtype="str",
            nullable=True,
            categories=tuple(sorted(frame[c].dropna().unique())),
        )
        for c in CATEGORICAL
    ] + [
        ColumnSchema(
            name=c,
            kind="number",
            dtype="float64",
            nullable=True,
            minimum=float(frame[c].min()),
            maximum=float(frame[c].max()),
        )
        for c in NUMERIC
    ]
    classes = tuple(sorted(frame["species"].unique()))
    sig = Signature(inputs=tuple(inputs), classes=classes)
    features = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                CATEGORICAL,
            ),
        ]
    )
    pipeline = Pipeline([("features", features), ("model", LogisticRegression(max_iter=500))])
    pipeline.fit(coerce_frame(frame, sig), frame["species"].to_numpy())
    meta = {"name": "penguins", "version": 1}
    return ModelPackage(pipeline=pipeline, signature=sig, task="multiclass", metadata=meta)


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    return _build_package()


@pytest.fixture(scope="module")
def base_url(package: ModelPackage) -> Iterator[str]:
    app = create_app(package, config=ServeConfig(max_body_bytes=64 * 1024))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn exited during startup"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
    assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def _rows(n: int) -> list[dict[str, Any]]:
    frame = load_penguins()[CATEGORICAL + NUMERIC].iloc[::7].head(n)
    return json.loads(frame.to_json(orient="records"))


def test_ready_and_health(http: httpx.Client) -> None:
    assert http.get("/health").status_code == 200
    assert http.get("/ready").json() == {"status": "ready"}


def test_served_predictions_equal_package(http: httpx.Client, package: ModelPackage) -> None:
    rows = _rows(40)
    served = http.post("/predict", json=rows).json()["predictions"]
    expected = package.predict(pd.DataFrame(rows)).to_records()
    assert [s["prediction"] for s in served] == [e["prediction"] for e in expected]
    for got, want in zip(served, expected, strict=True):
        assert got["probabilities"] == pytest.approx(want["probabilities"])
    one = http.post("/predict", json=rows[0]).json()
    assert one["prediction"] == expected[0]["prediction"]


def test_bad_record_over_http(http: httpx.Client) -> None:
    rows = _rows(3)
    rows[1]["island"] = "Atlantis"
    response = http.post("/predict", json=rows)
    assert response.status_code == 422
    (err,) = response.json()["detail"]
    assert (err["record"], err["field"]) == (1, "island")


def test_streamed_body_over_limit_is_413(http: httpx.Client) -> None:
    record = json.dumps(_rows(1)[0]).encode()

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(2000):  # ~300 kB, over the 64 kB limit, sent chunked
            yield record + b","
        yield record + b"]"

    headers = {"content-type": "application/json"}
    response = http.post("/predict", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert response.json()["detail"][0]["type"] == "body_too_large"
    assert http.get("/health").status_code == 200


def test_metrics_over_http(http: httpx.Client) -> None:
    text = http.get("/metrics").text
    assert 'shipyard_model_info{name="penguins",runtime="sklearn",version="1"} 1.0' in text
    assert "shipyard_predictions_total" in text

"""The server answers a binary model's requests by the decision threshold its package records."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from palmerpenguins import load_penguins
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from test_serve_app import RECORD, _signature, penguin_rows

from shipyard.data import coerce_frame
from shipyard.features import build_features
from shipyard.registry import ModelPackage
from shipyard.serve import ServeConfig, create_app

POSITIVE, NEGATIVE = "Gentoo", "other"


def _package(threshold: float | None) -> ModelPackage:
    """Gentoo or not: a binary penguin model, with or without a decision threshold."""
    frame = load_penguins()
    y = np.where(frame["species"] == POSITIVE, POSITIVE, NEGATIVE)
    sig = _signature(frame, "species", tuple(sorted({NEGATIVE, POSITIVE})))  # Gentoo first
    features = build_features(sig)  # converts to ONNX (the test app's own features do not)
    pipeline = Pipeline([("features", features), ("model", LogisticRegression(C=0.01))])
    pipeline.fit(coerce_frame(frame, sig), y)
    meta: dict[str, Any] = {"name": "gentoo", "version": 1}
    if threshold is not None:
        rule = {"threshold": threshold, "metric": "f1", "positive": POSITIVE}
        meta["decision_threshold"] = rule
    return ModelPackage(pipeline=pipeline, signature=sig, task="binary", metadata=meta)


def _answers(package: ModelPackage, runtime: str, rows: list[dict[str, Any]]) -> list[Any]:
    config = ServeConfig(max_records=500, runtime=runtime)
    with TestClient(create_app(package, config=config)) as client:
        response = client.post("/predict", json=rows)
        assert response.status_code == 200, response.text
        return list(response.json()["predictions"])


@pytest.mark.parametrize("runtime", ["sklearn", "onnx"])
def test_the_server_labels_by_the_packages_threshold(runtime: str) -> None:
    rows = [*penguin_rows(344), RECORD]
    plain = _package(None)
    predictions = plain.predict(pd.DataFrame(rows))
    assert predictions.probabilities is not None and predictions.classes is not None
    p_gentoo = predictions.probabilities[:, predictions.classes.index(POSITIVE)]
    gentoo = np.sort(p_gentoo)
    # between two well-separated probabilities, high enough to relabel some Gentoo answers
    i = next(j for j in range(int(0.85 * len(gentoo)), 0, -1) if gentoo[j] - gentoo[j - 1] > 1e-3)
    threshold = float((gentoo[i] + gentoo[i - 1]) / 2)
    tuned = _package(threshold)
    if runtime == "onnx":
        from shipyard.train._onnx import convert_to_onnx

        for package in (plain, tuned):
            package.onnx = convert_to_onnx(package.pipeline, package.signature)
    before = _answers(plain, runtime, rows)
    after = _answers(tuned, runtime, rows)
    expected = np.where(p_gentoo >= threshold, POSITIVE, NEGATIVE).tolist()
    assert [a["prediction"] for a in after] == expected
    assert [b["prediction"] for b in before] != expected  # the threshold changed answers
    for b, a in zip(before, after, strict=True):  # and left the probabilities alone
        assert a["probabilities"] == pytest.approx(b["probabilities"])

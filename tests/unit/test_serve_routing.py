"""Canary and shadow: which version answers, what the shadow scores, and what is counted."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_serve_app import RECORD, _samples, build_package, without_ids

from shipyard.model import ModelPackage
from shipyard.serve import create_app


def _version(package: ModelPackage, version: int) -> ModelPackage:
    return dataclasses.replace(package, metadata={**package.metadata, "version": version})


class _Constant:
    """A classifier that always says Adelie (a shadow that disagrees with Gentoos)."""

    classes_ = np.array(["Adelie", "Chinstrap", "Gentoo"])

    def predict_proba(self, x: Any) -> Any:
        return np.tile([1.0, 0.0, 0.0], (len(x), 1))


class _Broken:
    classes_ = np.array(["Adelie", "Chinstrap", "Gentoo"])

    def predict_proba(self, x: Any) -> Any:
        raise RuntimeError("broken shadow")


@pytest.fixture(scope="module")
def primary() -> ModelPackage:
    return _version(build_package("multiclass"), 1)


def _wait_for(client: TestClient, key: tuple[str, tuple[tuple[str, str], ...]], n: float) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        samples = _samples(client)
        if samples.get(key, 0) >= n:
            return samples
        time.sleep(0.02)
    raise AssertionError(f"{key} never reached {n}: {samples}")


def test_a_canary_answers_its_share_and_says_so(primary: ModelPackage) -> None:
    canary = _version(primary, 2)
    app = create_app(primary, canary=(canary, 0.5))
    with TestClient(app) as client:
        responses = [client.post("/predict", json=RECORD) for _ in range(200)]
        samples = _samples(client)
        meta = client.get("/metadata").json()
    versions = [r.headers["x-shipyard-model"] for r in responses]
    assert all(r.status_code == 200 for r in responses)
    named = zip(responses, versions, strict=True)
    assert all(r.json()["model"]["version"] == v.split("/")[1] for r, v in named)
    n_canary = versions.count("penguins-multiclass/2")
    assert 50 < n_canary < 150  # about half, at random
    assert samples["shipyard_routed_records_total", (("role", "canary"), ("version", "2"))] == (
        n_canary
    )
    assert samples["shipyard_routed_records_total", (("role", "primary"), ("version", "1"))] == (
        200 - n_canary
    )
    assert meta["canary"] == {"name": "penguins-multiclass", "version": "2", "share": 0.5}


def test_a_shadow_scores_every_request_and_changes_no_answer(primary: ModelPackage) -> None:
    shadow = dataclasses.replace(_version(primary, 7), pipeline=_Constant())
    rows = [RECORD, {**RECORD, "island": "Torgersen", "bill_length_mm": 39.0}]
    with TestClient(create_app(primary)) as alone:
        expected = [alone.post("/predict", json=r).json() for r in rows]
    with TestClient(create_app(primary, shadow=shadow)) as client:
        answers = [client.post("/predict", json=r).json() for r in rows]
        samples = _samples(client)
        agree = ("shipyard_shadow_records_total", (("outcome", "agree"),))
        disagree = ("shipyard_shadow_records_total", (("outcome", "disagree"),))
        deadline = time.monotonic() + 30
        while samples.get(agree, 0) + samples.get(disagree, 0) < 2:
            assert time.monotonic() < deadline, samples
            time.sleep(0.02)
            samples = _samples(client)
        assert client.get("/metadata").json()["shadow"]["version"] == "7"
    assert [without_ids(a) for a in answers] == [without_ids(e) for e in expected]
    said = [a["prediction"] for a in answers]
    assert samples.get(agree, 0) == said.count("Adelie")
    assert samples.get(disagree, 0) == 2 - said.count("Adelie")


def test_a_failing_shadow_never_fails_a_request(primary: ModelPackage) -> None:
    shadow = dataclasses.replace(_version(primary, 8), pipeline=_Broken())
    app = create_app(primary, shadow=shadow)
    with TestClient(app) as client:
        # the shadow cannot warm up, so the server says it is not ready ...
        assert client.get("/ready").status_code == 503
        # ... but every request is still answered by the primary
        assert all(client.post("/predict", json=RECORD).status_code == 200 for _ in range(5))
        _wait_for(client, ("shipyard_shadow_records_total", (("outcome", "failed"),)), 5)


@pytest.mark.parametrize("share", [0.0, 1.0, 1.5])
def test_the_canary_share_is_a_proper_fraction(primary: ModelPackage, share: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        create_app(primary, canary=(_version(primary, 2), share))

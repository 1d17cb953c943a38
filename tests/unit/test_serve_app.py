"""The prediction server app over FastAPI's TestClient: every endpoint and every bad input."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from palmerpenguins import load_penguins
from prometheus_client.parser import text_string_to_metric_families
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.data import ColumnSchema, Signature, coerce_frame
from shipyard.errors import PredictionError
from shipyard.registry import ModelPackage
from shipyard.serve import ServeConfig, create_app

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]


def _signature(frame: pd.DataFrame, target: str | None, classes: Any) -> Signature:
    inputs = [
        ColumnSchema(
            name=c,
            kind="category",
            dtype="str",
            nullable=True,
            categories=tuple(sorted(frame[c].dropna().unique())),
        )
        for c in CATEGORICAL
    ]
    inputs += [
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
    inputs.append(
        ColumnSchema(name="year", kind="integer", dtype="int64", nullable=False, minimum=2007.0)
    )
    return Signature(inputs=tuple(inputs), classes=classes)


def _features() -> ColumnTransformer:
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    return ColumnTransformer(
        [("num", numeric, [*NUMERIC, "year"]), ("cat", categorical, CATEGORICAL)]
    )


def without_ids(answer: dict[str, Any]) -> dict[str, Any]:
    """A response body without its prediction ids (new for every request)."""
    out = {k: v for k, v in answer.items() if k != "prediction_id"}
    if "predictions" in out:
        out["predictions"] = [without_ids(p) for p in out["predictions"]]
    return out


def build_package(task: str) -> ModelPackage:
    """Fit a small penguin model: species (multiclass) or body mass (regression)."""
    frame = load_penguins()
    if task == "regression":
        frame = frame.dropna(subset=["body_mass_g"])
        y = frame["body_mass_g"].to_numpy()
        sig = _signature(frame, "body_mass_g", None)
        estimator: Any = RandomForestRegressor(n_estimators=10, random_state=0)
    else:
        y = frame["species"].to_numpy()
        sig = _signature(frame, "species", tuple(sorted(set(y))))
        estimator = LogisticRegression(max_iter=500)
    x = coerce_frame(frame, sig)
    pipeline = Pipeline([("features", _features()), ("model", estimator)]).fit(x, y)
    meta = {"name": f"penguins-{task}", "version": 3, "metrics": {"score": 0.9}}
    meta["lineage"] = {"dataset": "palmerpenguins"}
    return ModelPackage(pipeline=pipeline, signature=sig, task=task, metadata=meta)


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    return build_package("multiclass")


@pytest.fixture(scope="module")
def regression_package() -> ModelPackage:
    return build_package("regression")


@pytest.fixture
def client(package: ModelPackage) -> Iterator[TestClient]:
    with TestClient(create_app(package, config=ServeConfig(max_records=50))) as c:
        yield c


def penguin_rows(n: int) -> list[dict[str, Any]]:
    """The first ``n`` penguins as JSON records (NaN as null), some with missing values."""
    frame = load_penguins().drop(columns=["species"]).head(n)
    return json.loads(frame.to_json(orient="records"))


RECORD = {
    "island": "Biscoe",
    "sex": "female",
    "bill_length_mm": 45.0,
    "bill_depth_mm": 15.0,
    "flipper_length_mm": 215.0,
    "body_mass_g": 5000.0,
    "year": 2008,
}


def _detail(response: Any, status: int = 422) -> list[dict[str, Any]]:
    assert response.status_code == status, response.text
    return response.json()["detail"]


# --- happy paths -------------------------------------------------------------------------


def test_predict_one_record_matches_package(client: TestClient, package: ModelPackage) -> None:
    body = client.post("/predict", json=RECORD).json()
    expected = package.predict(pd.DataFrame([RECORD])).to_records()[0]
    assert body["prediction"] == expected["prediction"] == "Gentoo"
    assert body["probabilities"] == pytest.approx(expected["probabilities"])
    assert set(body["probabilities"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert body["model"] == {"name": "penguins-multiclass", "version": "3"}


def test_predict_list_matches_package(client: TestClient, package: ModelPackage) -> None:
    rows = penguin_rows(40)
    body = client.post("/predict", json=rows).json()
    expected = package.predict(pd.DataFrame(rows)).to_records()
    assert [p["prediction"] for p in body["predictions"]] == [e["prediction"] for e in expected]
    for got, want in zip(body["predictions"], expected, strict=True):
        assert got["probabilities"] == pytest.approx(want["probabilities"])
    assert body["model"]["name"] == "penguins-multiclass"


def test_explicit_nulls_are_imputed(client: TestClient) -> None:
    record = {**RECORD, "sex": None, "bill_length_mm": None}
    response = client.post("/predict", json=record)
    assert response.status_code == 200
    assert response.json()["prediction"] in {"Adelie", "Chinstrap", "Gentoo"}


def test_integer_accepted_for_number_field(client: TestClient) -> None:
    assert client.post("/predict", json={**RECORD, "body_mass_g": 5000}).status_code == 200


def test_regression_has_no_probabilities(regression_package: ModelPackage) -> None:
    with TestClient(create_app(regression_package)) as c:
        one = c.post("/predict", json=RECORD).json()
        many = c.post("/predict", json=penguin_rows(5)).json()
    expected = regression_package.predict(pd.DataFrame([RECORD])).labels[0]
    assert one["prediction"] == pytest.approx(expected)
    assert "probabilities" not in one
    assert len(many["predictions"]) == 5
    assert all(isinstance(p["prediction"], float) for p in many["predictions"])


def test_extra_fields_are_ignored_and_counted_by_default(package: ModelPackage) -> None:
    with TestClient(create_app(package)) as c:
        plain = c.post("/predict", json=RECORD).json()
        both = c.post("/predict", json={**RECORD, "colour": "blue", "id": 7}).json()
        rows = c.post("/predict", json=[{**RECORD, "colour": "red"}, RECORD])
        assert rows.status_code == 200
        assert without_ids(both) == without_ids(plain)  # the ignored fields change nothing
        samples = _samples(c)
    assert samples["shipyard_ignored_fields_total", (("field", "colour"),)] == 2
    assert samples["shipyard_ignored_fields_total", (("field", "id"),)] == 1


def test_ignored_field_names_are_capped_in_metrics(package: ModelPackage) -> None:
    from shipyard.serve._metrics import MAX_IGNORED_NAMES

    with TestClient(create_app(package)) as c:
        for i in range(MAX_IGNORED_NAMES + 5):
            assert c.post("/predict", json={**RECORD, f"junk{i}": 1}).status_code == 200
        samples = _samples(c)
    names = {dict(k[1])["field"] for k in samples if k[0] == "shipyard_ignored_fields_total"}
    assert len(names) == MAX_IGNORED_NAMES + 1
    assert samples["shipyard_ignored_fields_total", (("field", "<other>"),)] == 5


# --- bad requests --------------------------------------------------------------------------


def test_wrong_type_names_field(client: TestClient) -> None:
    (err,) = _detail(client.post("/predict", json={**RECORD, "bill_length_mm": "long"}))
    assert err["field"] == "bill_length_mm"
    assert err["loc"] == ["body", "bill_length_mm"]
    assert err["input"] == "long"
    assert "valid number" in err["msg"]
    assert "record" not in err


def test_string_boolean_is_not_a_number(client: TestClient) -> None:
    (err,) = _detail(client.post("/predict", json={**RECORD, "year": "2008"}))
    assert err["field"] == "year"


def test_missing_field_is_named(client: TestClient) -> None:
    record = {k: v for k, v in RECORD.items() if k != "island"}
    (err,) = _detail(client.post("/predict", json=record))
    assert err["field"] == "island"
    assert err["type"] == "missing"
    assert "'island' is required" in err["msg"]


def test_unknown_category_lists_allowed_values(client: TestClient) -> None:
    (err,) = _detail(client.post("/predict", json={**RECORD, "island": "Atlantis"}))
    assert err["field"] == "island"
    assert err["input"] == "Atlantis"
    for allowed in ("Biscoe", "Dream", "Torgersen"):
        assert allowed in err["msg"]


def test_unknown_extra_field_is_refused_with_strict_inputs(package: ModelPackage) -> None:
    with TestClient(create_app(package, config=ServeConfig(extra_fields="forbid"))) as c:
        (err,) = _detail(c.post("/predict", json={**RECORD, "colour": "blue"}))
        assert err["field"] == "colour"
        assert "unknown field 'colour'" in err["msg"]
        assert "island" in err["msg"]


def test_list_errors_name_record_index(client: TestClient) -> None:
    rows = [RECORD, RECORD, {**RECORD, "sex": "other"}]
    (err,) = _detail(client.post("/predict", json=rows))
    assert err["record"] == 2
    assert err["field"] == "sex"
    assert err["loc"] == ["body", 2, "sex"]
    assert err["msg"].startswith("record 2:")


def test_non_object_record_in_list(client: TestClient) -> None:
    (err,) = _detail(client.post("/predict", json=[RECORD, 5]))
    assert err["record"] == 1
    assert err["field"] is None


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"island": "Biscoe",', "not valid JSON"),
        (b"[1, 2", "not valid JSON"),
        (b"", "empty body"),
        (b"42", "JSON object"),
        (b'"text"', "JSON object"),
    ],
)
def test_malformed_body(client: TestClient, content: bytes, needle: str) -> None:
    response = client.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    (err,) = _detail(response)
    assert needle in err["msg"]


def test_empty_list(client: TestClient) -> None:
    (err,) = _detail(client.post("/predict", json=[]))
    assert "empty" in err["msg"]


def test_too_many_records(client: TestClient) -> None:
    (err,) = _detail(client.post("/predict", json=[RECORD] * 51), status=413)
    assert "51 records" in err["msg"]
    assert "50" in err["msg"]


def test_wrong_content_type(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b"island=Biscoe", headers={"content-type": "text/plain"}
    )
    (err,) = _detail(response, status=415)
    assert "application/json" in err["msg"]
    assert "text/plain" in err["msg"]


def test_unknown_route_uses_error_shape(client: TestClient) -> None:
    (err,) = _detail(client.get("/nope"), status=404)
    assert err["type"] == "http_404"


def test_body_over_content_length_limit(package: ModelPackage) -> None:
    app = create_app(package, config=ServeConfig(max_body_bytes=200))
    with TestClient(app) as c:
        (err,) = _detail(c.post("/predict", json=[RECORD] * 5), status=413)
        assert "found 686 bytes" in err["msg"] and "body limit of 200 bytes" in err["msg"]
        assert c.post("/predict", json=RECORD).status_code == 200


def test_chunked_body_over_limit(package: ModelPackage) -> None:
    app = create_app(package, config=ServeConfig(max_body_bytes=200))

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(10):
            yield json.dumps(RECORD).encode() + b","
        yield b"{}]"

    with TestClient(app) as c:
        headers = {"content-type": "application/json"}
        response = c.post("/predict", content=chunks(), headers=headers)
    (err,) = _detail(response, status=413)
    assert err["type"] == "body_too_large"


class _FailingPipeline:
    classes_ = np.array(["a", "b"])

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        raise self.exc


def _failing_package(package: ModelPackage, exc: Exception) -> ModelPackage:
    return ModelPackage(
        pipeline=_FailingPipeline(exc), signature=package.signature, task="binary", metadata={}
    )


def test_model_crash_is_generic_500_and_logged(
    package: ModelPackage, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_failing_package(package, RuntimeError("secret internals")))
    with caplog.at_level(logging.ERROR, logger="shipyard.serve"), TestClient(app) as c:
        response = c.post("/predict", json=RECORD)
        assert c.get("/ready").status_code == 503  # the warm-up failed too
    (err,) = _detail(response, status=500)
    assert "secret" not in response.text
    assert "server log" in err["msg"]
    assert "secret internals" in caplog.text


def test_prediction_error_is_422(package: ModelPackage) -> None:
    app = create_app(_failing_package(package, PredictionError("column 'x' is odd")))
    with TestClient(app) as c:
        (err,) = _detail(c.post("/predict", json=RECORD))
    assert err["msg"] == "column 'x' is odd"


# --- operations endpoints ------------------------------------------------------------------


def test_health_and_ready(package: ModelPackage) -> None:
    app = create_app(package)
    plain = TestClient(app)  # no lifespan: the model has not been warmed up
    assert plain.get("/health").json() == {"status": "ok"}
    assert plain.get("/ready").status_code == 503
    with TestClient(app) as c:
        assert c.get("/ready").json() == {"status": "ready"}


def test_metadata(client: TestClient) -> None:
    meta = client.get("/metadata").json()
    assert meta["name"] == "penguins-multiclass"
    assert meta["version"] == "3"
    assert meta["task"] == "multiclass"
    assert meta["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert meta["metrics"] == {"score": 0.9}
    assert meta["lineage"] == {"dataset": "palmerpenguins"}
    assert [c["name"] for c in meta["signature"]["inputs"]][:2] == ["island", "sex"]


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_and_predictions(client: TestClient) -> None:
    client.post("/predict", json=RECORD)
    client.post("/predict", json=penguin_rows(4))
    client.post("/predict", json={**RECORD, "island": "Atlantis"})
    client.get("/nope/123")
    samples = _samples(client)
    ok = (("method", "POST"), ("route", "/predict"), ("status", "200"))
    bad = (("method", "POST"), ("route", "/predict"), ("status", "422"))
    assert samples["shipyard_http_requests_total", ok] == 2
    assert samples["shipyard_http_requests_total", bad] == 1
    unmatched = (("method", "GET"), ("route", "<unmatched>"), ("status", "404"))
    assert samples["shipyard_http_requests_total", unmatched] == 1
    assert samples["shipyard_predictions_total", ()] == 5
    assert samples["shipyard_http_request_duration_seconds_count", (("route", "/predict"),)] == 3
    info = (("name", "penguins-multiclass"), ("runtime", "sklearn"), ("version", "3"))
    assert samples["shipyard_model_info", info] == 1
    # two model calls (one and four rows); the bad record never reached the model
    assert samples["shipyard_batch_rows_count", ()] == 2
    assert samples["shipyard_batch_rows_sum", ()] == 5
    assert samples["shipyard_batch_requests_sum", ()] == 2
    assert samples["shipyard_queue_rows", ()] == 0


def test_metrics_registry_is_per_app(package: ModelPackage) -> None:
    with TestClient(create_app(package)) as a, TestClient(create_app(package)) as b:
        a.post("/predict", json=RECORD)
        assert _samples(a)["shipyard_predictions_total", ()] == 1
        assert _samples(b)["shipyard_predictions_total", ()] == 0


# --- OpenAPI --------------------------------------------------------------------------------


def test_openapi_shows_generated_record_model(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    record = spec["components"]["schemas"]["PenguinsMulticlassRecord"]
    props = record["properties"]
    assert record["required"] == [
        "island",
        "sex",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "year",
    ]
    assert record["additionalProperties"] is True  # other fields are ignored (and counted)
    assert props["island"]["anyOf"][0]["enum"] == ["Biscoe", "Dream", "Torgersen"]
    assert props["bill_length_mm"]["anyOf"][0]["type"] == "number"
    assert props["year"]["anyOf"][0]["type"] == "integer"
    assert record["example"]["island"] == "Biscoe"
    assert record["example"]["bill_length_mm"] == pytest.approx((32.1 + 59.6) / 2)


def test_openapi_predict_operation(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/predict"]["post"]
    content = op["requestBody"]["content"]["application/json"]
    ref = "#/components/schemas/PenguinsMulticlassRecord"
    assert content["schema"]["oneOf"][0] == {"$ref": ref}
    assert content["schema"]["oneOf"][1]["items"] == {"$ref": ref}
    assert content["schema"]["oneOf"][1]["maxItems"] == 50
    assert content["examples"]["one record"]["value"]["island"] == "Biscoe"
    assert {"413", "415", "422", "500"} <= set(op["responses"])
    schemas = spec["components"]["schemas"]
    assert {"PenguinsMulticlassPrediction", "PenguinsMulticlassPredictions"} <= set(schemas)
    item = schemas["PenguinsMulticlassPredictionItem"]["properties"]["prediction"]
    assert item["enum"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert client.get("/docs").status_code == 200


def test_openapi_example_predicts(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    for example in content["examples"].values():
        assert client.post("/predict", json=example["value"]).status_code == 200


def test_every_column_kind_reaches_the_model() -> None:
    """boolean, datetime and string fields go through validation and coerce_frame."""
    sig = Signature(
        inputs=(
            ColumnSchema(name="n", kind="number", dtype="float64", nullable=True),
            ColumnSchema(name="flag", kind="boolean", dtype="bool", nullable=True),
            ColumnSchema(name="when", kind="datetime", dtype="datetime64[ns]", nullable=True),
            ColumnSchema(name="note", kind="string", dtype="str", nullable=True),
        )
    )
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {
            "n": rng.normal(size=60),
            "flag": rng.integers(0, 2, size=60).astype(bool),
            "when": pd.date_range("2024-01-01", periods=60, freq="D"),
            "note": ["x"] * 60,
        }
    )
    y = np.where(train["flag"], 10.0, 0.0) + train["n"]
    features = ColumnTransformer([("num", SimpleImputer(), ["n", "flag"])])
    pipeline = make_pipeline(features, RandomForestRegressor(n_estimators=5, random_state=0))
    pipeline.fit(coerce_frame(train, sig), y)
    package = ModelPackage(pipeline=pipeline, signature=sig, task="regression")
    records = [
        {"n": 0.5, "flag": True, "when": "2024-03-01T10:00:00", "note": "hello"},
        {"n": None, "flag": None, "when": None, "note": None},
    ]
    with TestClient(create_app(package)) as c:
        assert c.get("/ready").status_code == 200
        body = c.post("/predict", json=records).json()
        assert c.post("/predict", json={**records[0], "flag": "yes"}).status_code == 422
    expected = package.predict(pd.DataFrame(records)).labels
    assert [p["prediction"] for p in body["predictions"]] == pytest.approx(list(expected))
    assert body["model"] == {"name": None, "version": None}


def test_docs_requests_are_counted_by_path_and_unknown_paths_as_unmatched(
    package: ModelPackage,
) -> None:
    with TestClient(create_app(package)) as c:
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/no/such/path").status_code == 404
        text = c.get("/metrics").text
    assert 'route="/openapi.json",status="200"' in text
    assert 'route="<unmatched>",status="404"' in text


# --- non-finite numbers ----------------------------------------------------------------------

NON_FINITE_TOKENS = ["Infinity", "-Infinity", "NaN", "1e400", "-1e400", "1" + "0" * 400]


def _raw_body(record: dict[str, Any], field: str, token: str) -> bytes:
    """A JSON body with ``token`` written verbatim as ``field``'s value (json cannot emit it)."""
    text = json.dumps({**record, field: "__TOKEN__"})
    return text.replace('"__TOKEN__"', token).encode()


def _post_raw(client: TestClient, body: bytes) -> Any:
    return client.post("/predict", content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("token", NON_FINITE_TOKENS)
@pytest.mark.parametrize("field", ["bill_length_mm", "year", "island"])
def test_non_finite_number_is_422_naming_the_field(
    client: TestClient, field: str, token: str
) -> None:
    (err,) = _detail(_post_raw(client, _raw_body(RECORD, field, token)))
    assert err["field"] == field
    assert err["loc"] == ["body", field]
    assert repr(field) in err["msg"]
    json.dumps(err, allow_nan=False)  # the error itself is valid JSON: no NaN or inf echoed


@pytest.mark.parametrize("token", NON_FINITE_TOKENS)
def test_non_finite_number_in_a_list_names_record_and_field(client: TestClient, token: str) -> None:
    body = b"[" + json.dumps(RECORD).encode() + b"," + _raw_body(RECORD, "body_mass_g", token)
    (err,) = _detail(_post_raw(client, body + b"]"))
    assert (err["record"], err["field"]) == (1, "body_mass_g")


@pytest.mark.parametrize("field", ["bill_depth_mm", "year", "sex"])
@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN", "1e400"])
def test_non_finite_number_says_send_null(client: TestClient, field: str, token: str) -> None:
    (err,) = _detail(_post_raw(client, _raw_body(RECORD, field, token)))
    assert err["type"] == "finite_number"
    assert "null" in err["msg"]
    assert err["input"] == token.replace("1e400", "Infinity")


def test_nan_token_and_nan_string_are_both_refused_and_null_is_missing(
    client: TestClient,
) -> None:
    token = _post_raw(client, _raw_body(RECORD, "bill_length_mm", "NaN"))
    text = client.post("/predict", json={**RECORD, "bill_length_mm": "NaN"})
    assert (token.status_code, text.status_code) == (422, 422)
    assert client.post("/predict", json={**RECORD, "bill_length_mm": None}).status_code == 200


def test_integer_field_takes_64_bit_integers(client: TestClient) -> None:
    assert client.post("/predict", json={**RECORD, "year": 2**63 - 1}).status_code == 200
    (err,) = _detail(client.post("/predict", json={**RECORD, "year": 2**63}))
    assert err["field"] == "year"


def test_number_too_long_for_the_json_parser_is_a_422(client: TestClient) -> None:
    """Past 4300 digits the JSON parser itself refuses the number: still a 422, never a 500."""
    (err,) = _detail(_post_raw(client, _raw_body(RECORD, "year", "9" * 5000)))
    assert err["type"] == "json_invalid"
    assert "out of range" in err["msg"]


def test_large_finite_number_is_accepted(client: TestClient) -> None:
    big = _raw_body(RECORD, "body_mass_g", "1" + "0" * 300)  # 1e300: finite
    assert _post_raw(client, big).status_code == 200


@pytest.mark.parametrize(
    "token", [*NON_FINITE_TOKENS, "[1, NaN]", '{"a": {"b": -Infinity}}', '["x", 1e999]']
)
def test_non_finite_in_an_unknown_field_is_a_clean_422(package: ModelPackage, token: str) -> None:
    with TestClient(create_app(package, config=ServeConfig(extra_fields="forbid"))) as strict:
        (err,) = _detail(_post_raw(strict, _raw_body(RECORD, "colour", token)))
    assert err["field"] == "colour"
    json.dumps(err, allow_nan=False)


@pytest.mark.parametrize("token", NON_FINITE_TOKENS)
def test_an_ignored_field_is_ignored_whatever_it_holds(client: TestClient, token: str) -> None:
    response = _post_raw(client, _raw_body(RECORD, "colour", token))
    assert response.status_code == 200
    plain = client.post("/predict", json=RECORD).json()
    assert without_ids(response.json()) == without_ids(plain)


@pytest.mark.parametrize("token", NON_FINITE_TOKENS)
@pytest.mark.parametrize("field", ["n", "flag", "when", "note"])
def test_non_finite_in_every_column_kind_is_422(field: str, token: str) -> None:
    sig = Signature(
        inputs=(
            ColumnSchema(name="n", kind="number", dtype="float64", nullable=True),
            ColumnSchema(name="flag", kind="boolean", dtype="bool", nullable=True),
            ColumnSchema(name="when", kind="datetime", dtype="datetime64[ns]", nullable=True),
            ColumnSchema(name="note", kind="string", dtype="str", nullable=True),
        )
    )
    package = ModelPackage(
        pipeline=_FailingPipeline(RuntimeError("unused")), signature=sig, task="binary"
    )
    record = {"n": 0.5, "flag": True, "when": "2024-03-01T10:00:00", "note": "hello"}
    with TestClient(create_app(package)) as c:
        (err,) = _detail(_post_raw(c, _raw_body(record, field, token)))
    assert err["field"] == field
    json.dumps(err, allow_nan=False)


# --- error handling ----------------------------------------------------------------------------


def test_no_route_declares_parameters_for_fastapi_to_validate(package: ModelPackage) -> None:
    """FastAPI's own 422s have another shape: every request is validated by the server's code.

    If a route ever declares a query, path, header, cookie or body parameter, FastAPI would
    answer a bad one with its RequestValidationError 422; give it the server's error shape first.
    """
    from fastapi.routing import APIRoute

    from shipyard.serve._app import PredictEndpoint
    from shipyard.serve._v2 import InferEndpoint

    routes = [r for r in create_app(package).routes if isinstance(r, APIRoute)]
    assert {r.path for r in routes} >= {"/predict", "/health", "/ready", "/metadata", "/metrics"}
    # routes served by the server's own ASGI endpoints declare their body for the docs only
    served_raw = [r for r in routes if isinstance(r.app, PredictEndpoint | InferEndpoint)]
    assert len(served_raw) == 3
    for route in (r for r in routes if r not in served_raw):
        d = route.dependant
        # a str path parameter cannot fail validation (the V2 routes' model name and version)
        typed_paths = [p for p in d.path_params if p.field_info.annotation is not str]
        params = [*d.query_params, *typed_paths, *d.header_params, *d.cookie_params]
        assert params + d.body_params == [], f"{route.path} declares {params + d.body_params}"


def test_stray_query_string_is_ignored(client: TestClient) -> None:
    assert client.post("/predict?debug=1&x", json=RECORD).status_code == 200
    assert client.get("/metadata?fields=name").status_code == 200


# --- request size limits -------------------------------------------------------------------


def _many_rows(n: int) -> list[dict[str, Any]]:
    """``n`` realistic records: the penguins over and over, with their missing values."""
    frame = load_penguins().drop(columns=["species"])
    rows = json.loads(frame.to_json(orient="records"))
    return [rows[i % len(rows)] for i in range(n)]


@pytest.fixture(scope="module")
def default_client(package: ModelPackage) -> Iterator[TestClient]:
    with TestClient(create_app(package)) as c:
        yield c


def _max_items(client: TestClient) -> int:
    content = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]
    (many,) = [s for s in content["content"]["application/json"]["schema"]["oneOf"] if "items" in s]
    return int(many["maxItems"])


@pytest.mark.parametrize("indent", [None, 2])
def test_default_limits_take_as_many_records_as_advertised(
    default_client: TestClient, indent: int | None
) -> None:
    n = _max_items(default_client)
    assert n == 10_000
    body = json.dumps(_many_rows(n), indent=indent).encode()
    response = _post_raw(default_client, body)
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["predictions"]) == n


def test_one_record_over_the_record_limit_names_the_record_limit(
    default_client: TestClient,
) -> None:
    (err,) = _detail(default_client.post("/predict", json=_many_rows(10_001)), status=413)
    assert err["type"] == "too_many_records"
    assert "10001 records" in err["msg"] and "10000" in err["msg"]
    assert "--max-records" in err["msg"]


def test_body_over_the_byte_limit_names_the_byte_limit(default_client: TestClient) -> None:
    limit = default_client.app.shipyard.limits.max_body_bytes  # type: ignore[attr-defined]
    body = json.dumps(_many_rows(10)).encode()
    body += b" " * (limit + 1 - len(body))
    (err,) = _detail(_post_raw(default_client, body), status=413)
    assert err["type"] == "body_too_large"
    assert f"{limit + 1} bytes" in err["msg"] and f"{limit} bytes" in err["msg"]
    assert "--max-body-bytes" in err["msg"]


def test_explicit_limits_are_kept_and_advertised(package: ModelPackage) -> None:
    config = ServeConfig(max_records=20, max_body_bytes=50_000)
    with TestClient(create_app(package, config=config)) as c:
        assert _max_items(c) == 20
        assert c.post("/predict", json=_many_rows(20)).status_code == 200
        (err,) = _detail(c.post("/predict", json=_many_rows(21)), status=413)
        assert "20" in err["msg"]

"""The Open Inference Protocol (KServe V2 REST) routes over FastAPI's TestClient.

The models are real fitted packages (the penguins classifier with its ONNX graph, a penguin
body-mass regressor, and a small model with boolean and datetime inputs); every V2 answer is
compared with what ``POST /predict`` answers for the same rows.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from palmerpenguins import load_penguins
from prometheus_client.parser import text_string_to_metric_families

from shipyard.data import ColumnSchema, Signature, build_signature, coerce_frame, to_text
from shipyard.registry import ModelPackage
from shipyard.serve import BatchingConfig, ServeApp, ServeConfig, create_app
from shipyard.serve._v2 import V2_TAG, add_v2_routes, input_tensors
from shipyard.spec import parse_spec
from shipyard.store import read_predictions
from shipyard.train import default_catalogue, make_pipeline, refit
from shipyard.train._onnx import convert_to_onnx

INFER = "/v2/models/penguins/infer"


def _fit(frame: pd.DataFrame, target: str, task: str, meta: dict[str, Any]) -> ModelPackage:
    spec = parse_spec(f"name: m\ndata: {{source: {{type: csv, path: x.csv}}, target: {target}}}\n")
    signature = build_signature(frame, spec, task)
    estimator = default_catalogue().create("linear", task, seed=0, params={})
    y = frame[target] if task == "regression" else pd.Series(to_text(frame[target]), dtype=object)
    model = refit(make_pipeline(signature, estimator), coerce_frame(frame, signature), y)
    return ModelPackage(model, signature, task, meta)


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    """The penguins species classifier, served with its ONNX graph."""
    frame = load_penguins().dropna(subset=["species"]).reset_index(drop=True)
    fitted = _fit(frame, "species", "multiclass", {"name": "penguins", "version": 1})
    fitted.onnx = convert_to_onnx(fitted.pipeline, fitted.signature)
    return fitted


@pytest.fixture(scope="module")
def regression_package() -> ModelPackage:
    frame = load_penguins().dropna(subset=["body_mass_g"]).reset_index(drop=True)
    return _fit(frame, "body_mass_g", "regression", {"name": "mass", "version": 2})


@pytest.fixture(scope="module")
def mixed_package() -> ModelPackage:
    """A binary classifier over a number, a boolean and a datetime input (sklearn runtime)."""
    rng = np.random.default_rng(0)
    n = 80
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "member": rng.integers(0, 2, n).astype(bool),
            "joined": pd.date_range("2024-01-01", periods=n, freq="D"),
        }
    )
    frame["y"] = np.where(frame["x"] + frame["member"] > 0.5, "yes", "no")
    return _fit(frame, "y", "binary", {"name": "members"})


def with_v2(app: ServeApp) -> ServeApp:
    """``app`` with the V2 routes: added here until create_app adds them itself."""
    if not any(getattr(route, "path", None) == "/v2" for route in app.routes):
        add_v2_routes(app, app.shipyard)
    return app


@contextmanager
def v2_client(
    package: ModelPackage,
    config: ServeConfig | None = None,
    *,
    started: bool = True,
    **versions: Any,
) -> Iterator[TestClient]:
    """The server app with the V2 routes; ``started`` runs its lifespan (warm-up);
    ``versions`` are create_app's ``canary`` and ``shadow``."""
    app = create_app(package, config=config, **versions)
    with_v2(app)
    client = TestClient(app)
    if not started:
        yield client
        return
    with client:
        yield client


@pytest.fixture(scope="module")
def client(package: ModelPackage) -> Iterator[TestClient]:
    with v2_client(package, ServeConfig(max_records=2000)) as c:
        yield c


def penguin_rows(start: int, stop: int) -> list[dict[str, Any]]:
    """Penguins as /predict records (NaN as null), without the species."""
    frame = load_penguins().drop(columns=["species"]).iloc[start:stop]
    return json.loads(frame.to_json(orient="records"))


def _typed(value: Any, datatype: str) -> Any:
    """A value as a V2 client sends it for a tensor of ``datatype``."""
    if value is None:
        return None
    convert = {"FP64": float, "INT64": int, "BOOL": bool, "BYTES": str}[datatype]
    return convert(value)


def v2_inputs(metadata: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A V2 client's input tensors, built only from the metadata's inputs and the rows."""
    tensors = []
    for tensor in metadata["inputs"]:
        name, datatype = tensor["name"], tensor["datatype"]
        shape = [len(rows) if d == -1 else d for d in tensor["shape"]]
        data = [_typed(row.get(name), datatype) for row in rows]
        tensors.append({"name": name, "shape": shape, "datatype": datatype, "data": data})
    return tensors


def penguin_inputs(client: TestClient, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return v2_inputs(client.get("/v2/models/penguins").json(), rows)


def outputs_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in body["outputs"]}


def version(package: ModelPackage, number: int) -> ModelPackage:
    """The same model registered as another version."""
    return dataclasses.replace(package, metadata={**package.metadata, "version": number})


def metric(client: TestClient, name: str, **labels: str) -> float:
    """A sample's value in /metrics (0 when absent)."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def error(response: Any, status: int) -> str:
    """The V2 error message of a refusal with ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body
    return str(body["error"])


def with_tensor(inputs: list[dict[str, Any]], name: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**t, **changes} if t["name"] == name else t for t in inputs]


# --- a V2 client gets what /predict gives ------------------------------------------------


def test_a_client_built_from_the_metadata_gets_what_predict_gives(client: TestClient) -> None:
    rows = penguin_rows(0, 12)  # row 3 is all missing values
    metadata = client.get("/v2/models/penguins").json()
    response = client.post(INFER, json={"id": "req-7", "inputs": v2_inputs(metadata, rows)})
    assert response.status_code == 200, response.text
    predict = client.post("/predict", json=rows)
    assert response.headers["x-shipyard-model"] == predict.headers["x-shipyard-model"]
    body, expected = response.json(), predict.json()["predictions"]
    assert (body["model_name"], body["model_version"], body["id"]) == ("penguins", "1", "req-7")
    outputs = outputs_by_name(body)
    assert outputs["label"] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [12],
        "data": [p["prediction"] for p in expected],
    }
    classes = next(o for o in metadata["outputs"] if o["name"] == "probabilities")
    classes = classes["parameters"]["classes"]
    assert classes == ["Adelie", "Chinstrap", "Gentoo"]
    probabilities = outputs["probabilities"]
    assert probabilities["shape"] == [12, 3]
    assert probabilities["parameters"] == {"classes": classes}
    # the same numbers, bit for bit: row-major, one row per record, classes in order
    assert probabilities["data"] == [p["probabilities"][c] for p in expected for c in classes]


def test_model_metadata_describes_every_input_and_output(client: TestClient) -> None:
    metadata = client.get("/v2/models/penguins").json()
    assert metadata["name"] == "penguins"
    assert metadata["versions"] == ["1"]
    assert metadata["platform"] == "shipyard-onnx"
    assert metadata["inputs"] == [
        {"name": "island", "datatype": "BYTES", "shape": [-1, 1]},
        {"name": "bill_length_mm", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "bill_depth_mm", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "flipper_length_mm", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "body_mass_g", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "sex", "datatype": "BYTES", "shape": [-1, 1]},
        {"name": "year", "datatype": "INT64", "shape": [-1, 1]},
    ]
    assert metadata["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {
            "name": "probabilities",
            "datatype": "FP64",
            "shape": [-1, 3],
            "parameters": {"classes": ["Adelie", "Chinstrap", "Gentoo"]},
        },
    ]
    assert client.get("/v2/models/penguins/versions/1").json() == metadata


def test_platform_names_the_live_runtime(package: ModelPackage) -> None:
    with v2_client(package, ServeConfig(runtime="sklearn")) as c:
        assert c.get("/v2/models/penguins").json()["platform"] == "shipyard-sklearn"


def test_input_datatypes_follow_the_column_kinds() -> None:
    kinds = {
        "n": ("number", "FP64"),
        "i": ("integer", "INT64"),
        "b": ("boolean", "BOOL"),
        "c": ("category", "BYTES"),
        "s": ("string", "BYTES"),
        "d": ("datetime", "BYTES"),
    }
    columns = [
        ColumnSchema(name=name, kind=kind, dtype="object", nullable=True)  # type: ignore[arg-type]
        for name, (kind, _) in kinds.items()
    ]
    tensors = input_tensors(Signature(inputs=tuple(columns)))
    assert tensors == [
        {"name": name, "datatype": datatype, "shape": [-1, 1]}
        for name, (_, datatype) in kinds.items()
    ]


def test_server_metadata(client: TestClient) -> None:
    assert client.get("/v2").json() == {
        "name": "shipyard",
        "version": importlib.metadata.version("shipyard"),
        "extensions": [],
    }


def test_flat_nested_and_one_dimensional_data_give_the_same_answer(client: TestClient) -> None:
    inputs = penguin_inputs(client, penguin_rows(20, 25))
    nested = [{**t, "data": [[v] for v in t["data"]]} for t in inputs]
    one_dim = [{**t, "shape": [5]} for t in inputs]
    answers = [client.post(INFER, json={"id": "x", "inputs": i}) for i in (inputs, nested, one_dim)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json() == answers[1].json() == answers[2].json()


def test_versioned_infer_and_requested_outputs(client: TestClient) -> None:
    inputs = penguin_inputs(client, penguin_rows(40, 43))
    request = {"id": "x", "inputs": inputs, "outputs": [{"name": "probabilities"}]}
    body = client.post("/v2/models/penguins/versions/1/infer", json=request).json()
    assert [o["name"] for o in body["outputs"]] == ["probabilities"]
    full = client.post(INFER, json={"id": "x", "inputs": inputs}).json()
    assert body["outputs"][0] == outputs_by_name(full)["probabilities"]


def test_a_request_without_id_gets_a_fresh_one(client: TestClient) -> None:
    inputs = penguin_inputs(client, penguin_rows(0, 1))
    ids = [client.post(INFER, json={"inputs": inputs}).json()["id"] for _ in range(2)]
    assert all(isinstance(i, str) and i for i in ids)
    assert ids[0] != ids[1]


def test_a_large_request_is_answered_in_full(client: TestClient) -> None:
    rows = penguin_rows(0, 344) * 5  # over the 64 kB past which bodies are decoded off the loop
    inputs = penguin_inputs(client, rows)
    response = client.post(INFER, json={"inputs": inputs})
    assert len(response.request.content) > 64 * 1024
    expected = client.post("/predict", json=rows).json()["predictions"]
    labels = outputs_by_name(response.json())["label"]["data"]
    assert labels == [p["prediction"] for p in expected]


def test_regression_answers_values_and_no_probabilities(
    regression_package: ModelPackage,
) -> None:
    with v2_client(regression_package) as c:
        metadata = c.get("/v2/models/mass/versions/2").json()
        assert metadata["platform"] == "shipyard-sklearn"
        assert metadata["outputs"] == [{"name": "label", "datatype": "FP64", "shape": [-1]}]
        rows = [{k: v for k, v in r.items() if k != "body_mass_g"} for r in penguin_rows(0, 6)]
        rows = [{**r, "species": "Adelie"} for r in rows]
        body = c.post("/v2/models/mass/infer", json={"inputs": v2_inputs(metadata, rows)}).json()
        expected = c.post("/predict", json=rows).json()["predictions"]
        assert body["outputs"] == [
            {
                "name": "label",
                "datatype": "FP64",
                "shape": [6],
                "data": [p["prediction"] for p in expected],
            }
        ]
        request = {"inputs": v2_inputs(metadata, rows), "outputs": [{"name": "probabilities"}]}
        msg = error(c.post("/v2/models/mass/infer", json=request), 400)
        assert "'probabilities'" in msg
        assert "['label']" in msg


def test_boolean_and_datetime_inputs(mixed_package: ModelPackage) -> None:
    rows = [
        {"x": 0.3, "member": True, "joined": "2024-02-01T00:00:00"},
        {"x": -1.2, "member": False, "joined": "2024-03-15T12:30:00"},
        {"x": None, "member": None, "joined": None},
    ]
    with v2_client(mixed_package) as c:
        metadata = c.get("/v2/models/members").json()
        assert [t["datatype"] for t in metadata["inputs"]] == ["FP64", "BOOL", "BYTES"]
        assert metadata["versions"] == []
        response = c.post("/v2/models/members/infer", json={"inputs": v2_inputs(metadata, rows)})
        body = response.json()
        assert "model_version" not in body  # an unversioned model
        expected = c.post("/predict", json=rows).json()["predictions"]
        outputs = outputs_by_name(body)
        assert outputs["label"]["data"] == [p["prediction"] for p in expected]
        assert outputs["probabilities"]["data"] == [
            p["probabilities"][c] for p in expected for c in ("no", "yes")
        ]
        assert c.get("/v2/models/members/versions/1").status_code == 404


# --- health -------------------------------------------------------------------------------


def test_health_and_readiness_once_warmed_up(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    for path in ("/v2/models/penguins/ready", "/v2/models/penguins/versions/1/ready"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {"name": "penguins", "ready": True}


def test_not_ready_before_warm_up(package: ModelPackage) -> None:
    with v2_client(package, started=False) as c:  # no lifespan: never warmed up
        assert c.get("/v2/health/live").status_code == 200
        ready = c.get("/v2/health/ready")
        assert (ready.status_code, ready.json()) == (503, {"ready": False})
        model_ready = c.get("/v2/models/penguins/ready")
        assert (model_ready.status_code, model_ready.json()) == (
            503,
            {"name": "penguins", "ready": False},
        )


# --- 404 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "named"),
    [
        ("GET", "/v2/models/gulls", "'gulls'"),
        ("GET", "/v2/models/gulls/ready", "'gulls'"),
        ("POST", "/v2/models/gulls/infer", "'gulls'"),
        ("GET", "/v2/models/penguins/versions/7", "'7'"),
        ("GET", "/v2/models/penguins/versions/7/ready", "'7'"),
        ("POST", "/v2/models/penguins/versions/7/infer", "'7'"),
        ("POST", "/v2/models/gulls/versions/1/infer", "'gulls'"),
    ],
)
def test_unknown_model_or_version_is_a_404(
    client: TestClient, method: str, path: str, named: str
) -> None:
    inputs = penguin_inputs(client, penguin_rows(0, 2))
    response = client.request(method, path, json={"inputs": inputs} if method == "POST" else None)
    msg = error(response, 404)
    assert named in msg
    assert "'penguins'" in msg


# --- malformed requests: 400 naming the tensor ----------------------------------------------


def _mutations(inputs: list[dict[str, Any]]) -> dict[str, tuple[Any, list[str]]]:
    """Bad requests built from good ``inputs`` (3 rows): (body, what the error must name)."""
    by_name = {t["name"]: t for t in inputs}
    island, year, mass = by_name["island"], by_name["year"], by_name["body_mass_g"]
    others = [t for t in inputs if t["name"] != "sex"]
    return {
        "data shorter than the shape": (
            with_tensor(inputs, "island", data=island["data"][:2]),
            ["'island'", "[3, 1]", "holds 3 values", "hold 2"],
        ),
        "a tensor with fewer rows": (
            with_tensor(inputs, "year", shape=[2, 1], data=year["data"][:2]),
            ["'year'", "2 rows", "3"],
        ),
        "a missing input": (others, ["missing input 'sex'"]),
        "an input twice": ([*inputs, island], ["'island'", "more than once"]),
        "FP64 for a category": (
            with_tensor(inputs, "island", datatype="FP64", data=[1.0, 2.0, 3.0]),
            ["'island'", "FP64", "category", "BYTES"],
        ),
        "FP64 for an integer": (
            with_tensor(inputs, "year", datatype="FP64"),
            ["'year'", "FP64", "integer", "INT64"],
        ),
        "BYTES for a number": (
            with_tensor(inputs, "body_mass_g", datatype="BYTES", data=["a", "b", "c"]),
            ["'body_mass_g'", "BYTES", "number", "FP64"],
        ),
        "an unknown datatype": (
            with_tensor(inputs, "island", datatype="STRING"),
            ["input 'island'", "datatype", "'STRING'"],
        ),
        "two columns in one tensor": (
            with_tensor(inputs, "island", shape=[3, 2]),
            ["'island'", "[3, 2]", "[n, 1] or [n]"],
        ),
        "a row vector": (with_tensor(inputs, "island", shape=[1, 3]), ["'island'", "[1, 3]"]),
        "nesting that breaks the shape": (
            with_tensor(inputs, "body_mass_g", data=[[1.0, 2.0], [3.0]]),
            ["'body_mass_g'", "nested", "[3, 1]"],
        ),
        "a string in an FP64 tensor": (
            with_tensor(inputs, "body_mass_g", data=[mass["data"][0], "heavy", None]),
            ["'body_mass_g'", "row 1", "'heavy'", "a number"],
        ),
        "a fraction in an INT64 tensor": (
            with_tensor(inputs, "year", data=[2007, 2007.5, 2008]),
            ["'year'", "INT64", "row 1", "2007.5", "an integer"],
        ),
        "a number in a BYTES tensor": (
            with_tensor(inputs, "sex", data=["male", 1, "female"]),
            ["'sex'", "row 1", "a string"],
        ),
        "a boolean in an FP64 tensor": (
            with_tensor(inputs, "body_mass_g", data=[True, 1.0, 2.0]),
            ["'body_mass_g'", "row 0", "True"],
        ),
        "a string in a shape": (
            with_tensor(inputs, "island", shape=["3", 1]),
            ["input 'island'", "shape[0]", "integer"],
        ),
        "a negative shape": (
            with_tensor(inputs, "island", shape=[-1, 1]),
            ["input 'island'", "shape[0]", "greater than or equal to 0"],
        ),
        "a tensor without data": (
            [{k: v for k, v in t.items() if k != "data"} for t in inputs],
            ["input 'island'", "data", "required"],
        ),
        "no rows": (
            [{**t, "shape": [0, 1], "data": []} for t in inputs],
            ["no rows"],
        ),
    }


_MUTATIONS = list(
    _mutations(
        [
            {"name": n, "shape": [3, 1], "datatype": "BYTES", "data": [None] * 3}
            for n in ("island", "year", "body_mass_g", "sex")
        ]
    )
)


@pytest.mark.parametrize("case", _MUTATIONS)
def test_malformed_tensors_are_a_400_naming_the_tensor(client: TestClient, case: str) -> None:
    inputs = penguin_inputs(client, penguin_rows(0, 3))
    body, named = _mutations(inputs)[case]
    msg = error(client.post(INFER, json={"inputs": body}), 400)
    for text in named:
        assert text in msg


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"inputs": [', "not valid JSON"),
        (b"[1, 2]", "expected an inference request"),
        (b"{}", "inputs is required"),
        (b'{"inputs": []}', "inputs: List should have at least 1 item"),
        (b'{"inputs": [{"name": 3}]}', "inputs[0].name: Input should be a valid string"),
        (b'{"id": 7, "inputs": []}', "id: Input should be a valid string"),
        (b'{"inputs": [3]}', "inputs[0]: Input should be an object"),
    ],
)
def test_malformed_requests_are_a_400(client: TestClient, body: bytes, named: str) -> None:
    headers = {"content-type": "application/json"}
    assert named in error(client.post(INFER, content=body, headers=headers), 400)


def test_an_unknown_output_is_a_400(client: TestClient) -> None:
    inputs = penguin_inputs(client, penguin_rows(0, 2))
    request = {"inputs": inputs, "outputs": [{"name": "label"}, {"name": "logits"}]}
    msg = error(client.post(INFER, json=request), 400)
    assert "unknown output 'logits'" in msg
    assert "['label', 'probabilities']" in msg


def test_a_body_that_is_not_json_is_a_415(client: TestClient) -> None:
    response = client.post(INFER, content=b"island=Biscoe", headers={"content-type": "text/csv"})
    assert "text/csv" in error(response, 415)


def test_a_body_without_content_type_is_read_as_json(client: TestClient) -> None:
    inputs = penguin_inputs(client, penguin_rows(0, 2))
    response = client.post(INFER, content=json.dumps({"inputs": inputs}).encode())
    assert response.status_code == 200, response.text


# --- values the record model refuses: 422 naming the tensor and the row --------------------


@pytest.mark.parametrize(
    ("tensor", "value", "named"),
    [
        ("island", '"Atlantis"', ["input 'island', row 1", "'Biscoe', 'Dream' or 'Torgersen'"]),
        ("bill_length_mm", "NaN", ["input 'bill_length_mm', row 1", "found NaN", "finite"]),
        ("bill_depth_mm", "-Infinity", ["input 'bill_depth_mm', row 1", "-Infinity", "finite"]),
        ("body_mass_g", "1e400", ["input 'body_mass_g', row 1", "Infinity", "finite"]),
        ("year", str(2**70), ["input 'year', row 1", "less than or equal to"]),
        ("flipper_length_mm", "9" * 400, ["input 'flipper_length_mm', row 1", "400 digits"]),
    ],
)
def test_values_the_record_model_refuses_are_a_422(
    client: TestClient, tensor: str, value: str, named: list[str]
) -> None:
    inputs = penguin_inputs(client, penguin_rows(0, 3))
    marker = "__BAD_VALUE__"
    data = [*next(t["data"] for t in inputs if t["name"] == tensor)]
    data[1] = marker  # replaced below by a JSON token json.dumps cannot write
    bad = with_tensor(inputs, tensor, data=data)
    body = json.dumps({"inputs": bad}).replace(f'"{marker}"', value).encode()
    msg = error(client.post(INFER, content=body), 422)
    for text in named:
        assert text in msg


def test_every_refused_value_is_named(client: TestClient) -> None:
    inputs = penguin_inputs(client, penguin_rows(0, 3))
    bad = with_tensor(inputs, "island", data=["Atlantis", "Biscoe", "Mu"])
    msg = error(client.post(INFER, json={"inputs": bad}), 422)
    assert "input 'island', row 0" in msg
    assert "input 'island', row 2" in msg
    assert "row 1" not in msg


# --- limits and settings --------------------------------------------------------------------


def test_more_rows_than_the_record_limit_is_a_413(package: ModelPackage) -> None:
    with v2_client(package, ServeConfig(max_records=5)) as c:
        inputs = penguin_inputs(c, penguin_rows(0, 6))
        msg = error(c.post(INFER, json={"inputs": inputs}), 413)
        assert "6 rows" in msg
        assert "record limit of 5 (--max-records)" in msg
        assert c.post(INFER, json={"inputs": penguin_inputs(c, penguin_rows(0, 5))}).is_success


RING_IDS = {"name": "ring_id", "shape": [2], "datatype": "BYTES", "data": ["N1A", "N1B"]}


def test_unknown_inputs_are_ignored_and_counted(client: TestClient) -> None:
    inputs = penguin_inputs(client, penguin_rows(0, 2))
    with_extra = client.post(INFER, json={"id": "x", "inputs": [*inputs, RING_IDS]})
    assert with_extra.status_code == 200, with_extra.text
    assert with_extra.json() == client.post(INFER, json={"id": "x", "inputs": inputs}).json()
    assert 'shipyard_ignored_fields_total{field="ring_id"} 1.0' in client.get("/metrics").text


def test_unknown_inputs_are_a_400_with_strict_inputs(package: ModelPackage) -> None:
    with v2_client(package, ServeConfig(extra_fields="forbid")) as c:
        inputs = penguin_inputs(c, penguin_rows(0, 2))
        msg = error(c.post(INFER, json={"inputs": [*inputs, RING_IDS]}), 400)
        assert "unknown input 'ring_id'" in msg
        assert "'island'" in msg


def test_a_draining_server_answers_503_with_retry_after(package: ModelPackage) -> None:
    app = create_app(package)
    with_v2(app)
    with TestClient(app) as c:
        inputs = penguin_inputs(c, penguin_rows(0, 2))
    # the lifespan has ended: the runner refuses new work, as while draining on SIGTERM
    response = TestClient(app).post(INFER, json={"inputs": inputs})
    assert "shutting down" in error(response, 503)
    assert response.headers["retry-after"].isdigit()
    metrics = TestClient(app).get("/metrics").text
    assert 'shipyard_requests_refused_total{reason="shutting_down"} 1.0' in metrics


def test_a_request_past_the_timeout_is_a_504(package: ModelPackage) -> None:
    config = ServeConfig(batching=BatchingConfig(timeout_s=1e-9))
    with v2_client(package, config) as c:
        inputs = penguin_inputs(c, penguin_rows(0, 2))
        assert "no answer within" in error(c.post(INFER, json={"inputs": inputs}), 504)


# --- the app around the routes ---------------------------------------------------------------


def test_the_routes_are_in_the_openapi_schema_under_one_tag(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    v2 = {p: ops for p, ops in schema["paths"].items() if p.startswith("/v2")}
    assert set(v2) == {
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{model_name}",
        "/v2/models/{model_name}/versions/{model_version}",
        "/v2/models/{model_name}/ready",
        "/v2/models/{model_name}/versions/{model_version}/ready",
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    }
    assert all(op["tags"] == [V2_TAG] for ops in v2.values() for op in ops.values())
    infer = v2["/v2/models/{model_name}/infer"]["post"]
    body_schema = infer["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/InferenceRequest"}
    assert "InferenceRequest" in schema["components"]["schemas"]


def test_infer_requests_are_counted_by_route_template(client: TestClient) -> None:
    client.post(INFER, json={"inputs": penguin_inputs(client, penguin_rows(0, 2))})
    metrics = client.get("/metrics").text
    assert 'route="/v2/models/{model_name}/infer"' in metrics
    assert "gulls" not in metrics


def test_a_hot_reload_switches_what_v2_serves(package: ModelPackage) -> None:
    app = create_app(package)
    with_v2(app)
    state = app.shipyard
    with TestClient(app) as c:
        rows = penguin_rows(0, 3)
        inputs = penguin_inputs(c, rows)
        # what the alias follower does: build the new version's slot, warm it up, swap
        version_2 = ModelPackage(
            package.pipeline, package.signature, package.task, {"name": "penguins", "version": 2}
        )
        slot = state.build_slot(version_2)
        slot.runner.open()
        assert slot.runner.warm_up(slot.example())
        state.slot = slot
        metadata = c.get("/v2/models/penguins").json()
        assert (metadata["versions"], metadata["platform"]) == (["2"], "shipyard-sklearn")
        assert c.get("/v2/models/penguins/versions/1").status_code == 404
        response = c.post("/v2/models/penguins/versions/2/infer", json={"inputs": inputs})
        assert response.headers["x-shipyard-model"] == "penguins/2"
        assert response.json()["model_version"] == "2"
        expected = c.post("/predict", json=rows).json()["predictions"]
        assert outputs_by_name(response.json())["label"]["data"] == [
            p["prediction"] for p in expected
        ]


def test_a_number_input_takes_any_numeric_datatype(client: TestClient) -> None:
    rows = penguin_rows(0, 3)
    inputs = penguin_inputs(client, rows)
    flipper = [int(r["flipper_length_mm"]) for r in rows]  # 181.0 -> 181
    as_int = with_tensor(inputs, "flipper_length_mm", datatype="INT32", data=flipper)
    as_fp32 = with_tensor(inputs, "body_mass_g", datatype="FP32")
    answers = [client.post(INFER, json={"id": "x", "inputs": i}) for i in (inputs, as_int, as_fp32)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json() == answers[1].json() == answers[2].json()


# --- canary, shadow and request ids, as /predict -------------------------------------------


def test_a_canary_is_a_version_of_its_own_and_answers_its_share(package: ModelPackage) -> None:
    canary = version(package, 2)
    canary.onnx = None  # the canary runs the pipeline: its metadata says so
    with v2_client(package, canary=(canary, 0.5)) as c:
        assert c.get("/v2/models/penguins").json()["versions"] == ["1", "2"]
        assert c.get("/v2/models/penguins/versions/2").json()["platform"] == "shipyard-sklearn"
        assert c.get("/v2/models/penguins/versions/1").json()["platform"] == "shipyard-onnx"
        assert c.get("/v2/models/penguins/versions/2/ready").json() == {
            "name": "penguins",
            "ready": True,
        }
        inputs = penguin_inputs(c, penguin_rows(0, 2))
        pinned = [
            c.post(f"/v2/models/penguins/versions/{v}/infer", json={"inputs": inputs})
            for v in ("1", "2", "1", "2")
        ]
        assert [r.headers["x-shipyard-model"] for r in pinned] == [
            "penguins/1",
            "penguins/2",
            "penguins/1",
            "penguins/2",
        ]
        assert [r.json()["model_version"] for r in pinned] == ["1", "2", "1", "2"]
        routed = [c.post(INFER, json={"inputs": inputs}) for _ in range(40)]
        answered = [r.headers["x-shipyard-model"] for r in routed]
        assert set(answered) == {"penguins/1", "penguins/2"}  # 2 x 0.5**40 to fail by chance
        canary_rows = 2 * (answered.count("penguins/2") + 2)
        assert metric(c, "shipyard_routed_records_total", version="2", role="canary") == (
            canary_rows
        )


def test_a_shadow_scores_a_copy_of_every_infer_request(package: ModelPackage) -> None:
    with v2_client(package, shadow=version(package, 3)) as c:
        assert c.get("/v2/models/penguins").json()["versions"] == ["1"]  # it never answers
        assert c.get("/v2/models/penguins/versions/3").status_code == 404
        inputs = penguin_inputs(c, penguin_rows(0, 4))
        for _ in range(3):
            assert c.post(INFER, json={"inputs": inputs}).headers["x-shipyard-model"] == (
                "penguins/1"
            )
        deadline = time.monotonic() + 30  # the copies are scored after the answers
        while metric(c, "shipyard_shadow_records_total", outcome="agree") < 12:
            assert time.monotonic() < deadline, "the shadow never scored the copies"
            time.sleep(0.02)
        assert metric(c, "shipyard_shadow_records_total", outcome="disagree") == 0


def test_the_request_id_is_the_clients_and_names_the_response(client: TestClient) -> None:
    inputs = penguin_inputs(client, penguin_rows(0, 1))
    given = client.post(INFER, json={"inputs": inputs}, headers={"x-request-id": "batch-7.1"})
    assert given.headers["x-request-id"] == "batch-7.1"
    assert given.json()["id"] == "batch-7.1"
    own = client.post(INFER, json={"id": "mine", "inputs": inputs})
    assert own.json()["id"] == "mine" == own.headers["x-request-id"]  # the V2 id, echoed
    both = client.post(INFER, json={"id": "v2", "inputs": inputs}, headers={"x-request-id": "h"})
    assert (both.json()["id"], both.headers["x-request-id"]) == ("v2", "h")
    spaced = client.post(INFER, json={"id": "my request", "inputs": inputs})
    assert spaced.json()["id"] == "my request"
    assert len(spaced.headers["x-request-id"]) == 32  # not a token: the server names it
    odd = client.post(INFER, json={"inputs": inputs}, headers={"x-request-id": "not a token"})
    assert odd.headers["x-request-id"] != "not a token"
    assert odd.json()["id"] == odd.headers["x-request-id"]


def test_the_server_is_ready_when_every_version_is(package: ModelPackage) -> None:
    with v2_client(package, started=False, canary=(version(package, 2), 0.1)) as c:
        state = c.app.shipyard
        assert state.slot.runner.warm_up(state.slot.example())  # the primary only
        assert c.get("/v2/models/penguins/versions/1/ready").status_code == 200
        assert c.get("/v2/models/penguins/versions/2/ready").json() == {
            "name": "penguins",
            "ready": False,
        }
        assert c.get("/v2/models/penguins/ready").status_code == 503
        assert c.get("/v2/health/ready").status_code == 503


def test_every_answer_is_in_the_prediction_log(package: ModelPackage, tmp_path: Path) -> None:
    rows = penguin_rows(0, 4)
    with v2_client(package, ServeConfig(prediction_log=str(tmp_path / "log"))) as c:
        inputs = penguin_inputs(c, rows)
        answer = c.post(INFER, json={"id": "req-9", "inputs": inputs}).json()
        bad = with_tensor(inputs, "island", data=["Atlantis"] * 4)
        assert c.post(INFER, json={"id": "req-10", "inputs": bad}).status_code == 422
    # leaving the client ran the lifespan's shutdown, which writes the log
    logged = read_predictions(tmp_path / "log", model="penguins")
    assert list(logged["prediction_id"]) == [f"req-9-{i}" for i in range(4)]
    assert list(logged["request_id"]) == ["req-9"] * 4
    assert list(logged["model_version"]) == ["1"] * 4
    assert list(logged["prediction"]) == outputs_by_name(answer)["label"]["data"]
    assert logged["input.island"].tolist() == [r["island"] for r in rows]
    assert logged["input.body_mass_g"].isna().tolist() == [r["body_mass_g"] is None for r in rows]
    probabilities = logged[["proba.Adelie", "proba.Chinstrap", "proba.Gentoo"]].to_numpy()
    assert probabilities.ravel().tolist() == outputs_by_name(answer)["probabilities"]["data"]

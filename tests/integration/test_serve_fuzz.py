"""Property-based fuzzing of the server from its own OpenAPI schema: no input gives a 5xx."""

from __future__ import annotations

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from palmerpenguins import load_penguins
from schemathesis.checks import not_a_server_error

from shipyard.data import build_signature, coerce_frame, to_text
from shipyard.registry import ModelPackage
from shipyard.serve import create_app
from shipyard.spec import parse_spec
from shipyard.train import default_catalogue, make_pipeline, refit

pytestmark = pytest.mark.slow


def _app() -> object:
    frame = load_penguins().dropna(subset=["species"]).reset_index(drop=True)
    spec = parse_spec("name: penguins\ndata: {source: {type: csv, path: x.csv}, target: species}\n")
    signature = build_signature(frame, spec, "multiclass")
    estimator = default_catalogue().create("linear", "multiclass", seed=0, params={})
    y = pd.Series(to_text(frame["species"]), dtype=object)
    model = refit(make_pipeline(signature, estimator), coerce_frame(frame, signature), y)
    package = ModelPackage(model, signature, "multiclass", {"name": "penguins", "version": 1})
    return create_app(package)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gives_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])

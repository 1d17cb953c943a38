"""A small fitted model package for the batch-prediction tests (local and Ray engines)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from palmerpenguins import load_penguins

from shipyard.data import build_signature, coerce_frame, to_text
from shipyard.registry import ModelPackage
from shipyard.spec import parse_spec
from shipyard.train import default_catalogue, make_pipeline, refit


def penguins_package(metadata: dict[str, Any] | None = None) -> ModelPackage:
    """A linear classifier of the penguins' species, fitted on every row."""
    frame = load_penguins().dropna(subset=["species"]).drop(columns=["year"]).reset_index(drop=True)
    spec = parse_spec("name: p\ndata: {source: {type: csv, path: x}, target: species}\n")
    signature = build_signature(frame, spec, "multiclass")
    estimator = default_catalogue().create("linear", "multiclass", seed=0, params={})
    y = pd.Series(to_text(frame["species"]), dtype=object)
    model = refit(make_pipeline(signature, estimator), coerce_frame(frame, signature), y)
    return ModelPackage(model, signature, "multiclass", dict(metadata or {}))

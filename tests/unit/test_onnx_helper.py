"""The run's ONNX conversion in a helper process (``shipyard.pipeline._convert``): the same
graph and check as in the run's own process; a helper that cannot start or dies leaves the
conversion to the run; an unused helper is stopped."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pandas as pd
import pytest
from palmerpenguins import load_penguins

from shipyard.data import Signature, build_signature, coerce_frame, to_text
from shipyard.model import OnnxRuntime
from shipyard.pipeline._convert import OnnxConverter
from shipyard.pipeline._package import convert_and_check
from shipyard.spec import parse_spec
from shipyard.train import default_catalogue, make_pipeline, refit

SPEC = "name: penguins\ndata: {source: {type: csv, path: x}, target: species}\n"


@pytest.fixture(scope="module")
def job() -> tuple[Any, Signature, str, pd.DataFrame]:
    frame = load_penguins().dropna(subset=["species"]).drop(columns=["year"])
    frame = frame.reset_index(drop=True)
    signature = build_signature(frame, parse_spec(SPEC), "multiclass")
    x = coerce_frame(frame, signature)
    y = pd.Series(to_text(frame["species"]), dtype=object)
    estimator = default_catalogue().create("lightgbm", "multiclass", seed=0, params={})
    return refit(make_pipeline(signature, estimator), x, y), signature, "multiclass", x.head(60)


def _labels(graph: bytes, signature: Signature, rows: pd.DataFrame, model: Any) -> list[str]:
    classes = [str(c) for c in model.classes_]
    return list(OnnxRuntime(graph, signature, "multiclass", classes).predict_frame(rows).labels)


def test_the_helper_converts_and_checks_as_the_run_would(job: tuple) -> None:
    model, signature, task, rows = job
    with OnnxConverter(helper=True) as converter:
        assert converter.in_helper
        graph, info = converter.export(model, signature, task, rows)
        assert not converter.in_helper  # one job a helper
    here, here_info = convert_and_check(model, signature, task, rows)
    assert graph is not None and here is not None
    assert info["status"] == here_info["status"] == "converted"
    assert info["check"] == here_info["check"]
    assert _labels(graph, signature, rows, model) == _labels(here, signature, rows, model)


def test_a_helper_that_dies_leaves_the_conversion_to_the_run(
    job: tuple, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model, signature, task, rows = job
    monkeypatch.setattr(sys, "executable", "/bin/false")  # starts, reads nothing, exits 1
    with caplog.at_level(logging.WARNING), OnnxConverter(helper=True) as converter:
        assert converter.in_helper
        graph, info = converter.export(model, signature, task, rows)
    assert graph is not None and info["status"] == "converted"
    assert "the ONNX conversion process failed" in caplog.text and "exit 1" in caplog.text


def test_a_helper_that_cannot_start_leaves_the_conversion_to_the_run(
    job: tuple, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model, signature, task, rows = job
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with caplog.at_level(logging.WARNING), OnnxConverter(helper=True) as converter:
        assert not converter.in_helper
        graph, info = converter.export(model, signature, task, rows)
    assert graph is not None and info["status"] == "converted"
    assert "no ONNX conversion process" in caplog.text


def test_an_unused_helper_is_stopped() -> None:
    converter = OnnxConverter(helper=True)
    proc = converter._proc
    assert proc is not None and proc.poll() is None
    converter.close()
    assert proc.poll() is not None  # killed and reaped: no process left behind
    converter.close()  # twice is harmless


def test_a_pipeline_without_a_graph_is_said_so_by_the_helper_without_blocking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    frame = (
        load_penguins()
        .dropna(subset=["species"])
        .drop(columns=["year"])
        .sample(120, random_state=0)
    )
    frame = frame.reset_index(drop=True)
    frame["seen"] = pd.date_range("2024-01-01", periods=len(frame), freq="D")
    signature = build_signature(frame, parse_spec(SPEC), "multiclass")
    x = coerce_frame(frame, signature)
    y = pd.Series(to_text(frame["species"]), dtype=object)
    estimator = default_catalogue().create("logistic_regression", "multiclass", seed=0, params={})
    model = refit(make_pipeline(signature, estimator), x, y)
    rows = pd.concat([x] * 20, ignore_index=True)  # a reference larger than a pipe's buffer
    with caplog.at_level(logging.WARNING), OnnxConverter(helper=True) as converter:
        graph, info = converter.export(model, signature, "multiclass", rows)
    assert graph is None and info["status"] == "not converted"
    assert "seen (datetime)" in info["reason"]
    assert "failed" not in caplog.text  # the helper answered; the run did not convert again

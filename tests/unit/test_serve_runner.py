"""ModelRunner: one DataFrame per batch, in the Signature's column order, and warm-up."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from shipyard.data import ColumnSchema, Signature
from shipyard.serve import ModelRunner

SIG = Signature(
    inputs=(
        ColumnSchema(name="b", kind="number", dtype="float64", nullable=True, minimum=0.0),
        ColumnSchema(name="a", kind="category", dtype="str", nullable=True, categories=("x",)),
    )
)


class _Predictions:
    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def to_records(self) -> list[dict[str, Any]]:
        return [{"prediction": v} for v in self.values]


class _RecordingPackage:
    """Duck-typed ModelPackage that records the frames it is asked to predict."""

    def __init__(self, fail: bool = False) -> None:
        self.signature = SIG
        self.frames: list[pd.DataFrame] = []
        self.fail = fail

    def predict(self, frame: pd.DataFrame) -> _Predictions:
        if self.fail:
            raise ValueError("broken model")
        self.frames.append(frame)
        return _Predictions(list(range(len(frame))))


def test_predict_builds_one_frame_in_signature_order() -> None:
    package = _RecordingPackage()
    runner = ModelRunner(package)  # type: ignore[arg-type]
    out = runner.predict([{"a": "x", "b": 1.5}, {"b": None, "a": None}, {"a": "x"}])
    assert out == [{"prediction": 0}, {"prediction": 1}, {"prediction": 2}]
    (frame,) = package.frames
    assert list(frame.columns) == ["b", "a"]
    assert frame["b"].iloc[0] == 1.5
    assert all(v is None or (isinstance(v, float) and math.isnan(v)) for v in frame["b"][1:])


def test_warm_up_marks_ready() -> None:
    package = _RecordingPackage()
    runner = ModelRunner(package)  # type: ignore[arg-type]
    assert not runner.ready
    assert runner.warm_up()
    assert runner.ready
    assert package.frames[0].to_dict("records") == [{"b": 0.0, "a": "x"}]


def test_warm_up_failure_is_logged_not_raised(caplog: Any) -> None:
    runner = ModelRunner(_RecordingPackage(fail=True))  # type: ignore[arg-type]
    assert not runner.warm_up({"a": "x", "b": np.nan})
    assert not runner.ready
    assert "warm-up prediction failed" in caplog.text

"""ModelRunner: the package's runtime, batched submission, warm-up and close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from shipyard.data import ColumnSchema, Signature
from shipyard.model import Predictions
from shipyard.serve import ModelRunner
from shipyard.serve._batcher import BatchingConfig, ShuttingDown

SIG = Signature(
    inputs=(
        ColumnSchema(name="b", kind="number", dtype="float64", nullable=True, minimum=0.0),
        ColumnSchema(name="a", kind="category", dtype="str", nullable=True, categories=("x",)),
    )
)


class _Runtime:
    name = "fake"

    def __init__(self, fail: bool) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.fail = fail

    def predict_records(self, records: Sequence[dict[str, Any]]) -> Predictions:
        if self.fail:
            raise ValueError("broken model")
        self.calls.append(list(records))
        return Predictions(labels=np.array([2.0 * (r.get("b") or 0) for r in records]))


class _Package:
    """Duck-typed ModelPackage: records which runtime was asked for."""

    def __init__(self, fail: bool = False) -> None:
        self.signature = SIG
        self.asked: list[str] = []
        self.fake = _Runtime(fail)

    def runtime(self, prefer: str = "auto") -> _Runtime:
        self.asked.append(prefer)
        return self.fake


def test_predict_runs_the_packages_runtime_on_the_records() -> None:
    package = _Package()
    runner = ModelRunner(package, runtime="sklearn")  # type: ignore[arg-type]
    assert package.asked == ["sklearn"] and runner.runtime is package.fake
    out = runner.predict([{"a": "x", "b": 1.5}, {"b": None}])
    assert out == [{"prediction": 3.0}, {"prediction": 0.0}]
    assert package.fake.calls == [[{"a": "x", "b": 1.5}, {"b": None}]]


def test_submit_goes_through_the_batcher_and_close_refuses_more() -> None:
    package = _Package()
    runner = ModelRunner(package, batching=BatchingConfig(max_batch_rows=8))  # type: ignore[arg-type]

    async def scenario() -> None:
        results = await asyncio.gather(*(runner.submit([{"b": i}]) for i in range(5)))
        assert results == [[{"prediction": 2.0 * i}] for i in range(5)]  # each its own row
        await runner.close()
        with pytest.raises(ShuttingDown):
            await runner.submit([{"b": 1}])

    asyncio.run(scenario())
    assert sum(len(c) for c in package.fake.calls) == 5
    assert not runner.ready
    runner.open()  # a lifespan that starts again
    assert asyncio.run(runner.submit([{"b": 4}])) == [{"prediction": 8.0}]


def test_warm_up_marks_ready() -> None:
    package = _Package()
    runner = ModelRunner(package)  # type: ignore[arg-type]
    assert not runner.ready
    assert runner.warm_up()
    assert runner.ready
    assert package.fake.calls == [[{"b": 0.0, "a": "x"}]]  # the Signature's example record


def test_warm_up_failure_is_logged_not_raised(caplog: Any) -> None:
    runner = ModelRunner(_Package(fail=True))  # type: ignore[arg-type]
    assert not runner.warm_up({"a": "x", "b": np.nan})
    assert not runner.ready
    assert "warm-up prediction failed" in caplog.text

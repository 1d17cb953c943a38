"""The BentoML peer: a BentoML 1.4 service around the benchmark's joblib pipeline.

Copied into a temporary folder by ``benchmarks/serving.py`` and started there with
``bentoml serve service:Penguins`` from the throwaway BentoML venv. ``POST /predict`` takes
``{"records": [{...}, ...]}``; with ``BENCH_BATCHABLE=1`` (the default) the API is
``batchable``, so BentoML's adaptive batching dispatcher merges concurrent requests' record
lists into one ``predict_proba`` call. Settings come from the environment:

- ``BENCH_MODEL``: the joblib file; ``BENCH_COLUMNS``: the input columns (a JSON list);
- ``BENCH_WORKERS``: BentoML worker processes (default 1, BentoML's own default);
- ``BENCH_BATCHABLE``: ``1`` for adaptive batching, ``0`` for one call per request;
- ``BENCH_MAX_BATCH_SIZE`` (records, default 1000), ``BENCH_MAX_LATENCY_MS`` (default 10000).
"""

from __future__ import annotations

import json
import os
from typing import Any

import bentoml
import joblib
import pandas as pd

BATCHABLE = os.environ.get("BENCH_BATCHABLE", "1") == "1"
BATCHING: dict[str, Any] = (
    {
        "batchable": True,
        "max_batch_size": int(os.environ.get("BENCH_MAX_BATCH_SIZE", "1000")),
        "max_latency_ms": int(os.environ.get("BENCH_MAX_LATENCY_MS", "10000")),
    }
    if BATCHABLE
    else {}
)


@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "1")), traffic={"timeout": 60})
class Penguins:
    """The penguins classifier: class probabilities for a list of records."""

    def __init__(self) -> None:
        self.pipeline = joblib.load(os.environ["BENCH_MODEL"])
        self.columns = json.loads(os.environ["BENCH_COLUMNS"])
        self.classes = [str(c) for c in self.pipeline.classes_]

    @bentoml.api(**BATCHING)
    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        frame = pd.DataFrame.from_records(records, columns=self.columns)
        proba = self.pipeline.predict_proba(frame)
        return [
            {
                "prediction": self.classes[row.argmax()],
                "probabilities": dict(zip(self.classes, row.tolist(), strict=True)),
            }
            for row in proba
        ]

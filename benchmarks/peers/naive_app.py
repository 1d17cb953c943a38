"""The naive baseline: the FastAPI endpoint people write by hand around a joblib pipeline.

Parse a JSON object (one record) or array (records), build a DataFrame, ``predict_proba``,
return JSON. No typed schema, no validation, no metrics, no batching; one uvicorn process.
Started by ``benchmarks/serving.py``::

    python benchmarks/peers/naive_app.py MODEL.joblib '["island", ...]' --port PORT
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import joblib
import pandas as pd
import uvicorn
from fastapi import FastAPI


def create_app(model_path: str, columns: list[str]) -> FastAPI:
    """The app: ``POST /predict`` with one record (an object) or a list of records."""
    pipeline = joblib.load(model_path)
    classes = [str(c) for c in pipeline.classes_]
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any] | list[dict[str, Any]]) -> Any:
        records = body if isinstance(body, list) else [body]
        proba = pipeline.predict_proba(pd.DataFrame.from_records(records, columns=columns))
        out = [
            {
                "prediction": classes[row.argmax()],
                "probabilities": dict(zip(classes, row.tolist(), strict=True)),
            }
            for row in proba
        ]
        return out if isinstance(body, list) else out[0]

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the joblib file of the fitted pipeline")
    parser.add_argument("columns", type=json.loads, help="the input columns, a JSON list")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    app = create_app(args.model, args.columns)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")

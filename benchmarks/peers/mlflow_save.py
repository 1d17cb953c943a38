"""Save the benchmark's joblib pipeline as an MLflow model (run in the MLflow venv).

``mlflow.sklearn.save_model`` (cloudpickle format) with a signature inferred from example
records and ``pyfunc_predict_fn="predict_proba"``, so ``mlflow models serve`` answers class
probabilities like the other servers (and enforces the signature's schema on every request, as
it does for users who log a signature)::

    python benchmarks/peers/mlflow_save.py MODEL.joblib OUT_DIR '["island", ...]' RECORDS.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature


def main(model_path: str, out_dir: str, columns: list[str], records_path: str) -> None:
    """Write the MLflow model folder ``out_dir``."""
    pipeline = joblib.load(model_path)
    records = json.loads(Path(records_path).read_text())
    example = pd.DataFrame.from_records(records, columns=columns)
    signature = infer_signature(example, pipeline.predict_proba(example))
    mlflow.sklearn.save_model(
        pipeline,
        out_dir,
        signature=signature,
        pyfunc_predict_fn="predict_proba",
        # recent MLflow defaults to skops, which refuses LightGBM's types unless each is listed
        # as trusted; cloudpickle is the format MLflow long defaulted to (same serving path)
        serialization_format="cloudpickle",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4])

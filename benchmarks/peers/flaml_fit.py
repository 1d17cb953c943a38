"""Fit FLAML's ``AutoML`` on a benchmark's training file and predict its holdout (run in the
FLAML venv, built by ``benchmarks/_peers.py``)::

    python benchmarks/peers/flaml_fit.py DATA_DIR OUT_DIR

``DATA_DIR`` holds ``train.parquet`` (the inputs and the target), ``test_x.parquet`` (the
holdout's inputs, no target) and ``task.json`` (``task``, ``target``, ``metric``, ``budget``,
``seed``, ``n_jobs``). Only ``AutoML.fit`` is timed; everything else (imports, reading, the
holdout's prediction) is not. Writes ``OUT_DIR/predictions.parquet`` (class probabilities, a
column per class label, or one ``prediction`` column) and ``OUT_DIR/result.json``.
"""

from __future__ import annotations

import json
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as ``object`` (what FLAML's data transformer turns into categories)."""
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    return frame.astype(dict.fromkeys(text, object)) if text else frame


def main(data_dir: Path, out_dir: Path) -> None:
    """Fit, predict the holdout, write the predictions and the timings."""
    info = json.loads((data_dir / "task.json").read_text())
    train = pd.read_parquet(data_dir / "train.parquet")
    x = _plain(train.drop(columns=[info["target"]]))
    y = train[info["target"]]
    classification = info["task"] != "regression"
    y_values = y.to_numpy(dtype=object) if classification else y.to_numpy(dtype=float)
    x_test = _plain(pd.read_parquet(data_dir / "test_x.parquet"))

    from flaml import AutoML

    settings: dict[str, Any] = {
        "task": "classification" if classification else "regression",
        "metric": info["metric"],
        "time_budget": info["budget"],
        "seed": info["seed"],
        "n_jobs": info["n_jobs"],
        "verbose": 0,
        "log_file_name": "",
    }
    automl = AutoML()
    started, cpu = time.perf_counter(), time.process_time()
    automl.fit(X_train=x, y_train=y_values, **settings)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu

    if classification:
        proba = automl.predict_proba(x_test)
        columns = [str(c) for c in automl.classes_]
        predictions = pd.DataFrame(proba, columns=columns)
    else:
        predictions = pd.DataFrame({"prediction": automl.predict(x_test)})
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(out_dir / "predictions.parquet")
    history = getattr(automl, "config_history", {}) or {}
    result = {
        "wall_s": wall,
        "cpu_s": cpu,
        "info": {
            "best_estimator": automl.best_estimator,
            "best_config": automl.best_config,
            "best_cv_loss": automl.best_loss,  # FLAML's loss: 1 - score, or the metric itself
            "trials": len(history),
            "flaml": metadata.version("flaml"),
            "settings": settings,
        },
    }
    (out_dir / "result.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

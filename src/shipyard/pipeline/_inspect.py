"""Look at a project before training: its data, then everything a run would trip over.

:func:`inspect_data` settles target, task and metric and validates the data;
:func:`preflight` checks the candidates, the target and the split and returns the
:class:`Plan` a run trains on. ``shipyard validate`` and ``shipyard run`` both call the two, so
that a project ``validate`` passes does not fail in ``run`` before training is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard import data as sd
from shipyard.errors import DataError, SpecError, TrainingError
from shipyard.evaluate import default_metric
from shipyard.features import check_feature_options
from shipyard.spec import CLASSIFICATION_METRICS, REGRESSION_METRICS, ProjectSpec
from shipyard.train import Catalogue, default_catalogue

__all__ = ["Inspection", "Plan", "inspect_data", "inspect_project", "pii_policy", "preflight"]

_CLASSIFICATION = ("binary", "multiclass")
_SHOWN = 5


@dataclass(frozen=True)
class Inspection:
    """What the data looks like to the project.

    Attributes:
        frame: the data as read: as loaded, with its columns of numbers read as numbers
            (see :func:`shipyard.data.read_numbers`).
        fingerprint: the content hash of the data as loaded.
        task: the declared or inferred task.
        metric: the primary metric (declared or the task's default).
        report: the validation report (schema health plus declared expectations).
        signature: the inputs and target the model would have; ``None`` when the report has
            errors (the signature is only built from data that passed).
    """

    frame: pd.DataFrame
    fingerprint: str
    task: str
    metric: str
    report: sd.ValidationReport
    signature: sd.Signature | None


def inspect_project(spec: ProjectSpec) -> Inspection:
    """Load the project's data source and inspect it (see :func:`inspect_data`)."""
    frame = sd.load_source(spec.data.source, spec.base_dir)
    return inspect_data(spec, frame)


def inspect_data(spec: ProjectSpec, frame: pd.DataFrame) -> Inspection:
    """Check the target, protect PII, read numbers, settle task and metric, validate, infer
    the Signature.

    Declared PII columns (``features.pii``) are dropped or hashed before anything else looks
    at the data, so no check, report or profile sees them in clear; undeclared columns that
    look personal are reported as warnings (check ``pii``). The fingerprint is the data's as
    loaded.

    Columns of numbers with a few values that are not numbers are reported by the validation
    report: as errors, or as warnings when ``data.on_bad_numbers`` is ``coerce`` (the values
    are then missing in ``Inspection.frame``).

    Raises:
        SpecError: the target is not a column, or the metric does not fit the task.
        DataError: a feature named in the project file is not a column.
    """
    target = spec.data.target
    if target not in frame.columns:
        msg = (
            f"{spec.locate('data', 'target')}: target column {target!r} is not in the data; "
            f"columns are {list(frame.columns)}"
        )
        raise SpecError(msg)
    raw = frame
    pii = pii_policy(spec)
    missing = [c for c in pii.actions if c not in frame.columns]
    if missing:
        msg = (
            f"{spec.locate('features', 'pii')}: PII column(s) {missing} are not in the data; "
            f"columns are {[str(c) for c in frame.columns]}"
        )
        raise DataError(msg)
    suggested = [_pii_warning(s) for s in sd.suggest_pii(frame, pii.actions)]
    frame = pii.protect_frame(frame, where=spec.locate("features", "pii"))
    read, read_checks = sd.read_numbers(frame, spec)
    read_checks = [*suggested, *read_checks]
    task = spec.task or sd.infer_task(read[target])
    metric = _check_metric(spec, task)
    report = sd.validate(
        read,
        expectations=spec.validation.expectations,
        target=target,
        max_missing_fraction=spec.validation.max_missing_fraction,
        checks=read_checks,
    )
    signature = None
    if report.ok:
        labelled = read[read[target].notna()].reset_index(drop=True)
        signature = sd.build_signature(labelled, spec, task)
    return Inspection(read, sd.fingerprint(raw), task, metric, report, signature)


def pii_policy(spec: ProjectSpec) -> sd.PiiPolicy:
    """The project's PII columns (``features.pii``) with the key in ``SHIPYARD_PII_KEY``."""
    return sd.PiiPolicy(spec.features.pii, sd.PiiKey.from_env())


def _pii_warning(suggestion: sd.PiiSuggestion) -> sd.CheckResult:
    message = (
        f"column {suggestion.column!r} may hold personal data: {suggestion.reason}; declare it "
        "under features.pii (drop it, or hash it to keep joins) so that it is never written "
        "in clear, or exclude it"
    )
    return sd.CheckResult("pii", suggestion.column, "warning", 1, 1, message=message)


def _check_metric(spec: ProjectSpec, task: str) -> str:
    metric = spec.metric or default_metric(task)
    allowed = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    if metric not in allowed:
        msg = (
            f"{spec.locate('metric')}: metric {metric!r} does not fit the {task} task; "
            f"expected one of {sorted(allowed)}"
        )
        raise SpecError(msg)
    return metric


@dataclass(frozen=True)
class Plan:
    """What a run trains on, settled and checked before any candidate is trained.

    Attributes:
        frame: the rows with a target, numbered from 0.
        x: their inputs, converted to the Signature's dtypes.
        y: their target: floats for a regression, class labels (text) for a classifier.
        signature: the model's inputs and target.
        train_idx: the positions (in ``frame``) of the training part.
        test_idx: the positions of the holdout part.
        folds: the cross-validation folds, as ``(train, test)`` positions within the
            training part.
        estimators: each candidate's unfitted estimator by label, in the project file's order.
        leakage: what the leakage guards found (target proxies, identifiers, holdout rows
            equal to training rows, time-order breaches), each a warning.
    """

    frame: pd.DataFrame
    x: pd.DataFrame
    y: pd.Series
    signature: sd.Signature
    train_idx: np.ndarray
    test_idx: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    estimators: dict[str, Any]
    leakage: list[sd.LeakageFinding] = field(default_factory=list)


def preflight(
    spec: ProjectSpec, inspection: Inspection, *, catalogue: Catalogue | None = None
) -> Plan:
    """Check everything that can be checked before training, and plan the run.

    In order: every candidate (its catalogue key, the task, its parameter names and values;
    all problems in one error), the validation report, the target (a regression's must be
    numbers), the holdout split (a stratified split needs two rows of each class) and the
    cross-validation folds (a stratified one needs ``cv_folds`` rows of each class in the
    training part; every fold needs rows, and a classifier's training folds two classes).
    Errors name the project file's line (``spec.locate``).

    Args:
        spec: the project spec.
        inspection: what :func:`inspect_data` found.
        catalogue: model families; the built-in catalogue by default.

    Returns:
        The plan: the rows, their inputs and target, the split, the folds, the estimators.

    Raises:
        TrainingError: a candidate names an unknown model, a task its model does not do, or
            a parameter its estimator does not have or refuses.
        DataValidationError: an error-level validation check failed.
        DataError: the target or the split does not fit the data, or a sensitive column
            (``evaluation.sensitive``) is missing.
        SpecError: a feature option does not fit its column (``features.*``).
    """
    catalogue = catalogue or default_catalogue()
    task = inspection.task
    estimators = _estimators(spec, task, catalogue)
    inspection.report.raise_for_errors()
    assert inspection.signature is not None  # built whenever the report has no errors
    problems = check_feature_options(inspection.signature, spec.features)
    if problems:
        msg = "; ".join(f"{spec.locate(*p.field)}: {p.message}" for p in problems)
        raise SpecError(msg)
    target = spec.data.target
    frame = inspection.frame[inspection.frame[target].notna()].reset_index(drop=True)
    y = _target(spec, frame[target], task)
    x = sd.coerce_frame(frame, inspection.signature)
    train_idx, test_idx = _holdout(spec, frame, task)
    folds = _folds(spec, x.iloc[train_idx], y.iloc[train_idx], task)
    missing = [c for c in spec.evaluation.sensitive if c not in frame.columns]
    if missing:
        msg = (
            f"{spec.locate('evaluation', 'sensitive')}: no column {missing} in the data "
            f"(columns: {sorted(map(str, frame.columns))})"
        )
        raise DataError(msg)
    time_column = spec.split.time_column if spec.split.strategy == "time" else None
    leakage = sd.leakage_warnings(
        x,
        y,
        train_idx,
        test_idx,
        task=task,
        time_column=time_column,
        times=frame[time_column] if time_column in frame.columns else None,
        folds=folds,
        seed=spec.seed,
    )
    return Plan(frame, x, y, inspection.signature, train_idx, test_idx, folds, estimators, leakage)


def _estimators(spec: ProjectSpec, task: str, catalogue: Catalogue) -> dict[str, Any]:
    estimators: dict[str, Any] = {}
    problems: list[str] = []
    for i, cand in enumerate(spec.models):
        try:
            estimators[cand.label] = catalogue.create(
                cand.model,
                task,
                seed=spec.seed,
                params=cand.params,
                where=spec.locate("models", i, "model"),
                params_where=spec.locate("models", i, "params"),
            )
        except TrainingError as exc:
            problems.append(str(exc))
    if len(problems) == 1:
        raise TrainingError(problems[0])
    if problems:
        msg = f"{len(problems)} problem(s) with the candidate models:\n  " + "\n  ".join(problems)
        raise TrainingError(msg)
    return estimators


def _target(spec: ProjectSpec, y: pd.Series, task: str) -> pd.Series:
    if task in _CLASSIFICATION:
        return pd.Series(sd.to_text(y), index=y.index, dtype=object, name=y.name)
    values, bad = sd.to_numbers(y)
    if bad.any():
        rows = np.flatnonzero(bad)[:_SHOWN]
        shown = ", ".join(f"row {r + 1}: {y.iloc[r]!r}" for r in rows)
        msg = (
            f"{spec.locate('task')}: a regression needs a target of numbers, but "
            f"{int(bad.sum())} of {len(y)} values of {y.name!r} are not numbers ({shown}); "
            "set task to binary or multiclass, or fix the values"
        )
        raise DataError(msg)
    distinct = np.unique(values[~np.isnan(values)])
    if len(distinct) < 2:
        found = f"a single value {distinct[0]:g}" if len(distinct) else "no value"
        msg = (
            f"the target {y.name!r} has {found}; a model needs at least two: check the data, "
            f"data.target ({spec.locate('data', 'target')}) or the source's filter"
        )
        raise DataError(msg)
    return pd.Series(values, index=y.index, name=y.name)


def _holdout(spec: ProjectSpec, frame: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return sd.holdout_split(frame, target=spec.data.target, split=spec.split, task=task)
    except DataError as exc:
        msg = f"{spec.locate('split', 'strategy')}: {exc}"
        raise DataError(msg) from exc


def _folds(
    spec: ProjectSpec, x: pd.DataFrame, y: pd.Series, task: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The CV folds of the training part, after checking that each can be trained on."""
    k, n = spec.split.cv_folds, len(x)
    where = spec.locate("split", "cv_folds")
    strategy = spec.split.strategy
    if task in _CLASSIFICATION and strategy not in ("random", "time"):
        _check_stratified_folds(y, k, where)
    needed = k + 1 if strategy == "time" else k
    if n < needed:
        kind = " of a time split" if strategy == "time" else ""
        msg = (
            f"{where}: {k} folds{kind} need at least {needed} training rows, but the training "
            f"part has {n} rows; lower split.cv_folds, lower split.test_size or add rows"
        )
        raise DataError(msg)
    splitter = sd.cv_splitter(split=spec.split, task=task)
    folds = [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(x, y)]
    if task in _CLASSIFICATION:
        for i, (tr, _) in enumerate(folds):
            labels = y.iloc[tr].unique()
            if len(labels) < 2:
                msg = (
                    f"{where}: the training part of fold {i + 1} of {k} holds only the class "
                    f"{labels[0]!r}, and a classifier needs two; use split.strategy "
                    "'stratified', fewer folds or more rows of the other classes"
                )
                raise DataError(msg)
    return folds


def _check_stratified_folds(y: pd.Series, k: int, where: str) -> None:
    counts = y.value_counts()
    rare = counts[counts < k]
    if rare.empty:
        return
    shown = ", ".join(f"{label!r} ({n} row{'' if n == 1 else 's'})" for label, n in rare.items())
    smallest = int(counts.min())
    lower = f"set split.cv_folds to {smallest}, " if smallest >= 2 else ""
    msg = (
        f"{where}: {k}-fold stratified cross-validation needs at least {k} rows of each class "
        f"in the training part ({len(y)} rows), but class(es) {shown} have fewer; {lower}add "
        "rows of those classes, or set split.strategy to 'random'"
    )
    raise DataError(msg)

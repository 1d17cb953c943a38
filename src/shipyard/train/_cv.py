"""Cross-validation and refitting of candidate pipelines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from shipyard.data import Signature
from shipyard.errors import TrainingError
from shipyard.evaluate import Evaluation, aligned_proba, evaluate_predictions
from shipyard.features import build_features
from shipyard.train._boosting import tree_count
from shipyard.train._imbalance import Resample, ThresholdChoice, make_sampler, resampling_pipeline

if TYPE_CHECKING:
    from shipyard.train._engine import FoldEngine

__all__ = [
    "CVResult",
    "FoldOutcome",
    "cross_validate",
    "fit_fold",
    "make_pipeline",
    "predict_evaluate",
    "refit",
]

FoldCallback = Callable[[int, dict[str, float]], None]
Fold = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class CVResult:
    """Cross-validation of one candidate.

    Attributes:
        folds: each fold's metrics, in fold order.
        mean: per-metric mean over folds.
        std: per-metric standard deviation over folds.
        fit_seconds: total time spent fitting.
        predictions: with ``keep_predictions``, the out-of-fold predictions of every row of
            ``x`` that a fold held out (class probabilities in ``classes`` order, or values),
            in ``x``'s order; rows no fold held out are NaN. ``None`` otherwise.
        trees: how many trees the fold models had on average (LightGBM and XGBoost, see
            :func:`shipyard.train.tree_count`; ``0`` for other models).
    """

    folds: list[dict[str, float]]
    mean: dict[str, float]
    std: dict[str, float]
    fit_seconds: float
    predictions: np.ndarray | None = None
    trees: float = 0.0


def make_pipeline(
    signature: Signature,
    estimator: Any,
    *,
    features: Any | None = None,
    resample: Resample | None = None,
    seed: int = 0,
) -> Pipeline:
    """The model: the Signature's feature transformer followed by ``estimator``.

    Args:
        signature: the inputs.
        estimator: the unfitted estimator.
        features: the unfitted feature transformer (:func:`shipyard.features.build_features`
            with the project's options); ``build_features(signature)`` when not given.
        resample: ``over``, ``under`` or ``smote`` puts that sampler between the features and
            the estimator (an imbalanced-learn pipeline, see
            :func:`shipyard.train.resampling_pipeline`): it resamples the training rows of
            every fit (each CV fold's, the refit's) and never the rows scored. Package the
            fitted model through :func:`shipyard.train.strip_samplers`.
        seed: the sampler's random seed.
    """
    if features is None:
        features = build_features(signature)
    if resample is None:
        return Pipeline([("features", features), ("model", estimator)])
    return resampling_pipeline(features, make_sampler(resample, seed=seed), estimator)


def cross_validate(
    pipeline: Pipeline,
    x: pd.DataFrame,
    y: pd.Series,
    *,
    cv: Any,
    task: str,
    classes: Sequence[str] | None,
    on_fold: FoldCallback | None = None,
    keep_predictions: bool = False,
    engine: FoldEngine | None = None,
) -> CVResult:
    """Fit a clone of ``pipeline`` on each training fold and score it on the held-out fold.

    Args:
        pipeline: the unfitted model.
        x: the inputs.
        y: the target.
        cv: a scikit-learn splitter, or the folds themselves as ``(train, test)`` position
            pairs (as a run's preflight settles them).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        classes: the class labels of a classifier.
        on_fold: called with each fold's number and scores.
        keep_predictions: keep the out-of-fold predictions (for an ensemble).
        engine: where the folds are fitted (:class:`shipyard.train.RayEngine`: in parallel);
            in this process, one after another, by default. Every engine gives the folds
            back in order, so ``on_fold`` sees the same scores in the same order.

    Returns:
        Each fold's metrics with their mean, standard deviation and the fitting time.

    Raises:
        TrainingError: the estimator fails to fit (wrapping the library's error).
    """
    folds: list[dict[str, float]] = []
    fit_seconds = 0.0
    trees: list[int] = []
    splits: list[Fold] = list(cv.split(x, y) if hasattr(cv, "split") else cv)
    oof: np.ndarray | None = None
    outcomes = (
        (
            fit_fold(pipeline, x, y, tr, te, task=task, classes=classes, keep=keep_predictions)
            for tr, te in splits
        )
        if engine is None
        else engine.fit_folds(
            pipeline, x, y, splits, task=task, classes=classes, keep_predictions=keep_predictions
        )
    )
    with closing(outcomes):  # a stopped trial abandons the folds not yet given back
        for i, outcome in enumerate(outcomes):
            fit_seconds += outcome.fit_seconds
            trees.append(outcome.trees)
            if outcome.held is not None:
                if oof is None:
                    oof = np.full((len(x), *outcome.held.shape[1:]), np.nan)
                oof[splits[i][1]] = outcome.held
            folds.append(outcome.scores)
            if on_fold is not None:
                on_fold(i, outcome.scores)
    keys = folds[0].keys()
    mean = {k: float(np.nanmean([f[k] for f in folds])) for k in keys}
    std = {k: float(np.nanstd([f[k] for f in folds])) for k in keys}
    return CVResult(
        folds=folds,
        mean=mean,
        std=std,
        fit_seconds=fit_seconds,
        predictions=oof,
        trees=float(np.mean(trees)),
    )


@dataclass(frozen=True)
class FoldOutcome:
    """One fitted and scored fold.

    Attributes:
        scores: the held-out rows' metrics.
        fit_seconds: how long the fit took.
        held: with ``keep``, the held-out rows' predictions (class probabilities or values),
            in the fold's order; ``None`` otherwise.
        trees: the fitted model's trees (:func:`shipyard.train.tree_count`).
    """

    scores: dict[str, float]
    fit_seconds: float
    held: np.ndarray | None
    trees: int = 0


def fit_fold(
    pipeline: Pipeline,
    x: pd.DataFrame,
    y: pd.Series,
    train: np.ndarray,
    test: np.ndarray,
    *,
    task: str,
    classes: Sequence[str] | None,
    keep: bool,
) -> FoldOutcome:
    """Fit a clone of ``pipeline`` on the ``train`` positions and score it on ``test`` (one
    fold of :func:`cross_validate`, wherever an engine runs it).

    Raises:
        TrainingError: the estimator fails to fit (wrapping the library's error).
    """
    model = clone(pipeline)
    started = time.perf_counter()
    _fit(model, x.iloc[train], y.iloc[train])
    seconds = time.perf_counter() - started
    evaluation = predict_evaluate(model, x.iloc[test], y.iloc[test], task=task, classes=classes)
    held = None
    if keep:
        held = evaluation.y_pred if evaluation.proba is None else evaluation.proba
        held = np.asarray(held, dtype=float)
    return FoldOutcome(evaluation.metrics, seconds, held, tree_count(model.steps[-1][1]))


def predict_evaluate(
    model: Pipeline,
    x: pd.DataFrame,
    y: pd.Series,
    *,
    task: str,
    classes: Sequence[str] | None,
    threshold: ThresholdChoice | float | None = None,
) -> Evaluation:
    """Predict ``x`` with a fitted model and compute every metric against ``y``.

    Args:
        model: the fitted model.
        x: the inputs.
        y: the target.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        classes: the class labels of a classifier (a binary task's positive class last).
        threshold: a binary model's decision threshold (from :func:`tune_threshold`, or a
            probability of the last class): a row is positive when its probability is at
            least the threshold, as serving decides it. ``None``: the most probable class.

    Raises:
        TrainingError: a threshold for a task that is not binary, or for a class the model
            does not predict.
    """
    if task == "regression":
        return evaluate_predictions(task, y.to_numpy(), model.predict(x))
    labels = list(classes) if classes is not None else [str(c) for c in model.classes_]
    proba = aligned_proba(model, x, labels)
    if threshold is None:
        pred = np.asarray(labels, dtype=object)[proba.argmax(axis=1)]
    else:
        pred = _thresholded(proba, labels, threshold, task)
    return evaluate_predictions(task, y.to_numpy(), pred, proba, labels)


def _thresholded(
    proba: np.ndarray, labels: list[str], threshold: ThresholdChoice | float, task: str
) -> np.ndarray:
    if isinstance(threshold, ThresholdChoice):
        cut, positive = threshold.threshold, threshold.positive
    else:
        cut, positive = float(threshold), labels[-1]
    if task != "binary" or len(labels) != 2 or positive not in labels:
        msg = (
            f"a decision threshold for class {positive!r} needs a binary task with that class; "
            f"this one is {task} with classes {labels}"
        )
        raise TrainingError(msg)
    j = labels.index(positive)
    negative = labels[1 - j]
    return np.where(proba[:, j] >= cut, positive, negative).astype(object)


def _fit(model: Pipeline, x: pd.DataFrame, y: pd.Series) -> None:
    try:
        model.fit(x, y)
    except Exception as exc:
        if not isinstance(exc, ValueError | TypeError) and not _library_error(exc):
            raise  # a bug, not a parameter or data the estimator refuses
        name = type(model.named_steps["model"]).__name__
        msg = f"{name} failed to fit: {str(exc).strip()}"
        raise TrainingError(msg) from exc


def _library_error(exc: Exception) -> bool:
    """Whether ``exc`` is an estimator library's own error (LightGBM's ``LightGBMError``)."""
    return type(exc).__module__.partition(".")[0] in _LIBRARIES


_LIBRARIES = frozenset({"lightgbm", "xgboost", "catboost"})


def refit(
    pipeline: Pipeline, x: pd.DataFrame, y: pd.Series, *, rounds_of: Pipeline | None = None
) -> Pipeline:
    """Fit a fresh clone of ``pipeline`` on all of ``x``/``y`` and return it.

    Early-stopping boosters in it (an ensemble's members too) refit with ``full_fit``: the rows
    they held out to find their rounds are then fitted too (see :mod:`shipyard.train._boosting`).
    With ``rounds_of`` (the same pipeline, fitted on other rows: the holdout's model), they
    fit as many rounds as there, once, without early stopping: the rounds are known.
    """
    model = clone(pipeline)
    names = model.get_params(deep=True)
    params = {name: True for name in names if name.endswith("__full_fit")}
    if rounds_of is not None:  # the same nested names (samplers, stripped there, are steps)
        params.update((k, v) for k, v in _same_rounds(rounds_of).items() if k in names)
    if params:
        model.set_params(**params)
    _fit(model, x, y)
    return model


def _same_rounds(fitted: Pipeline) -> dict[str, Any]:
    """For every early-stopping booster in ``fitted``, the parameters that refit it for the
    rounds it has (by their nested names).

    An ensemble's ``get_params`` lists its members as given (unfitted templates: the voting
    estimator fits clones of them), so its members are looked up among the fitted ones."""
    params: dict[str, Any] = {}
    for prefix, booster in _fitted_parts(fitted, ""):
        same = getattr(booster, "same_rounds_params", None)
        if same is None or "full_fit" not in booster.get_params(deep=False):
            continue
        try:
            found = same()
        except (AttributeError, ValueError, TypeError):  # not fitted: it finds its own
            continue
        params.update({prefix + key: value for key, value in found.items()})
    return params


def _fitted_parts(obj: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Every fitted estimator inside ``obj`` with its nested-name prefix (``model__`` ...):
    a pipeline's steps, and a fitted ensemble's members under their own names."""
    yield prefix, obj
    if isinstance(obj, Pipeline):
        for name, step in obj.steps:
            if step is not None and step != "passthrough":
                yield from _fitted_parts(step, f"{prefix}{name}__")
    fitted = getattr(obj, "named_estimators_", None)
    if fitted is not None:
        for name, member in fitted.items():
            yield from _fitted_parts(member, f"{prefix}{name}__")

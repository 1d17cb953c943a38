"""The model card: what a run's report says about the model beyond its headline metrics.

Sections come in order of value for their cost: holdout metrics with bootstrap intervals,
cross-validation intervals, the data profile with each feature's association with the target,
per-slice metrics and fairness measures, calibration, permutation importance, a SHAP summary,
and a learning curve. Each is timed; one whose estimated cost does not fit before the deadline
is skipped with a sentence saying so, and one that fails (a constant column, a single class,
a model an explainer does not know) says why instead of losing the report.

Pure: arrays and frames in, a :class:`ModelCard` out; the run report renders it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from shipyard.evaluate._association import FeatureProfile, profile_features
from shipyard.evaluate._curves import (
    LEARNING_CURVE_SIZES,
    Calibration,
    LearningCurve,
    calibration,
    learning_curve,
    learning_curve_cost,
)
from shipyard.evaluate._explain import (
    Importance,
    NotExplainable,
    ShapSummary,
    permutation_cost,
    permutation_importances,
    shap_summary,
)
from shipyard.evaluate._fairness import SliceReport, slice_metrics
from shipyard.evaluate._intervals import Interval, bootstrap_intervals, fold_intervals
from shipyard.evaluate._metrics import (
    KEY_METRICS,
    Evaluation,
    aligned_proba,
    evaluate_predictions,
)
from shipyard.evaluate._plots import (
    calibration_png,
    importance_png,
    learning_curve_png,
    shap_png,
)
from shipyard.spec import EvaluationSpec

__all__ = ["CardSection", "ModelCard", "build_model_card"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_IMPORTANCE_ROWS = 500
_IMPORTANCE_REPEATS = 3
_SHAP_ROWS = 200
_SHAP_MAX_SECONDS = 5.0
_PLOT_SECONDS = 0.3
"""About what one matplotlib figure costs to draw and encode."""
_MIN_RESAMPLES = 200
_RESAMPLE_CELL_SECONDS = 2.5e-7
"""Seconds per resampled row per class pair, measured on 2 cores (1000 x 2000 rows: 0.4 s)."""


@dataclass(frozen=True)
class CardSection(Generic[T]):
    """One section of the card.

    Attributes:
        title: the heading.
        value: what was computed, or ``None`` (``reason`` says why).
        seconds: time spent on it (estimating, computing and plotting).
        reason: why there is no value (not applicable, skipped for time, failed), or a caveat.
        png: its plot, if it has one and it could be drawn.
    """

    title: str
    value: T | None
    seconds: float = 0.0
    reason: str = ""
    png: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the plot)."""
        return {
            "title": self.title,
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
            "value": _jsonable(self.value),
        }


@dataclass(frozen=True)
class ModelCard:
    """Every section of a model card, in display order.

    Attributes:
        task, metric: the task and the primary metric.
        confidence: the intervals' coverage.
        holdout: bootstrap intervals of the holdout metrics.
        cv: t intervals of the winner's cross-validated means.
        profile: one profile per input column of the training rows.
        fairness: per-slice metrics for each sensitive column.
        calibration: the reliability of the probabilities (classifiers).
        importance: permutation importance of the raw inputs.
        shap: a SHAP summary of the transformed features.
        learning_curve: scores against training rows.
    """

    task: str
    metric: str
    confidence: float
    holdout: CardSection[dict[str, Interval]]
    cv: CardSection[dict[str, Interval]]
    profile: CardSection[list[FeatureProfile]]
    fairness: CardSection[list[SliceReport]]
    calibration: CardSection[Calibration]
    importance: CardSection[Importance]
    shap: CardSection[ShapSummary]
    learning_curve: CardSection[LearningCurve]

    @property
    def sections(self) -> dict[str, CardSection[Any]]:
        """The sections by name, in display order."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), CardSection)
        }

    @property
    def timings(self) -> dict[str, float]:
        """Seconds each section took."""
        return {name: s.seconds for name, s in self.sections.items()}

    @property
    def seconds(self) -> float:
        """Seconds the whole card took."""
        return float(sum(self.timings.values()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without plots)."""
        return {
            "task": self.task,
            "metric": self.metric,
            "confidence": self.confidence,
            "seconds": round(self.seconds, 3),
            "sections": {name: s.to_dict() for name, s in self.sections.items()},
        }


def build_model_card(
    *,
    model: Any,
    x_train: pd.DataFrame,
    y_train: pd.Series,
    x_test: pd.DataFrame,
    y_test: pd.Series,
    task: str,
    metric: str,
    classes: Sequence[str] | None,
    options: EvaluationSpec,
    seed: int,
    sensitive: pd.DataFrame | None = None,
    deadline: float | None = None,
    cv_folds: Sequence[Mapping[str, float]] | None = None,
    holdout: Evaluation | None = None,
    fit_seconds: float | None = None,
) -> ModelCard:
    """Compute a model card for a fitted model, within a deadline.

    Args:
        model: the fitted sklearn Pipeline (``features`` then ``model``, or an ensemble's
            one-step ``model``).
        x_train, y_train: the rows the model was fitted on (profile, learning curve).
        x_test, y_test: the holdout rows.
        task: ``binary``, ``multiclass`` or ``regression``.
        metric: the primary metric (importance and the learning curve measure it).
        classes: the class labels (the last is binary's positive class), ``None`` for
            regression.
        options: the project's ``evaluation`` settings.
        seed: the run's seed (resampling, samples, folds).
        sensitive: the holdout rows' sensitive columns, aligned with ``x_test`` by position.
        deadline: a :func:`time.monotonic` time by which the card must be done; sections
            that would not fit are skipped with a reason. ``None``: no limit.
        cv_folds: the model's cross-validation metrics, one mapping per fold.
        holdout: the model's holdout evaluation, if the caller has it (saves a prediction,
            and keeps predictions made with a tuned threshold).
        fit_seconds: how long one fit on ``x_train`` took (prices the learning curve; when
            ``None`` a fit on a tenth of the rows is timed).

    Returns:
        The card; every section has a value or a one-line reason.

    Example:
        >>> card = build_model_card(model=pipe, x_train=xtr, y_train=ytr, x_test=xte,
        ...     y_test=yte, task="binary", metric="roc_auc", classes=["no", "yes"],
        ...     options=EvaluationSpec(), seed=0, deadline=time.monotonic() + 10)
        ...     # doctest: +SKIP
        >>> card.timings  # doctest: +SKIP
        {'holdout': 0.41, 'cv': 0.0, 'profile': 0.12, ...}
    """
    clock = _Clock(deadline)
    started = time.perf_counter()
    ev = holdout if holdout is not None else _predict(model, x_test, y_test, task, classes)
    job = _Job(model, x_train, y_train, x_test, y_test, task, metric, classes, options, seed, ev)
    predicting = time.perf_counter() - started
    holdout_section = clock.run("Holdout metrics", lambda: _holdout_plan(job, clock))
    return ModelCard(
        task=task,
        metric=metric,
        confidence=options.confidence,
        holdout=_plus(holdout_section, predicting),
        cv=clock.run("Cross-validation", lambda: _cv_plan(job, cv_folds)),
        profile=clock.run("Data profile", lambda: _profile_plan(job)),
        fairness=clock.run("Fairness", lambda: _fairness_plan(job, sensitive)),
        calibration=clock.run("Calibration", lambda: _calibration_plan(job)),
        importance=clock.run("Permutation importance", lambda: _importance_plan(job, clock)),
        shap=clock.run("SHAP summary", lambda: _shap_plan(job, clock)),
        learning_curve=clock.run("Learning curve", lambda: _learning_plan(job, clock, fit_seconds)),
    )


@dataclass(frozen=True)
class _Job:
    model: Any
    x_train: pd.DataFrame
    y_train: pd.Series
    x_test: pd.DataFrame
    y_test: pd.Series
    task: str
    metric: str
    classes: Sequence[str] | None
    options: EvaluationSpec
    seed: int
    holdout: Evaluation


_Result = tuple[Any, bytes | None]
_Plan = tuple[Callable[[], _Result] | None, float, str]
"""(compute, estimated seconds, reason when ``compute`` is ``None``)."""


class _Clock:
    """Runs sections against a deadline, timing each."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def remaining(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def run(self, title: str, plan: Callable[[], _Plan]) -> CardSection[Any]:
        """Plan the section (estimate its cost), then compute it if it fits before the
        deadline; the time of both is the section's."""
        started = time.perf_counter()
        if self.remaining() <= 0:
            return CardSection(title, None, 0.0, "skipped: the deadline has passed")
        try:
            compute, estimate, reason = plan()
            if compute is None:
                return CardSection(title, None, time.perf_counter() - started, reason)
            left = self.remaining()
            if estimate > left:
                why = f"skipped: needs about {estimate:.1f} s, {max(left, 0.0):.1f} s left"
                return CardSection(title, None, time.perf_counter() - started, why)
            value, png = compute()
        except NotExplainable as exc:
            return CardSection(title, None, time.perf_counter() - started, f"not computed: {exc}")
        except _Short as exc:
            return CardSection(title, None, time.perf_counter() - started, str(exc))
        except Exception as exc:  # data a section cannot use: say so, keep the rest of the card
            # a ValueError is the data (one outcome, a constant column): the card says why;
            # anything else may be a bug, worth a warning in the log
            log = logger.info if isinstance(exc, ValueError) else logger.warning
            log("model card section %r failed: %s", title, exc, exc_info=True)
            why = f"failed: {type(exc).__name__}: {_first_line(exc)}"
            return CardSection(title, None, time.perf_counter() - started, why)
        note = "" if png is not None or not reason else reason
        note = getattr(value, "note", "") or note
        return CardSection(title, value, time.perf_counter() - started, note, png)


def _plus(section: CardSection[Any], seconds: float) -> CardSection[Any]:
    return CardSection(
        section.title, section.value, section.seconds + seconds, section.reason, section.png
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "(no message)"


def _plot(draw: Callable[..., bytes], *args: Any, **kwargs: Any) -> bytes | None:
    """Draw a plot; a failure leaves the section's numbers without their plot."""
    try:
        return draw(*args, **kwargs)
    except Exception as exc:  # a plot is never worth losing the card
        logger.warning("could not draw %s: %s", draw.__name__, exc, exc_info=True)
        return None


def _one_thread() -> Any:
    """Many small predictions run faster on one thread: OpenMP's thread start-up and
    spinning cost more than a few hundred rows take (5x on a busy 2-core machine)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    return threadpool_limits(limits=1)


def _predict(
    model: Any, x: pd.DataFrame, y: pd.Series, task: str, classes: Sequence[str] | None
) -> Evaluation:
    if task == "regression":
        return evaluate_predictions(task, y.to_numpy(), model.predict(x))
    labels = list(classes) if classes is not None else [str(c) for c in model.classes_]
    proba = aligned_proba(model, x, labels)
    pred = np.asarray(labels, dtype=object)[proba.argmax(axis=1)]
    return evaluate_predictions(task, y.to_numpy(), pred, proba, labels)


def _holdout_plan(job: _Job, clock: _Clock) -> _Plan:
    n_resamples = job.options.bootstrap
    if n_resamples == 0:
        return None, 0.0, "bootstrap intervals are off (evaluation.bootstrap: 0)"
    ev = job.holdout
    predicted = ev.y_pred
    if predicted is None:
        return None, 0.0, "the holdout evaluation has no predictions"
    width = 1 if job.task == "regression" else max(1, len(ev.labels or ()))
    per_resample = _RESAMPLE_CELL_SECONDS * len(job.y_test) * max(1.0, width / 2)
    left = clock.remaining()
    if math.isfinite(left) and per_resample > 0:
        affordable = int(left / per_resample)
        n_resamples = max(min(n_resamples, affordable), min(n_resamples, _MIN_RESAMPLES))

    def compute() -> _Result:
        intervals = bootstrap_intervals(
            job.task,
            ev.y_true if ev.y_true is not None else job.y_test.to_numpy(),
            predicted,
            ev.proba,
            ev.labels,
            metrics=[job.metric, *KEY_METRICS.get(job.task, ())],
            n_resamples=n_resamples,
            confidence=job.options.confidence,
            seed=job.seed,
            deadline=clock.deadline,  # the estimate is a constant: the clock has the last word
            min_resamples=min(n_resamples, _MIN_RESAMPLES),
        )
        out = _Intervals(intervals)
        drawn = max((i.n for i in intervals.values()), default=n_resamples)
        cut = n_resamples < job.options.bootstrap or clock.remaining() <= 0  # for time
        if intervals and drawn < job.options.bootstrap and cut:
            out.note = f"{drawn} resamples of the {job.options.bootstrap} asked, for time"
        return out, None

    return compute, per_resample * n_resamples, ""


class _Intervals(dict[str, Interval]):
    """The holdout's intervals, with a note when the bootstrap was cut short for time."""

    note: str = ""


def _cv_plan(job: _Job, folds: Sequence[Mapping[str, float]] | None) -> _Plan:
    if not folds:
        return None, 0.0, "no cross-validation folds were given"
    return (lambda: (fold_intervals(folds, job.options.confidence), None)), 0.0, ""


def _profile_plan(job: _Job) -> _Plan:
    def compute() -> _Result:
        return profile_features(job.x_train, job.y_train, task=job.task, seed=job.seed), None

    return compute, 0.002 * job.x_train.shape[1], ""


def _fairness_plan(job: _Job, sensitive: pd.DataFrame | None) -> _Plan:
    if sensitive is None or sensitive.shape[1] == 0:
        return None, 0.0, "no sensitive columns were declared (evaluation.sensitive)"
    ev = job.holdout
    truth = ev.y_true if ev.y_true is not None else job.y_test.to_numpy()
    predicted = ev.y_pred
    if predicted is None:
        return None, 0.0, "the holdout evaluation has no predictions"

    def compute() -> _Result:
        return slice_metrics(job.task, truth, predicted, sensitive, job.classes), None

    return compute, 0.05 * sensitive.shape[1], ""


def _calibration_plan(job: _Job) -> _Plan:
    ev = job.holdout
    if job.task == "regression":
        return None, 0.0, "a regression model has no probabilities to calibrate"
    if ev.proba is None or ev.labels is None or ev.y_true is None:
        return None, 0.0, "the model gives no probabilities"
    proba, labels, truth = ev.proba, ev.labels, ev.y_true

    def compute() -> _Result:
        cal = calibration(job.task, truth, proba, labels)
        png = _plot(calibration_png, cal.predicted, cal.observed, cal.counts, "probability")
        return cal, png

    return compute, _PLOT_SECONDS, "the calibration plot could not be drawn"


def _importance_plan(job: _Job, clock: _Clock) -> _Plan:
    if not job.options.explain:
        return None, 0.0, "explanations are off (evaluation.explain: false)"
    x, y = _sample(job.x_test, job.y_test, _IMPORTANCE_ROWS, job.seed)
    with _one_thread():
        one = permutation_cost(
            job.model, x, y, task=job.task, metric=job.metric, classes=job.classes
        )
    columns = max(1, x.shape[1])
    repeats = _IMPORTANCE_REPEATS
    while repeats > 2 and one * columns * repeats + _PLOT_SECONDS > clock.remaining():
        repeats -= 1  # fewer shuffles before giving the section up

    def compute() -> _Result:
        with _one_thread():
            imp = permutation_importances(
                job.model,
                x,
                y,
                task=job.task,
                metric=job.metric,
                classes=job.classes,
                n_repeats=repeats,
                seed=job.seed,
            )
        return imp, _plot(importance_png, imp.features, imp.mean, imp.std, job.metric)

    return compute, one * columns * repeats + _PLOT_SECONDS, "the plot could not be drawn"


def _shap_plan(job: _Job, clock: _Clock) -> _Plan:
    if not job.options.explain:
        return None, 0.0, "explanations are off (evaluation.explain: false)"

    def compute() -> _Result:
        budget = min(_SHAP_MAX_SECONDS, clock.remaining() - _PLOT_SECONDS)
        summary = shap_summary(
            job.model,
            job.x_test,
            task=job.task,
            classes=job.classes,
            seed=job.seed,
            max_rows=_SHAP_ROWS,
            budget=budget,
        )
        png = _plot(
            shap_png,
            summary.features,
            summary.values,
            summary.feature_values,
            summary.mean_abs,
            summary.by_class,
            summary.classes,
        )
        return summary, png

    return compute, 1.0 + _PLOT_SECONDS, "the SHAP plot could not be drawn"


def _learning_plan(job: _Job, clock: _Clock, fit_seconds: float | None) -> _Plan:
    if not job.options.learning_curve:
        return None, 0.0, "the learning curve is off (evaluation.learning_curve: false)"
    if fit_seconds is None and clock.deadline is not None:
        fit_seconds = _pilot_fit(job)  # without a deadline the price does not matter
    first = learning_curve_cost(fit_seconds or 0.0, LEARNING_CURVE_SIZES[:1])

    def compute() -> _Result:
        curve = learning_curve(
            job.model,
            job.x_train,
            job.y_train,
            task=job.task,
            metric=job.metric,
            classes=job.classes,
            seed=job.seed,
            fit_seconds=fit_seconds,
            deadline=clock.deadline,
        )
        if len(curve.sizes) < 2:
            msg = f"skipped: {curve.note}"
            raise _Short(msg)
        png = _plot(
            learning_curve_png,
            curve.sizes,
            curve.train,
            curve.validation,
            curve.validation_std,
            curve.metric,
        )
        return curve, png

    return compute, first + _PLOT_SECONDS, "the plot could not be drawn"


class _Short(Exception):
    """A section that ran out of time part way; the message is the card's reason."""


def _pilot_fit(job: _Job) -> float:
    """Seconds a fit on all training rows would take, from a fit on a tenth of them."""
    from sklearn.base import clone

    x, y = _sample(job.x_train, job.y_train, max(50, len(job.x_train) // 10), job.seed)
    started = time.perf_counter()
    try:
        clone(job.model).fit(x, y if job.task == "regression" else y.astype(str))
    except Exception:  # a sample missing a class: price the curve as unknown
        return math.inf
    return (time.perf_counter() - started) * len(job.x_train) / max(len(x), 1)


def _sample(x: pd.DataFrame, y: pd.Series, max_rows: int, seed: int) -> tuple[Any, Any]:
    if len(x) <= max_rows:
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(x), max_rows, replace=False))
    return x.iloc[keep], y.iloc[keep]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)

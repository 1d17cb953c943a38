"""Imbalanced classes: class weights, resampling inside the training folds, and the decision
threshold of a binary model.

- :func:`apply_class_weight` sets an estimator's own "balanced" class weighting, whatever the
  family calls it, or says why it cannot.
- :func:`resampling_pipeline` puts a sampler (imbalanced-learn) between the features and the
  model, so it acts when the pipeline is fitted and never on the rows it predicts; after the
  refit, :func:`strip_samplers` gives the same fitted steps as a plain scikit-learn pipeline,
  which is what a model package holds (serving needs no imbalanced-learn).
- :func:`tune_threshold` picks the probability above which a binary model says "positive",
  for a chosen metric, on out-of-fold predictions.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline

from shipyard.errors import TrainingError

__all__ = [
    "THRESHOLD_METRICS",
    "ClassWeighting",
    "FoldSMOTE",
    "ThresholdChoice",
    "apply_class_weight",
    "make_sampler",
    "resampling_pipeline",
    "strip_samplers",
    "tune_threshold",
]

logger = logging.getLogger(__name__)

Resample = Literal["over", "under", "smote"]
THRESHOLD_METRICS = ("f1", "f2", "balanced_accuracy", "mcc", "accuracy")
"""The metrics a decision threshold can be tuned for (``imbalance.threshold``)."""

# --- class weights ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassWeighting:
    """What :func:`apply_class_weight` did.

    Attributes:
        estimator: the estimator to use: a weighted copy, or the one given when nothing applied.
        parameter: the parameter that now weighs the classes (``class_weight``,
            ``auto_class_weights`` or ``scale_pos_weight``); ``None`` when none does.
        reason: why the classes are not weighted (empty when they are, or were not asked to be).
    """

    estimator: Any
    parameter: str | None = None
    reason: str = ""

    @property
    def applied(self) -> bool:
        """Whether the estimator now weighs its classes."""
        return self.parameter is not None


def apply_class_weight(
    estimator: Any,
    mode: Literal["balanced"] | None,
    *,
    y: Iterable[Any] | None = None,
) -> ClassWeighting:
    """Weigh an unfitted classifier's classes inversely to their frequency.

    The parameter is found on the estimator, not from a list of classes: ``class_weight``
    (scikit-learn, LightGBM), then ``auto_class_weights`` (CatBoost), then
    ``scale_pos_weight`` (XGBoost; binary tasks only: the rows of the first of the two sorted
    labels per row of the second, which XGBoost encodes as 1). The estimator given is left as
    it was.

    Args:
        estimator: the unfitted classifier.
        mode: ``"balanced"``, or ``None`` to leave it unweighted.
        y: the training labels (needed for ``scale_pos_weight`` only).

    Returns:
        The weighted copy and the parameter used, or the estimator and why it cannot be
        weighted (say, ``"KNeighborsClassifier takes no class weights"``).

    Example:
        >>> from sklearn.linear_model import LogisticRegression
        >>> apply_class_weight(LogisticRegression(), "balanced").estimator.class_weight
        'balanced'
    """
    if mode is None:
        return ClassWeighting(estimator)
    name = type(estimator).__name__
    if _accepts(estimator, "class_weight"):
        return ClassWeighting(_with(estimator, class_weight="balanced"), "class_weight")
    if _accepts(estimator, "auto_class_weights"):
        return ClassWeighting(_with(estimator, auto_class_weights="Balanced"), "auto_class_weights")
    if _accepts(estimator, "scale_pos_weight"):
        return _scale_pos_weight(estimator, y)
    return ClassWeighting(estimator, reason=f"{name} takes no class weights")


def _accepts(estimator: Any, parameter: str) -> bool:
    """Whether ``estimator`` takes ``parameter``: among its parameters, or (for a library
    whose ``get_params`` lists only those set, such as CatBoost) its constructor's, following
    ``**kwargs`` up to the base classes (a subclass that passes them on)."""
    if parameter in estimator.get_params(deep=False):
        return True
    for cls in type(estimator).__mro__:
        if "__init__" not in vars(cls):
            continue
        try:
            params = inspect.signature(vars(cls)["__init__"]).parameters
        except (TypeError, ValueError):  # a constructor without a signature
            return False
        if parameter in params:
            return True
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return False
    return False


def _with(estimator: Any, **params: Any) -> Any:
    return clone(estimator).set_params(**params)


def _scale_pos_weight(estimator: Any, y: Iterable[Any] | None) -> ClassWeighting:
    name = type(estimator).__name__
    if y is None:
        reason = f"{name} weighs classes by scale_pos_weight, which needs the training labels"
        return ClassWeighting(estimator, reason=reason)
    labels = np.asarray([str(v) for v in y], dtype=object)
    present = sorted(set(labels))
    if len(present) != 2:
        reason = (
            f"{name} weighs classes only in binary tasks (scale_pos_weight); "
            f"this one has {len(present)} classes: resample instead"
        )
        return ClassWeighting(estimator, reason=reason)
    n_positive = int(np.sum(labels == present[-1]))  # both classes are present
    ratio = float(len(labels) - n_positive) / n_positive
    return ClassWeighting(_with(estimator, scale_pos_weight=ratio), "scale_pos_weight")


# --- resampling ---------------------------------------------------------------------------


class FoldSMOTE(BaseEstimator):
    """SMOTE that adapts to the rows it is given: a training fold's smallest class may have
    fewer rows than SMOTE's neighbours need.

    With ``m`` rows in the smallest class to oversample, SMOTE runs with
    ``min(k_neighbors, m - 1)`` neighbours; a class of one row leaves nothing to interpolate,
    so random oversampling (duplicating rows) takes over. ``strategy_`` says which ran.

    Args:
        k_neighbors: the neighbours SMOTE interpolates between, at most.
        random_state: the seed.
    """

    def __init__(self, *, k_neighbors: int = 5, random_state: int | None = None) -> None:
        self.k_neighbors = k_neighbors
        self.random_state = random_state

    def fit_resample(self, x: Any, y: Any, **params: Any) -> tuple[Any, Any]:
        """Oversample every class but the largest to the largest's size.

        Returns:
            The resampled rows and labels.
        """
        from imblearn.over_sampling import SMOTE, RandomOverSampler

        values, counts = np.unique(np.asarray(y), return_counts=True)
        smaller = counts[counts < counts.max()]
        k = min(self.k_neighbors, int(smaller.min()) - 1) if len(smaller) else self.k_neighbors
        if k >= 1:
            sampler: Any = SMOTE(k_neighbors=k, random_state=self.random_state)
            self.strategy_ = f"smote (k_neighbors={k})"
        else:
            sampler = RandomOverSampler(random_state=self.random_state)
            rare = str(values[counts == smaller.min()][0])
            self.strategy_ = (
                f"random oversampling: class {rare!r} has 1 row in this fold, "
                "too few for SMOTE's neighbours"
            )
            logger.info("SMOTE fell back to %s", self.strategy_)
        self.sampler_ = sampler
        return sampler.fit_resample(x, y, **params)


def make_sampler(resample: Resample, *, seed: int) -> Any:
    """The unfitted sampler for ``imbalance.resample``: ``over`` (random oversampling),
    ``under`` (random undersampling) or ``smote`` (:class:`FoldSMOTE`).

    Raises:
        TrainingError: an unknown kind of resampling.
    """
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    if resample == "over":
        return RandomOverSampler(random_state=seed)
    if resample == "under":
        return RandomUnderSampler(random_state=seed)
    if resample == "smote":
        return FoldSMOTE(random_state=seed)
    msg = f"unknown resampling {resample!r}; expected 'over', 'under' or 'smote'"
    raise TrainingError(msg)


_NESTED = "features."  # flattened steps of a features Pipeline (imblearn refuses nesting)


def resampling_pipeline(features: Any, sampler: Any, estimator: Any) -> Pipeline:
    """An imbalanced-learn pipeline ``features -> sampler -> model``: the sampler resamples
    the transformed training rows when the pipeline is fitted and is skipped when it
    predicts, so no scored row is ever resampled.

    A features ``Pipeline`` is flattened into it (imbalanced-learn takes no nested pipeline
    before a sampler); :func:`strip_samplers` nests it again.
    """
    from imblearn.pipeline import Pipeline as ImbPipeline

    if isinstance(features, Pipeline):
        head = [(f"{_NESTED}{name}", step) for name, step in features.steps]
    else:
        head = [("features", features)]
    return ImbPipeline([*head, ("sampler", sampler), ("model", estimator)])


def strip_samplers(model: Any) -> Any:
    """The same pipeline, fitted or not, without its samplers: a plain scikit-learn
    ``Pipeline`` of the same (fitted) steps, which predicts exactly as ``model`` does (a
    sampler acts only in ``fit``). Pipelines inside an ensemble are stripped too. Anything
    without a sampler comes back as it is.

    A model package holds the stripped pipeline, so converting it to ONNX, loading and
    serving it never need imbalanced-learn.

    Raises:
        TrainingError: a sampler sits somewhere this cannot reach.
    """
    out = _strip(model)
    left = [type(p).__name__ for p in _parts(out) if _is_imblearn(p)]
    if left:
        msg = (
            f"cannot take imbalanced-learn's {sorted(set(left))} out of the model; a model "
            "package must predict without it"
        )
        raise TrainingError(msg)
    return out


def _strip(model: Any) -> Any:
    if isinstance(model, Pipeline):
        return _strip_pipeline(model)
    if isinstance(getattr(model, "estimators", None), list):  # voting / stacking ensembles
        return _strip_ensemble(model)
    return model


def _strip_pipeline(model: Pipeline) -> Any:
    steps: list[tuple[str, Any]] = []
    nested: list[tuple[str, Any]] = []
    for name, step in model.steps:
        if hasattr(step, "fit_resample"):
            continue
        if name.startswith(_NESTED):
            nested.append((name.removeprefix(_NESTED), _strip(step)))
            continue
        if nested:
            steps.append(("features", Pipeline(nested)))
            nested = []
        steps.append((name, _strip(step)))
    if nested:
        steps.append(("features", Pipeline(nested)))
    unchanged = len(steps) == len(model.steps) and all(
        a is b for (_, a), (_, b) in zip(steps, model.steps, strict=True)
    )
    if type(model) is Pipeline and unchanged:
        return model
    return Pipeline(steps, memory=model.memory, verbose=model.verbose)


def _strip_ensemble(model: Any) -> Any:
    stripped = [(name, _strip(est)) for name, est in model.estimators]
    if all(a is b for (_, a), (_, b) in zip(stripped, model.estimators, strict=True)):
        return model
    out = clone(model).set_params(estimators=stripped)
    for attr, value in vars(model).items():  # fitted state, with the members stripped
        if attr.endswith("_") and not attr.startswith("__"):
            setattr(out, attr, _strip_fitted(value))
    return out


def _strip_fitted(value: Any) -> Any:
    from sklearn.utils import Bunch

    if isinstance(value, Bunch):
        return Bunch(**{k: _strip(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return _strip(value)


def _parts(model: Any) -> list[Any]:
    """``model`` and everything it holds as parameters or fitted members."""
    seen: list[Any] = []
    stack = [model]
    while stack:
        item = stack.pop()
        seen.append(item)
        if isinstance(item, Pipeline):
            stack.extend(step for _, step in item.steps)
        for attr in ("estimators", "estimators_"):
            members = getattr(item, attr, None)
            if isinstance(members, list):
                stack.extend(m[1] if isinstance(m, tuple) else m for m in members)
    return seen


def _is_imblearn(part: Any) -> bool:
    return type(part).__module__.partition(".")[0] == "imblearn" or hasattr(part, "fit_resample")


# --- decision threshold -------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdChoice:
    """A binary model's decision threshold: a row is ``positive`` when the model's
    probability of it is at least ``threshold``.

    Attributes:
        threshold: the probability of the positive class from which a row is positive.
        score: ``metric`` at that threshold on the rows it was tuned on.
        default_score: ``metric`` at 0.5 on the same rows.
        metric: the metric it was tuned for.
        positive: the positive class.
    """

    threshold: float
    score: float
    default_score: float
    metric: str
    positive: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields: the model package's ``decision_threshold`` metadata."""
        return {
            "threshold": self.threshold,
            "metric": self.metric,
            "positive": self.positive,
            "score": self.score,
            "default_score": self.default_score,
        }


def tune_threshold(
    y_true: Iterable[Any],
    proba_positive: Sequence[float] | np.ndarray,
    *,
    positive_label: str,
    metric: str,
) -> ThresholdChoice:
    """The decision threshold that maximises ``metric`` on out-of-fold predictions.

    Every distinct threshold is tried at once: rows sorted by probability, the confusion
    counts of each cut between two distinct probabilities come from cumulative sums
    (``O(n log n)``). Of the best cuts, the widest run of neighbouring ones wins, and the
    threshold is the middle of its probability gap, not a training row's exact probability.

    Args:
        y_true: the true labels.
        proba_positive: each row's out-of-fold probability of ``positive_label``; NaN rows
            (rows no fold held out, see :func:`shipyard.train.cross_validate`) are skipped.
        positive_label: the positive class.
        metric: one of :data:`THRESHOLD_METRICS`.

    Returns:
        The threshold, its score and the score at 0.5.

    Raises:
        TrainingError: an unknown metric, or rows of only one class.

    Example:
        >>> choice = tune_threshold(["n", "n", "y", "y"], [0.1, 0.3, 0.35, 0.8],
        ...                         positive_label="y", metric="f1")
        >>> round(choice.threshold, 3), choice.score, round(choice.default_score, 3)
        (0.325, 1.0, 0.667)
    """
    if metric not in THRESHOLD_METRICS:
        msg = f"cannot tune a threshold for {metric!r}; expected one of {list(THRESHOLD_METRICS)}"
        raise TrainingError(msg)
    proba = np.asarray(proba_positive, dtype=float)
    is_positive = np.asarray([str(v) for v in y_true], dtype=object) == str(positive_label)
    kept = ~np.isnan(proba)
    proba, is_positive = proba[kept], is_positive[kept]
    n_positive = int(is_positive.sum())
    n_negative = len(is_positive) - n_positive
    if n_positive == 0 or n_negative == 0:
        msg = (
            f"cannot tune a decision threshold on {len(proba)} predictions with "
            f"{n_positive} positive ({positive_label!r}) and {n_negative} negative rows"
        )
        raise TrainingError(msg)
    order = np.argsort(-proba, kind="stable")
    ranked, hits = proba[order], is_positive[order]
    last_of_value = np.r_[ranked[1:] != ranked[:-1], True]
    distinct = ranked[last_of_value]  # descending
    # cut j (0..m) calls the rows of the j highest distinct probabilities positive
    tp = np.r_[0, np.cumsum(hits)[last_of_value]].astype(float)
    fp = np.r_[0, np.cumsum(~hits)[last_of_value]].astype(float)
    scores = _scores(metric, tp, fp, n_positive, n_negative)
    threshold = _plateau_middle(scores, distinct)
    at_half = proba >= 0.5
    default = _scores(
        metric,
        np.array([float(np.sum(at_half & is_positive))]),
        np.array([float(np.sum(at_half & ~is_positive))]),
        n_positive,
        n_negative,
    )
    return ThresholdChoice(
        threshold=threshold,
        score=float(scores.max()),
        default_score=float(default[0]),
        metric=metric,
        positive=str(positive_label),
    )


def _scores(
    metric: str, tp: np.ndarray, fp: np.ndarray, n_positive: int, n_negative: int
) -> np.ndarray:
    """``metric`` from confusion counts, elementwise (as scikit-learn computes it, with 0
    where it is undefined)."""
    fn, tn = n_positive - tp, n_negative - fp
    if metric == "accuracy":
        return (tp + tn) / (n_positive + n_negative)
    if metric == "balanced_accuracy":
        return (tp / n_positive + tn / n_negative) / 2
    if metric in ("f1", "f2"):
        beta2 = 1.0 if metric == "f1" else 4.0
        top = (1 + beta2) * tp
        return _ratio(top, top + beta2 * fn + fp)
    top = tp * tn - fp * fn  # mcc
    return _ratio(top, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    out = np.zeros_like(top)
    np.divide(top, bottom, out=out, where=bottom > 0)
    return out


def _plateau_middle(scores: np.ndarray, distinct: np.ndarray) -> float:
    """The middle of the widest probability range over which ``scores`` is at its best.

    Cut ``j`` holds for thresholds in ``(distinct[j], distinct[j - 1]]`` (unbounded past the
    ends); a run of best cuts ``j..l`` for ``(distinct[l], distinct[j - 1]]``.
    """
    best = scores >= scores.max() - 1e-12
    edges = np.flatnonzero(np.diff(np.r_[0, best.astype(int), 0]))
    runs = list(zip(edges[::2], edges[1::2] - 1, strict=True))
    m = len(distinct)

    def bounds(run: tuple[int, int]) -> tuple[float, float]:
        first, last = run
        low = float(distinct[last]) if last < m else -np.inf
        high = float(distinct[first - 1]) if first > 0 else np.inf
        return low, high

    def width(run: tuple[int, int]) -> float:
        low, high = bounds(run)
        return min(high, 1.0) - max(low, 0.0)

    low, high = bounds(max(runs, key=width))
    if np.isinf(low) and np.isinf(high):
        return 0.5
    if np.isinf(low):  # every row positive: anything up to the lowest probability
        middle = high / 2 if high > 0 else high
    elif np.isinf(high):  # no row positive: above the highest probability
        middle = (low + 1.0) / 2
        if not middle > low:
            return float(np.nextafter(low, np.inf))
    else:
        middle = (low + high) / 2
        middle = middle if low < middle <= high else high
    if middle in distinct:  # on a row's probability inside a run of best cuts
        above = distinct[distinct > middle]
        upper = min(float(above.min()) if len(above) else 1.0, high)
        if upper > middle:  # halfway to the next probability up, still in the run
            middle = (middle + upper) / 2
    return float(middle)

"""Early stopping for gradient boosting fitted where no one hands it an evaluation set.

Inside a scikit-learn ``Pipeline`` (cross-validation, a search trial, the refit, an ensemble)
LightGBM, XGBoost and CatBoost see only ``fit(X, y)``. Their Shipyard estimators (in
``_lightgbm``, ``_xgboost`` and ``_catboost``; subclasses of the libraries' own, so prediction,
pickling and ONNX conversion stay the libraries') split off a seeded fraction of the fit rows
as a validation set, stratified for classifiers, boost up to ``n_estimators`` and stop once
the validation loss has not improved for ``early_stopping_rounds`` rounds, keeping the best
iteration. This is scikit-learn's ``HistGradientBoosting*(early_stopping=True)``, and what
FLAML does for these libraries.

``early_stopping_rounds=None`` turns it off: then every row is fitted, for ``n_estimators``
rounds.

``full_fit=True`` (set by :func:`shipyard.train.refit` on the model that is registered) spends
the held-out rows too: once early stopping has found the number of rounds, the estimator is
fitted again on every row for that many rounds, scaled by the rows added
(:func:`full_fit_rounds`), as FLAML refits its best configuration on all the data. Cross-
validation and search trials leave it off: their fits are scored, and twice the time would
halve the trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import _safe_indexing, check_random_state

__all__ = [
    "ValidationSplit",
    "check_early_stopping",
    "full_fit_rounds",
    "refit_factor",
    "tree_count",
    "validation_split",
]

DEFAULT_ROUNDS = 50
"""Rounds without improvement on the validation rows before boosting stops."""

DEFAULT_FRACTION = 0.1
"""The share of the fit rows held out to decide when to stop."""


@dataclass(frozen=True)
class ValidationSplit:
    """Row positions: those fitted, and those that decide when to stop."""

    fit: np.ndarray
    valid: np.ndarray

    def take(self, x: Any, y: Any, sample_weight: Any = None) -> tuple[Any, ...]:
        """``(x_fit, y_fit, w_fit, x_valid, y_valid, w_valid)`` (weights ``None`` if none)."""
        parts = []
        for rows in (self.fit, self.valid):
            w = None if sample_weight is None else _safe_indexing(sample_weight, rows)
            parts += [_safe_indexing(x, rows), _safe_indexing(y, rows), w]
        return tuple(parts)


def check_early_stopping(rounds: Any, fraction: Any) -> None:
    """Raise ``ValueError`` (a :class:`~shipyard.errors.TrainingError` at fit) for bad values."""
    if rounds is not None and (not isinstance(rounds, int | np.integer) or rounds < 1):
        msg = f"early_stopping_rounds must be a whole number >= 1 or null (off), got {rounds!r}"
        raise ValueError(msg)
    if not isinstance(fraction, float | int) or not 0.0 < fraction < 1.0:
        msg = f"validation_fraction must be between 0 and 1 (exclusive), got {fraction!r}"
        raise ValueError(msg)


FULL_FIT_FAMILIES = frozenset({"lightgbm", "xgboost", "catboost"})
"""The catalogue's families whose refit fits twice (``full_fit``)."""


def refit_factor(family: str, rounds_known: bool = False) -> float:
    """A refit's time per row, in units of one CV fold's fit of the same family per row: one
    and a half (a fit, and then some); a booster refits twice (``full_fit``: early stopping
    on nine tenths, then every row for the rounds found), about twice a fold's time per row,
    and once when its rounds are known (``rounds_known``: a refit on every row after the
    holdout's model found them), without early stopping's validation: less than a fold's.

    Measured on 2 cores with ``benchmarks/training.py`` (LightGBM, one fold of four fifths of
    the training rows per trial): the first refit 1.3 (hotel_rates) and 1.7 (diamonds) times
    the best trial's time per row, the refit on every row 0.5 and 0.7 times.
    """
    if family in FULL_FIT_FAMILIES:
        return 0.8 if rounds_known else 2.0
    return 1.5


def tree_count(model: Any) -> int:
    """How many trees a fitted LightGBM or XGBoost model predicts with (every class's, up
    to its best iteration): what converting it to ONNX costs, about 2 ms a tree. ``0`` for
    any other model.

    Example:
        >>> tree_count(object())
        0
    """
    booster = getattr(model, "booster_", None)  # LightGBM
    if booster is not None and hasattr(booster, "num_model_per_iteration"):
        rounds = getattr(model, "best_iteration_", 0) or booster.current_iteration()
        return int(rounds) * int(booster.num_model_per_iteration())
    if not any(c.__module__.partition(".")[0] == "xgboost" for c in type(model).__mro__):
        return 0
    try:
        rounds = int(model.get_booster().num_boosted_rounds())
    except (AttributeError, ValueError, TypeError):  # not fitted
        return 0
    best = getattr(model, "best_iteration", None)
    if isinstance(best, int) and best >= 0:
        rounds = min(rounds, best + 1)
    n_classes = int(getattr(model, "n_classes_", 0) or 0)
    classes = n_classes if n_classes > 2 else 1
    return rounds * classes


def full_fit_rounds(best_rounds: int, fraction: float, cap: int) -> int:
    """The rounds for a fit on every row, given the best number found on ``1 - fraction`` of
    them: as many per row (``best_rounds / (1 - fraction)``), at most ``cap``
    (``n_estimators``).

    Example:
        >>> full_fit_rounds(90, 0.1, 1000), full_fit_rounds(990, 0.1, 1000)
        (100, 1000)
    """
    return max(1, min(round(best_rounds / (1.0 - fraction)), cap))


def validation_split(
    y: Any, fraction: float, random_state: Any, *, stratify: bool
) -> ValidationSplit | None:
    """Hold out about ``fraction`` of the rows, seeded by ``random_state``.

    Stratified (``stratify``): each class gives its share, and keeps at least one row in the
    fit part, so the fitted model knows every class. ``None`` when no row can be spared (a
    table of one row per class).

    Example:
        >>> s = validation_split(["a"] * 8 + ["b"] * 2, 0.25, 0, stratify=True)
        >>> len(s.fit), len(s.valid)
        (8, 2)
    """
    rng = check_random_state(random_state)
    labels = np.asarray(y)
    n = len(labels)
    if not stratify:
        order = rng.permutation(n)
        k = min(max(round(fraction * n), 1), n - 1)
        return None if k < 1 else _split(order[k:], order[:k])
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    valid = []
    for rows in groups:
        k = min(round(fraction * len(rows)), len(rows) - 1)
        valid.append(rng.permutation(rows)[:k])
    held = np.concatenate(valid) if valid else np.array([], dtype=int)
    if held.size == 0:  # a small table: one row of the largest class, if it can spare one
        largest = max(groups, key=len, default=np.array([], dtype=int))
        if len(largest) < 2:
            return None
        held = rng.permutation(largest)[:1]
    fit = np.setdiff1d(np.arange(n), held)
    return _split(fit, np.sort(held))


def _split(fit: np.ndarray, valid: np.ndarray) -> ValidationSplit:
    return ValidationSplit(fit=np.sort(fit), valid=np.sort(valid))

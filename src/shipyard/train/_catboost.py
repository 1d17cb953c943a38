"""CatBoost estimators that stop early on a validation split of their fit rows.

See :mod:`shipyard.train._boosting`. They are ``CatBoostClassifier``/``CatBoostRegressor``
subclasses that also behave as scikit-learn estimators where CatBoost does not: every
parameter is listed by ``get_params`` (CatBoost lists only those set, so a misspelt one would
go unnoticed), and ``clone`` works with list-valued parameters. With an evaluation set CatBoost
keeps the best iteration's model (``use_best_model``). There is no ONNX converter for them.
"""

from __future__ import annotations

import inspect
from typing import Any

import catboost

from shipyard.train._boosting import (
    DEFAULT_FRACTION,
    DEFAULT_ROUNDS,
    check_early_stopping,
    full_fit_rounds,
    validation_split,
)

__all__ = ["EarlyStoppingCatBoostClassifier", "EarlyStoppingCatBoostRegressor"]

_CATBOOST_ITERATIONS = 1000  # CatBoost's default ``iterations``


_OURS = ("validation_fraction", "full_fit")  # not CatBoost's own parameters
_DEFAULTS = {"validation_fraction": DEFAULT_FRACTION, "full_fit": False}


class _EarlyStopping:
    validation_fraction: float
    full_fit: bool
    _stratify = False
    _library: type

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Every parameter (``None``: CatBoost's default), with ours."""
        names = inspect.signature(self._library).parameters
        params: dict[str, Any] = dict.fromkeys(names)
        params.update(super().get_params())  # type: ignore[misc]
        params.update((name, getattr(self, name)) for name in _OURS)
        return params

    def set_params(self, **params: Any) -> Any:
        """Set parameters; ``None`` restores CatBoost's default."""
        for name in _OURS:
            if name in params:
                setattr(self, name, params.pop(name))
        unset = [name for name, value in params.items() if value is None]
        for name in unset:
            self._init_params.pop(name, None)  # type: ignore[attr-defined]
            params.pop(name)
        return super().set_params(**params)  # type: ignore[misc]

    def __sklearn_clone__(self) -> Any:
        return type(self)(**self.get_params())

    def __getstate__(self) -> dict[str, Any]:
        # CatBoost pickles its own parameters only: ours would be lost, and a loaded model
        # could then neither list its parameters nor be cloned or refitted
        state: dict[str, Any] = dict(super().__getstate__())  # type: ignore[call-overload]
        state["__shipyard"] = {name: getattr(self, name) for name in _OURS}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        ours = state.pop("__shipyard", {})
        for name in _OURS:  # a pickle from before they were kept: the defaults
            setattr(self, name, ours.get(name, _DEFAULTS[name]))
        super().__setstate__(state)  # type: ignore[misc]

    def same_rounds_params(self) -> dict[str, Any]:
        """Parameters for a refit on other rows that fits as many rounds as this fitted
        model has, without early stopping (see :func:`shipyard.train.refit`)."""
        rounds = int(self.tree_count_)  # type: ignore[attr-defined]
        return {"early_stopping_rounds": None, "full_fit": False, "iterations": rounds}

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, **kwargs: Any) -> Any:
        """Fit, holding out ``validation_fraction`` of the rows to stop early (unless
        ``early_stopping_rounds`` is ``None`` or an ``eval_set`` is given)."""
        rounds = self._init_params.get("early_stopping_rounds")  # type: ignore[attr-defined]
        check_early_stopping(rounds, self.validation_fraction)
        library_fit = super().fit  # type: ignore[misc]
        split = None
        if rounds is not None and kwargs.get("eval_set") is None:
            seed = self._init_params.get("random_seed")  # type: ignore[attr-defined]
            split = validation_split(y, self.validation_fraction, seed, stratify=self._stratify)
        if split is None:
            return library_fit(X, y, sample_weight=sample_weight, **kwargs)
        x_fit, y_fit, w_fit, x_valid, y_valid, w_valid = split.take(X, y, sample_weight)
        valid = catboost.Pool(x_valid, y_valid, weight=w_valid)
        fitted = library_fit(x_fit, y_fit, sample_weight=w_fit, eval_set=valid, **kwargs)
        if not self.full_fit:
            return fitted
        init: dict[str, Any] = self._init_params  # type: ignore[attr-defined]
        saved = dict(init)
        cap = int(init.get("iterations") or _CATBOOST_ITERATIONS)
        best = int(self.tree_count_)  # type: ignore[attr-defined]  # the best model's rounds
        init.pop("early_stopping_rounds", None)
        init["iterations"] = full_fit_rounds(best, self.validation_fraction, cap)
        self._canonized_params = None  # CatBoost's cache of _init_params
        try:  # every row, for the rounds found (see shipyard.train._boosting)
            return library_fit(X, y, sample_weight=sample_weight, **kwargs)
        finally:
            init.clear()
            init.update(saved)
            self._canonized_params = None  # CatBoost's cache of _init_params


class EarlyStoppingCatBoostClassifier(_EarlyStopping, catboost.CatBoostClassifier):
    """``CatBoostClassifier`` that stops early on a stratified validation split.

    Args:
        early_stopping_rounds: stop after this many rounds without improvement of the
            validation loss; ``None``: no early stopping, ``iterations`` rounds.
        validation_fraction: the share of the fit rows held out for it.
        full_fit: then fit every row for the rounds found (see :mod:`shipyard.train._boosting`).
        **kwargs: ``CatBoostClassifier``'s parameters.
    """

    _stratify = True
    _library = catboost.CatBoostClassifier

    def __init__(
        self,
        *,
        early_stopping_rounds: int | None = DEFAULT_ROUNDS,
        validation_fraction: float = DEFAULT_FRACTION,
        full_fit: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(early_stopping_rounds=early_stopping_rounds, **kwargs)
        self.validation_fraction = validation_fraction
        self.full_fit = full_fit

    def predict(self, X: Any, prediction_type: str = "Class", **kwargs: Any) -> Any:
        """CatBoost's ``predict``; labels as one column-less array, as scikit-learn's are."""
        out = super().predict(X, prediction_type=prediction_type, **kwargs)
        if prediction_type == "Class" and getattr(out, "ndim", 1) == 2 and out.shape[1] == 1:
            return out.ravel()
        return out


class EarlyStoppingCatBoostRegressor(_EarlyStopping, catboost.CatBoostRegressor):
    """``CatBoostRegressor`` that stops early on a validation split (see the classifier)."""

    _library = catboost.CatBoostRegressor

    def __init__(
        self,
        *,
        early_stopping_rounds: int | None = DEFAULT_ROUNDS,
        validation_fraction: float = DEFAULT_FRACTION,
        full_fit: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(early_stopping_rounds=early_stopping_rounds, **kwargs)
        self.validation_fraction = validation_fraction
        self.full_fit = full_fit

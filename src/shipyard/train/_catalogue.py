"""The model catalogue: names in ``shipyard.yaml`` -> estimator factories.

Built-in entries register through the same :meth:`Catalogue.add` call a plugin would use;
build a catalogue per application with :func:`default_catalogue`, never at import time.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

from shipyard.errors import TrainingError
from shipyard.spec import ParamRange

__all__ = ["Catalogue", "CatalogueEntry", "default_catalogue"]

Factory = Callable[[str, int], Any]
"""``factory(task, seed) -> unfitted sklearn estimator``."""

CLASSIFICATION = frozenset({"binary", "multiclass"})
REGRESSION = frozenset({"regression"})
ALL_TASKS = CLASSIFICATION | REGRESSION


@dataclass(frozen=True)
class CatalogueEntry:
    """One model family.

    Attributes:
        key: the name used in ``models: - model: KEY``.
        tasks: the tasks it supports.
        factory: builds the unfitted estimator for a task and seed.
        description: one line for ``shipyard models catalogue`` and the docs.
        library: the package that implements it (``shipyard models catalogue`` shows it, so
            a plugin's entry says what to install).
        space: the parameter ranges a search (``search:`` in ``shipyard.yaml``) explores by
            default; empty: a search tries its defaults only.
        cost_rank: where it comes in a search's first pass (cheaper families first).
        searched: whether a search takes it when ``search.families`` is not given (an entry
            that is another's special case, such as ``ridge`` for ``linear``, is not).
    """

    key: str
    tasks: frozenset[str]
    factory: Factory
    description: str
    library: str = "scikit-learn"
    space: Mapping[str, ParamRange] = field(default_factory=dict)
    cost_rank: int = 50
    searched: bool = True


class Catalogue:
    """Named model families; ``create(key, task, seed, params)`` builds an estimator."""

    def __init__(self) -> None:
        self._entries: dict[str, CatalogueEntry] = {}

    def add(self, entry: CatalogueEntry) -> None:
        """Register a model family (a later entry with the same key replaces the earlier)."""
        self._entries[entry.key] = entry

    def keys(self) -> list[str]:
        """Every registered key, sorted."""
        return sorted(self._entries)

    def entries(self, task: str | None = None) -> list[CatalogueEntry]:
        """Every entry, sorted by key; only those that support ``task`` when it is given."""
        entries = [self._entries[k] for k in self.keys()]
        return [e for e in entries if task is None or task in e.tasks]

    def get(self, key: str, *, where: str = "models") -> CatalogueEntry:
        """The entry for ``key``.

        Raises:
            TrainingError: no such key (with the closest known keys).
        """
        if key in self._entries:
            return self._entries[key]
        close = difflib.get_close_matches(key, self.keys(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"{where}: unknown model {key!r}{hint} (known: {', '.join(self.keys())})"
        raise TrainingError(msg)

    def create(
        self,
        key: str,
        task: str,
        *,
        seed: int,
        params: Mapping[str, Any],
        where: str = "models",
        params_where: str | None = None,
    ) -> Any:
        """Build an unfitted estimator with ``params`` applied and checked.

        Parameter names are checked against the estimator, and values against its declared
        constraints when it declares them (scikit-learn estimators do; a library that checks
        only when fitting, such as LightGBM, fails then, as a :class:`TrainingError` too).

        Args:
            key: the catalogue key.
            task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
            seed: the random seed the factory gives the estimator.
            params: the candidate's parameters.
            where: where the key was given, for messages (``file:line (field)``).
            params_where: where the parameters were given; ``where`` by default.

        Returns:
            The unfitted estimator.

        Raises:
            TrainingError: unknown key, a task the family does not support, an unknown
                parameter (with the closest name) or a value the estimator refuses.
        """
        entry = self.get(key, where=where)
        if task not in entry.tasks:
            tasks = sorted(entry.tasks)
            msg = f"{where}: model {key!r} does not support task {task!r} (it does {tasks})"
            raise TrainingError(msg)
        params_where = params_where or where
        estimator = entry.factory(task, seed)
        valid = estimator.get_params(deep=False)
        unknown = [p for p in params if p not in valid]
        if unknown:
            close = {p: difflib.get_close_matches(p, list(valid), n=1) for p in unknown}
            hints = ", ".join(
                f"{p!r}" + (f" (did you mean {c[0]!r}?)" if c else "") for p, c in close.items()
            )
            msg = (
                f"{params_where}: {key} has no parameter {hints}; see the estimator's documentation"
            )
            raise TrainingError(msg)
        try:
            estimator.set_params(**params)
            if hasattr(estimator, "_parameter_constraints"):  # scikit-learn's own check
                estimator._validate_params()
        except (TypeError, ValueError) as exc:
            msg = f"{params_where}: bad parameters for {key}: {exc}"
            raise TrainingError(msg) from exc
        return estimator


def default_catalogue() -> Catalogue:
    """A catalogue with Shipyard's built-in model families."""
    catalogue = Catalogue()
    for entry in _builtins():
        catalogue.add(entry)
    return catalogue


def _builtins() -> list[CatalogueEntry]:
    return [
        CatalogueEntry(
            "linear",
            ALL_TASKS,
            _linear,
            "logistic regression / ridge regression",
            space={"C": _log(1e-3, 1e3), "alpha": _log(1e-4, 1e3)},
            cost_rank=0,
        ),
        CatalogueEntry(
            "logistic_regression",
            CLASSIFICATION,
            _logistic,
            "L2 logistic regression",
            space={"C": _log(1e-3, 1e3)},
            cost_rank=0,
            searched=False,
        ),
        CatalogueEntry(
            "linear_regression",
            REGRESSION,
            lambda t, s: LinearRegression(),
            "ordinary least squares",
            cost_rank=0,
            searched=False,
        ),
        CatalogueEntry(
            "ridge",
            REGRESSION,
            lambda t, s: Ridge(random_state=s),
            "L2 linear regression",
            space={"alpha": _log(1e-4, 1e3)},
            cost_rank=0,
            searched=False,
        ),
        CatalogueEntry(
            "random_forest",
            ALL_TASKS,
            _random_forest,
            "random forest (scikit-learn)",
            space=_FOREST,
            cost_rank=30,
        ),
        CatalogueEntry(
            "extra_trees",
            ALL_TASKS,
            _extra_trees,
            "extremely randomised trees",
            space=_FOREST,
            cost_rank=20,
        ),
        CatalogueEntry(
            "hist_gradient_boosting",
            ALL_TASKS,
            _hgb,
            "histogram gradient boosting (scikit-learn)",
            space={
                "learning_rate": _log(0.01, 0.3),
                "max_iter": _log(50, 1000, integer=True),
                "max_leaf_nodes": _log(8, 256, integer=True),
                "min_samples_leaf": _log(2, 100, integer=True),
                "l2_regularization": _log(1e-6, 10.0),
            },
            cost_rank=10,
        ),
        CatalogueEntry(
            "lightgbm",
            ALL_TASKS,
            _lightgbm,
            "LightGBM gradient boosted trees",
            "lightgbm",
            space={
                "n_estimators": _log(50, 1000, integer=True),
                "learning_rate": _log(0.01, 0.3),
                "num_leaves": _log(8, 256, integer=True),
                "min_child_samples": _log(2, 100, integer=True),
                "colsample_bytree": ParamRange(low=0.4, high=1.0),
                "reg_lambda": _log(1e-3, 10.0),
            },
            cost_rank=5,
        ),
    ]


def _log(low: float, high: float, *, integer: bool = False) -> ParamRange:
    return ParamRange(low=low, high=high, log=True, integer=integer)


_FOREST = {
    "n_estimators": _log(50, 500, integer=True),
    "max_features": ParamRange(low=0.1, high=1.0),
    "min_samples_leaf": _log(1, 20, integer=True),
}


def _linear(task: str, seed: int) -> Any:
    return _logistic(task, seed) if task in CLASSIFICATION else Ridge(random_state=seed)


def _logistic(task: str, seed: int) -> Any:
    return LogisticRegression(max_iter=2000, random_state=seed)


def _random_forest(task: str, seed: int) -> Any:
    cls = RandomForestClassifier if task in CLASSIFICATION else RandomForestRegressor
    return cls(n_estimators=200, random_state=seed, n_jobs=1)


def _extra_trees(task: str, seed: int) -> Any:
    cls = ExtraTreesClassifier if task in CLASSIFICATION else ExtraTreesRegressor
    return cls(n_estimators=200, random_state=seed, n_jobs=1)


def _hgb(task: str, seed: int) -> Any:
    cls = (
        HistGradientBoostingClassifier if task in CLASSIFICATION else HistGradientBoostingRegressor
    )
    return cls(random_state=seed)


def _lightgbm(task: str, seed: int) -> Any:
    import lightgbm  # heavy; imported only when a LightGBM candidate is built

    cls = lightgbm.LGBMClassifier if task in CLASSIFICATION else lightgbm.LGBMRegressor
    return cls(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=10,
        random_state=seed,
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )

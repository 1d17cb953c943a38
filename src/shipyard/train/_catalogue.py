"""The model catalogue: names in ``shipyard.yaml`` -> estimator factories and search spaces.

Built-in entries register through the same :meth:`Catalogue.add` call a plugin would use;
build a catalogue per application with :func:`default_catalogue`, never at import time. A
``model:`` may also be an estimator class's import path (see :mod:`._imported`).

The search spaces follow FLAML's: log scales, the factory's defaults as the cheap first
trial, and for the boosting families no ``n_estimators`` range: they stop early on a
validation split instead (:mod:`._boosting`), so a trial's cost follows what it learns.
Optional libraries (XGBoost, CatBoost) are imported when an estimator is built; a missing one
is a :class:`TrainingError` naming the extra to install.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
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
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from shipyard.errors import TrainingError
from shipyard.spec import ParamRange
from shipyard.train._imported import build_imported, estimator_kind, import_estimator
from shipyard.train._target_scaling import (
    StandardizedElasticNet,
    StandardizedLasso,
    StandardizedMLPRegressor,
    StandardizedSVR,
)

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
        max_rows: a searched family whose cost grows faster than the table (a kernel SVM,
            k-nearest neighbours) is taken by default only up to this many rows.
    """

    key: str
    tasks: frozenset[str]
    factory: Factory
    description: str
    library: str = "scikit-learn"
    space: Mapping[str, ParamRange] = field(default_factory=dict)
    cost_rank: int = 50
    searched: bool = True
    max_rows: int | None = None


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

    def searched(self, task: str, *, n_rows: int | None = None) -> list[CatalogueEntry]:
        """The entries a search takes when ``search.families`` is not given: those that do
        ``task``, are ``searched``, and (when ``n_rows`` is given) whose ``max_rows`` admits
        a table of that many rows."""
        return [
            e
            for e in self.entries(task)
            if e.searched and (n_rows is None or e.max_rows is None or n_rows <= e.max_rows)
        ]

    def get(self, key: str, *, where: str = "models") -> CatalogueEntry:
        """The entry for ``key``: a registered key, or an estimator class's import path
        (``sklearn.svm.LinearSVR``, ``mypkg.models:MyModel``; not searched by default).

        Raises:
            TrainingError: no such key (with the closest known keys), or a path that does not
                import or is not an estimator class.
        """
        if key in self._entries:
            return self._entries[key]
        if "." in key or ":" in key:
            return _imported_entry(key, where)
        close = difflib.get_close_matches(key, self.keys(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = (
            f"{where}: unknown model {key!r}{hint} (known: {', '.join(self.keys())}; or an "
            "estimator class's import path, such as sklearn.svm.SVC or mypkg.models:MyModel)"
        )
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
            TrainingError: unknown key, a missing optional library (with the extra to
                install), a task the family does not support, an unknown parameter (with the
                closest name), a value the estimator refuses, or a classifier without
                ``predict_proba``.
        """
        entry = self.get(key, where=where)
        if task not in entry.tasks:
            tasks = sorted(entry.tasks)
            msg = f"{where}: model {key!r} does not support task {task!r} (it does {tasks})"
            raise TrainingError(msg)
        params_where = params_where or where
        try:
            estimator = entry.factory(task, seed)
        except TrainingError as exc:  # an optional library is missing
            msg = f"{where}: {exc}"
            raise TrainingError(msg) from exc
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
        if task in CLASSIFICATION and not hasattr(estimator, "predict_proba"):
            msg = (
                f"{where}: {key} has no predict_proba with these parameters, and a classifier "
                "needs class probabilities (for its metrics, threshold and serving); choose a "
                "probabilistic classifier or parameters that give one"
            )
            raise TrainingError(msg)
        return estimator


def default_catalogue() -> Catalogue:
    """A catalogue with Shipyard's built-in model families.

    XGBoost and CatBoost are searched by default only when installed (``shipyard[xgboost]``,
    ``shipyard[catboost]``); naming them without the library is an error saying so.
    """
    catalogue = Catalogue()
    for entry in _builtins():
        catalogue.add(entry)
    return catalogue


def _imported_entry(path: str, where: str) -> CatalogueEntry:
    cls = import_estimator(path, where=where)
    kind = estimator_kind(cls, path=path, where=where)
    tasks = {"classifier": CLASSIFICATION, "regressor": REGRESSION}.get(kind or "", ALL_TASKS)
    doc = (cls.__doc__ or "").strip().splitlines()
    return CatalogueEntry(
        path,
        tasks,
        functools.partial(build_imported, cls),
        doc[0] if doc else cls.__name__,
        library=cls.__module__.partition(".")[0],
        searched=False,
    )


def _builtins() -> list[CatalogueEntry]:
    return [*_linear_entries(), *_tree_entries(), *_boosting_entries(), *_other_entries()]


def _linear_entries() -> list[CatalogueEntry]:
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
            "lasso",
            REGRESSION,
            lambda t, s: StandardizedLasso(alpha=0.01, max_iter=5000, random_state=s),
            "L1 linear regression (alpha on the standardised target)",
            space={"alpha": _log(1e-5, 1.0)},
            cost_rank=1,
            searched=False,
        ),
        CatalogueEntry(
            "elastic_net",
            REGRESSION,
            lambda t, s: StandardizedElasticNet(
                alpha=0.01, l1_ratio=0.5, max_iter=5000, random_state=s
            ),
            "L1 + L2 linear regression (alpha on the standardised target)",
            space={"alpha": _log(1e-5, 1.0), "l1_ratio": ParamRange(low=0.05, high=1.0)},
            cost_rank=1,
            searched=False,
        ),
    ]


def _tree_entries() -> list[CatalogueEntry]:
    return [
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
                # LightGBM's space reaches the slow corner (1,000 rounds at a rate of 0.01)
                "learning_rate": _log(0.03, 0.3),
                "max_iter": _log(50, 500, integer=True),
                "max_leaf_nodes": _log(8, 256, integer=True),
                "min_samples_leaf": _log(2, 100, integer=True),
                "l2_regularization": _log(1e-6, 10.0),
            },
            cost_rank=10,
        ),
    ]


def _boosting_entries() -> list[CatalogueEntry]:
    return [
        CatalogueEntry(
            "lightgbm",
            ALL_TASKS,
            _lightgbm,
            "LightGBM gradient boosted trees (early stopping)",
            "lightgbm",
            space={
                "learning_rate": _log(0.01, 0.5),
                "num_leaves": _log(4, 256, integer=True),
                "min_child_samples": _log(2, 128, integer=True),
                "colsample_bytree": ParamRange(low=0.3, high=1.0),
                "reg_alpha": _log(1e-3, 10.0),
                "reg_lambda": _log(1e-3, 100.0),
            },
            cost_rank=5,
        ),
        CatalogueEntry(
            "xgboost",
            ALL_TASKS,
            _xgboost,
            "XGBoost gradient boosted trees (early stopping; shipyard[xgboost])",
            "xgboost",
            space={
                "learning_rate": _log(0.01, 0.5),
                "max_depth": ParamRange(low=2, high=10, integer=True),
                "min_child_weight": _log(1e-3, 128.0),
                "subsample": ParamRange(low=0.5, high=1.0),
                "colsample_bytree": ParamRange(low=0.3, high=1.0),
                "reg_alpha": _log(1e-3, 10.0),
                "reg_lambda": _log(1e-3, 100.0),
            },
            cost_rank=8,
            searched=_installed("xgboost"),
        ),
        CatalogueEntry(
            "catboost",
            ALL_TASKS,
            _catboost,
            "CatBoost gradient boosted trees (early stopping; shipyard[catboost])",
            "catboost",
            space={
                "learning_rate": _log(0.01, 0.5),
                "depth": ParamRange(low=4, high=8, integer=True),
                "l2_leaf_reg": _log(0.5, 30.0),
            },
            cost_rank=9,
            searched=_installed("catboost"),
        ),
    ]


def _other_entries() -> list[CatalogueEntry]:
    return [
        CatalogueEntry(
            "svm",
            ALL_TASKS,
            _svm,
            "kernel support vector machine (RBF; cost grows with rows squared)",
            space={"C": _log(0.01, 100.0), "gamma": _log(1e-4, 1.0)},
            cost_rank=60,
            max_rows=_SVM_MAX_ROWS,
        ),
        CatalogueEntry(
            "knn",
            ALL_TASKS,
            _knn,
            "k-nearest neighbours",
            space={
                "n_neighbors": _log(2, 100, integer=True),
                "weights": ParamRange(choices=["uniform", "distance"]),
            },
            cost_rank=15,
            max_rows=_KNN_MAX_ROWS,
        ),
        CatalogueEntry(
            "naive_bayes",
            CLASSIFICATION,
            lambda t, s: GaussianNB(),
            "Gaussian naive Bayes",
            space={"var_smoothing": _log(1e-12, 1e-1)},
            cost_rank=0,
            searched=False,
        ),
        CatalogueEntry(
            "mlp",
            ALL_TASKS,
            _mlp,
            "small neural network (one hidden layer, early stopping)",
            space={
                "hidden_layer_sizes": ParamRange(choices=[32, 64, 128]),
                "alpha": _log(1e-6, 1e-1),
                "learning_rate_init": _log(1e-4, 1e-1),
            },
            cost_rank=12,
            searched=False,
        ),
    ]


_SVM_MAX_ROWS = 5_000  # fit time grows with rows squared (and 5-fold Platt scaling on top)
_KNN_MAX_ROWS = 20_000  # each prediction scans the training rows


def _log(low: float, high: float, *, integer: bool = False) -> ParamRange:
    return ParamRange(low=low, high=high, log=True, integer=integer)


_FOREST = {
    "n_estimators": _log(50, 500, integer=True),
    "max_features": ParamRange(low=0.1, high=1.0),
    "min_samples_leaf": _log(1, 20, integer=True),
}

_BOOSTING_CAP = 1000  # boosting rounds at most; early stopping ends most fits far sooner


def _installed(package: str) -> bool:
    """Whether ``package`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # ValueError: in sys.modules without a spec
        return False


def _optional(module: str, package: str, key: str) -> Any:
    """Import ``module`` (ours, built on ``package``), or say what to install."""
    try:
        importlib.import_module(package)
    except ImportError as exc:
        if exc.name not in (None, package):
            raise  # the library is there but broken: its own error says more
        msg = f"model {key!r} needs the {package} package: pip install 'shipyard[{package}]'"
        raise TrainingError(msg) from exc
    return importlib.import_module(module)


def _linear(task: str, seed: int) -> Any:
    return _logistic(task, seed) if task in CLASSIFICATION else Ridge(random_state=seed)


def _logistic(task: str, seed: int) -> Any:
    return LogisticRegression(max_iter=2000, random_state=seed)


def _random_forest(task: str, seed: int) -> Any:
    cls = RandomForestClassifier if task in CLASSIFICATION else RandomForestRegressor
    return cls(n_estimators=100, random_state=seed, n_jobs=1)


def _extra_trees(task: str, seed: int) -> Any:
    cls = ExtraTreesClassifier if task in CLASSIFICATION else ExtraTreesRegressor
    return cls(n_estimators=100, random_state=seed, n_jobs=1)


def _hgb(task: str, seed: int) -> Any:
    cls = (
        HistGradientBoostingClassifier if task in CLASSIFICATION else HistGradientBoostingRegressor
    )
    # early stopping on a tenth of the fit's rows always (scikit-learn's "auto" turns it on
    # only above 10,000 rows, where a search's 1,000-iteration trial on 9,000 rows ran 48 s)
    return cls(random_state=seed, early_stopping=True, validation_fraction=0.1, n_iter_no_change=10)


def _lightgbm(task: str, seed: int) -> Any:
    from shipyard.train import _lightgbm as lgb  # heavy; imported when a candidate is built

    cls = (
        lgb.EarlyStoppingLGBMClassifier
        if task in CLASSIFICATION
        else lgb.EarlyStoppingLGBMRegressor
    )
    return cls(
        n_estimators=_BOOSTING_CAP,
        learning_rate=0.1,
        num_leaves=31,
        min_child_samples=20,
        random_state=seed,
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


def _xgboost(task: str, seed: int) -> Any:
    xgb = _optional("shipyard.train._xgboost", "xgboost", "xgboost")
    cls = (
        xgb.EarlyStoppingXGBClassifier if task in CLASSIFICATION else xgb.EarlyStoppingXGBRegressor
    )
    return cls(
        n_estimators=_BOOSTING_CAP,
        learning_rate=0.1,
        max_depth=6,
        # XGBoost's own defaults, spelled out: where the search's local steps start
        min_child_weight=1.0,
        subsample=1.0,
        colsample_bytree=1.0,
        reg_alpha=0.0,
        reg_lambda=1.0,
        tree_method="hist",
        random_state=seed,
        n_jobs=1,
        verbosity=0,
    )


def _catboost(task: str, seed: int) -> Any:
    cb = _optional("shipyard.train._catboost", "catboost", "catboost")
    cls = (
        cb.EarlyStoppingCatBoostClassifier
        if task in CLASSIFICATION
        else cb.EarlyStoppingCatBoostRegressor
    )
    return cls(
        iterations=_BOOSTING_CAP,
        learning_rate=0.1,
        depth=6,
        l2_leaf_reg=3.0,  # CatBoost's default, spelled out: where the search starts
        random_seed=seed,
        thread_count=1,
        logging_level="Silent",
        allow_writing_files=False,  # no catboost_info/ in the working directory
    )


def _svm(task: str, seed: int) -> Any:
    if task in CLASSIFICATION:
        return SVC(probability=True, random_state=seed)
    return StandardizedSVR()


def _knn(task: str, seed: int) -> Any:
    cls = KNeighborsClassifier if task in CLASSIFICATION else KNeighborsRegressor
    return cls(n_neighbors=10, weights="distance", n_jobs=1)


def _mlp(task: str, seed: int) -> Any:
    cls = MLPClassifier if task in CLASSIFICATION else StandardizedMLPRegressor
    return cls(
        hidden_layer_sizes=(64,),
        learning_rate_init=0.01,  # scikit-learn's 0.001 barely moves on a small table
        early_stopping=True,
        n_iter_no_change=10,
        max_iter=300,
        random_state=seed,
    )

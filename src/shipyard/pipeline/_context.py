"""What the steps of a run share: the prepared data and the run's handles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from shipyard import data as sd
from shipyard.features import build_features, native_category_columns
from shipyard.pipeline._events import EventHandler
from shipyard.spec import FeaturesSpec, ProjectSpec
from shipyard.tracking import Run, Tracker
from shipyard.train import Catalogue, FoldEngine, LocalEngine, apply_class_weight, make_pipeline

__all__ = ["Prepared", "RunContext", "build_pipeline", "warn_once"]


@dataclass
class Prepared:
    """The data a run trains on, validated, split and typed.

    Attributes:
        frame: the rows used (PII dropped or hashed).
        x, y: the model's inputs and target, for every row.
        task, metric: the task and the primary metric.
        signature: the model's inputs and target.
        fingerprint: the dataset's content hash.
        warnings: the validation warnings, as sentences.
        train_idx, test_idx: the training part and the holdout (positions in ``x``).
        folds: the CV folds, as positions within the training part.
        estimators: each candidate's unfitted estimator, by label (the search adds its best).
    """

    frame: pd.DataFrame
    x: pd.DataFrame
    y: pd.Series
    task: str
    metric: str
    signature: sd.Signature
    fingerprint: str
    warnings: list[str]
    train_idx: np.ndarray
    test_idx: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    estimators: dict[str, Any]

    @cached_property
    def train_part(self) -> tuple[pd.DataFrame, pd.Series]:
        """The training part's inputs and target: the same objects every time it is asked
        (an engine then sends them to its workers once per run)."""
        return self.x.iloc[self.train_idx], self.y.iloc[self.train_idx]


@dataclass(frozen=True)
class RunContext:
    """A run's steps' shared handles: each step takes this and the part of the spec it needs.

    Attributes:
        spec: the project file.
        prepared: the data.
        tracker: records child runs; ``run`` is the run itself.
        on_event: receives progress events.
        catalogue: the model families.
        started: ``time.monotonic()`` when the run began (a search's budget is the run's).
        warn: says a warning once (however many trials meet it).
        engine: where cross-validation folds are fitted (in this process by default).
    """

    spec: ProjectSpec
    prepared: Prepared
    tracker: Tracker
    run: Run
    on_event: EventHandler
    catalogue: Catalogue
    started: float
    warn: Callable[[str], None]
    engine: FoldEngine = field(default_factory=LocalEngine)

    @property
    def project(self) -> str:
        """The project's name (every child run's)."""
        return self.spec.name

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self.spec.seed


def build_pipeline(
    spec: ProjectSpec, prepared: Prepared, estimator: Any, *, warn: Callable[[str], None]
) -> Any:
    """The unfitted pipeline of one candidate, as the project file asks: the features with
    their options (``features:``), the class weights and the resampling (``imbalance:``)."""
    weighting = apply_class_weight(
        estimator, spec.imbalance.class_weight, y=prepared.y.iloc[prepared.train_idx]
    )
    if spec.imbalance.class_weight is not None and not weighting.applied:
        warn(f"imbalance.class_weight: {weighting.reason}")
    estimator = weighting.estimator
    native = _categorical_param(estimator)
    options = feature_options(spec, prepared.signature, native=native is not None)
    features = build_features(
        prepared.signature,
        options,
        task=prepared.task,
        seed=spec.split.seed,
        linear=type(estimator).__module__.startswith("sklearn.linear_model"),
        dense=not _takes_sparse(estimator),
        native_categories=native is not None,
    )
    if native is not None and options.select is None:
        columns = native_category_columns(prepared.signature, options)
        if columns:
            estimator = clone(estimator).set_params(**{native: list(range(len(columns)))})
    return make_pipeline(
        prepared.signature,
        estimator,
        features=features,
        resample=spec.imbalance.resample,
        seed=spec.seed,
    )


def feature_options(
    spec: ProjectSpec, signature: sd.Signature, *, native: bool = False
) -> FeaturesSpec:
    """The project's ``features`` options, with the ``string`` inputs no option names (the
    code-like columns the Signature keeps, see :func:`shipyard.data.build_signature`) added to
    ``target_encode``, unless the estimator splits on categories itself (``native``: they are
    then its category columns, see :func:`shipyard.features.build_features`)."""
    named = {*spec.features.text, *spec.features.target_encode}
    codes = [c.name for c in signature.inputs if c.kind == "string" and c.name not in named]
    if not codes or native:
        return spec.features
    return spec.features.model_copy(
        update={"target_encode": [*spec.features.target_encode, *codes]}
    )


def _categorical_param(estimator: Any) -> str | None:
    """The parameter through which ``estimator`` (or the one it wraps) is told which input
    columns hold category numbers (Shipyard's LightGBM estimators), or ``None``."""
    try:
        names = estimator.get_params(deep=True)
    except Exception:  # not a scikit-learn estimator: it gets the encoded features
        return None
    return next(
        (n for n in names if n == "categorical_columns" or n.endswith("__categorical_columns")),
        None,
    )


def _takes_sparse(estimator: Any) -> bool:
    """Whether ``estimator`` accepts a sparse matrix (TF-IDF's output) as it is."""
    from sklearn.utils import get_tags

    try:
        return bool(get_tags(estimator).input_tags.sparse)
    except Exception:  # a third-party estimator without tags: give it dense input
        return False


def warn_once(on_event: EventHandler) -> Callable[[str], None]:
    """A warning function that passes each distinct message to ``on_event`` once."""
    from shipyard.pipeline._events import Event

    seen: set[str] = set()

    def warn(message: str) -> None:
        if message not in seen:
            seen.add(message)
            on_event(Event("warning", message))

    return warn

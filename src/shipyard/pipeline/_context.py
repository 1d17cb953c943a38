"""What the steps of a run share: the prepared data and the run's handles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard import data as sd
from shipyard.pipeline._events import EventHandler
from shipyard.spec import ProjectSpec
from shipyard.tracking import Run, Tracker
from shipyard.train import Catalogue

__all__ = ["Prepared", "RunContext"]


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
    """

    spec: ProjectSpec
    prepared: Prepared
    tracker: Tracker
    run: Run
    on_event: EventHandler
    catalogue: Catalogue
    started: float

    @property
    def project(self) -> str:
        """The project's name (every child run's)."""
        return self.spec.name

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self.spec.seed

"""Engines: where a candidate's cross-validation folds are fitted.

The local engine fits them one after another in this process. The Ray engine
(:class:`shipyard.train.RayEngine`, ``shipyard[ray]``) fits a trial's folds in parallel on a
pool of Ray actors. Both fit each fold with :func:`shipyard.train.fit_fold` and give the
folds back in fold order, so a search sees the same scores, in the same order, whichever engine
ran them.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, Protocol

import pandas as pd

from shipyard.train._cv import Fold, FoldOutcome, fit_fold

__all__ = ["FoldEngine", "LocalEngine"]


class FoldEngine(Protocol):
    """Fits the folds of one candidate and yields their outcomes in fold order.

    The consumer may stop early (a pruned trial): closing the iterator abandons the folds not
    yet given back.
    """

    name: str

    def fit_folds(
        self,
        pipeline: Any,
        x: pd.DataFrame,
        y: pd.Series,
        folds: Sequence[Fold],
        *,
        task: str,
        classes: Sequence[str] | None,
        keep_predictions: bool,
    ) -> Generator[FoldOutcome, None, None]: ...


class LocalEngine:
    """Fits each fold in this process, only when the consumer asks for it (a pruned trial
    fits no more folds)."""

    name = "local"

    def fit_folds(
        self,
        pipeline: Any,
        x: pd.DataFrame,
        y: pd.Series,
        folds: Sequence[Fold],
        *,
        task: str,
        classes: Sequence[str] | None,
        keep_predictions: bool,
    ) -> Generator[FoldOutcome, None, None]:
        """Yield each fold's outcome, fitted on demand."""
        for train, test in folds:
            yield fit_fold(
                pipeline, x, y, train, test, task=task, classes=classes, keep=keep_predictions
            )

"""Predictions: what every runtime returns, and how it is written out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Predictions"]


@dataclass(frozen=True)
class Predictions:
    """A batch of predictions.

    Attributes:
        labels: predicted class labels (classifiers, as strings) or values (regression).
        probabilities: ``(n_rows, n_classes)`` class probabilities, ``None`` for regression.
        classes: the class labels in the probability columns' order.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None = None
    classes: tuple[str, ...] | None = None

    @classmethod
    def from_probabilities(cls, proba: np.ndarray, classes: Sequence[str]) -> Predictions:
        """Classifier predictions: the label is the most probable class (first on ties)."""
        labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        return cls(labels=labels, probabilities=proba, classes=tuple(classes))

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int) -> Predictions:
        """The first ``n`` rows."""
        if n >= len(self.labels):
            return self
        proba = None if self.probabilities is None else self.probabilities[:n]
        return Predictions(labels=self.labels[:n], probabilities=proba, classes=self.classes)

    def to_frame(self) -> pd.DataFrame:
        """One row per input: ``prediction`` and, for classifiers, ``proba_<class>``."""
        out = pd.DataFrame({"prediction": self.labels})
        if self.probabilities is not None and self.classes is not None:
            for i, cls in enumerate(self.classes):
                out[f"proba_{cls}"] = self.probabilities[:, i]
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-ready records: ``{"prediction": ..., "probabilities": {class: p}}``."""
        labels = self.labels.tolist()
        if self.probabilities is None or self.classes is None:
            return [{"prediction": v} for v in labels]
        probs = self.probabilities.tolist()
        return [
            {"prediction": v, "probabilities": dict(zip(self.classes, p, strict=True))}
            for v, p in zip(labels, probs, strict=True)
        ]

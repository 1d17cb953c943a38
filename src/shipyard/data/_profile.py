"""Reference profiles: compact statistics of the training data and of the model's predictions.

A profile travels in the model package (``profile.json``) so that monitoring can later compare
live inputs and predictions with what the model was trained on (drift) without the training
data. Numeric columns keep quantile-based bin edges and counts, the shape drift tests need
(PSI, KS on binned data); categories keep their frequencies.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shipyard.data._signature import Signature

__all__ = [
    "CategoricalProfile",
    "ColumnProfile",
    "DatasetProfile",
    "DatetimeProfile",
    "NumericProfile",
    "ReferenceProfile",
    "profile_frame",
    "profile_values",
]

QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
MAX_CATEGORIES = 200


class _Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(description="non-missing values")
    missing: int = Field(description="missing values")


class NumericProfile(_Profile):
    """Numbers: moments, quantiles and a histogram over quantile-based bins."""

    kind: Literal["numeric"] = "numeric"
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = Field(default_factory=dict)
    bin_edges: list[float] = Field(default_factory=list)
    bin_counts: list[int] = Field(default_factory=list)


class CategoricalProfile(_Profile):
    """Categories: how often each appears (the most frequent ``MAX_CATEGORIES``)."""

    kind: Literal["categorical"] = "categorical"
    frequencies: dict[str, int] = Field(default_factory=dict)
    other: int = 0


class DatetimeProfile(_Profile):
    """Datetimes: the covered range."""

    kind: Literal["datetime"] = "datetime"
    minimum: str | None = None
    maximum: str | None = None


ColumnProfile = Annotated[
    NumericProfile | CategoricalProfile | DatetimeProfile, Field(discriminator="kind")
]


class DatasetProfile(BaseModel):
    """The profile of a dataset's columns (and, in a model package, of its predictions)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_rows: int
    columns: dict[str, ColumnProfile]

    def to_json(self) -> str:
        """Serialise to JSON."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> DatasetProfile:
        """Parse a profile written by :meth:`to_json`."""
        return cls.model_validate_json(text)


class ReferenceProfile(BaseModel):
    """What a model saw in training: its inputs, and its own predictions on the holdout.

    Attributes:
        inputs: the training rows' input columns.
        predictions: the holdout predictions (``prediction``; for classifiers also
            ``confidence``, the top class probability).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: DatasetProfile
    predictions: dict[str, ColumnProfile] = Field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise to JSON."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        """Parse a profile written by :meth:`to_json`."""
        return cls.model_validate_json(text)


def profile_frame(frame: pd.DataFrame, signature: Signature, *, bins: int = 10) -> DatasetProfile:
    """Profile the Signature's input columns of a frame in canonical dtypes.

    Args:
        frame: data as :func:`shipyard.data.coerce_frame` returns it.
        signature: which columns to profile and how (numeric, category, datetime).
        bins: the number of quantile bins for numeric columns.
    """
    columns: dict[str, ColumnProfile] = {}
    for col in signature.inputs:
        if col.kind == "datetime":
            columns[col.name] = _datetime(frame[col.name])
        elif col.kind in ("category", "string"):
            columns[col.name] = _categorical(frame[col.name])
        else:
            columns[col.name] = _numeric(frame[col.name].to_numpy(dtype=float), bins)
    return DatasetProfile(n_rows=len(frame), columns=columns)


def profile_values(values: np.ndarray, *, categorical: bool, bins: int = 10) -> ColumnProfile:
    """Profile one array (predicted labels, probabilities, predicted values)."""
    if categorical:
        return _categorical(pd.Series(values, dtype=object))
    return _numeric(np.asarray(values, dtype=float), bins)


def _numeric(values: np.ndarray, bins: int) -> NumericProfile:
    present = values[~np.isnan(values)]
    missing = int(values.size - present.size)
    if present.size == 0:
        return NumericProfile(count=0, missing=missing)
    quantiles = np.quantile(present, QUANTILES)
    edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:  # a constant column: one bin around its value
        edges = np.array([edges[0], edges[0]])
    counts, _ = np.histogram(present, bins=edges)
    return NumericProfile(
        count=int(present.size),
        missing=missing,
        mean=float(present.mean()),
        std=float(present.std()),
        quantiles={f"{q:g}": float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        bin_edges=[float(e) for e in edges],
        bin_counts=[int(c) for c in counts],
    )


def _categorical(series: pd.Series) -> CategoricalProfile:
    present = series.dropna().astype(str)
    counts = present.value_counts(sort=True)
    top = counts.iloc[:MAX_CATEGORIES]
    return CategoricalProfile(
        count=int(present.size),
        missing=int(series.size - present.size),
        frequencies={str(k): int(v) for k, v in top.items()},
        other=int(counts.iloc[MAX_CATEGORIES:].sum()),
    )


def _datetime(series: pd.Series) -> DatetimeProfile:
    values = pd.to_datetime(series, errors="coerce")
    present = values.dropna()
    if present.empty:
        return DatetimeProfile(count=0, missing=int(series.size))
    return DatetimeProfile(
        count=int(present.size),
        missing=int(series.size - present.size),
        minimum=present.min().isoformat(),
        maximum=present.max().isoformat(),
    )

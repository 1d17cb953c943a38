"""The reference sample: real values of a model's training inputs and holdout predictions.

``profile.json`` summarises the training data in bins, enough to draw it; exact drift tests
(KS, Wasserstein, chi-square) need values. Each package therefore keeps a bounded, seeded sample:

- ``reference_inputs.parquet``: up to ``monitoring.reference_rows`` training rows, the model's
  input columns as they were read;
- ``reference_predictions.parquet``: up to as many holdout rows' ``prediction``,
  ``proba.<class>`` (classifiers) and ``target`` (the true value): the model's own behaviour on
  data it did not see, named as the prediction log names them.

The bytes are kept as stored (and sha256-verified by the registry); they are decoded only when
asked for, so a server loading the package pays nothing for them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd

__all__ = ["REFERENCE_INPUTS_FILE", "REFERENCE_PREDICTIONS_FILE", "ReferenceSample"]

REFERENCE_INPUTS_FILE = "reference_inputs.parquet"
REFERENCE_PREDICTIONS_FILE = "reference_predictions.parquet"


@dataclass(frozen=True)
class ReferenceSample:
    """A model's reference sample, as Parquet bytes.

    Attributes:
        inputs_parquet: the training inputs sample.
        predictions_parquet: the holdout predictions sample.
    """

    inputs_parquet: bytes
    predictions_parquet: bytes

    @classmethod
    def build(
        cls, inputs: pd.DataFrame, predictions: pd.DataFrame, *, max_rows: int, seed: int
    ) -> ReferenceSample:
        """Draw at most ``max_rows`` rows of each frame, without replacement, in their order.

        Args:
            inputs: the training rows' input columns.
            predictions: the holdout rows' ``prediction``, ``proba.<class>`` and ``target``.
            max_rows: the most rows kept of each.
            seed: the seed of the draw: the same data and seed keep the same rows.
        """
        return cls(
            _parquet(_sample(inputs, max_rows, seed)),
            _parquet(_sample(predictions, max_rows, seed)),
        )

    def inputs(self) -> pd.DataFrame:
        """The training inputs sample."""
        return pd.read_parquet(io.BytesIO(self.inputs_parquet))

    def predictions(self) -> pd.DataFrame:
        """The holdout predictions sample."""
        return pd.read_parquet(io.BytesIO(self.predictions_parquet))


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed).sort_index()
    return frame.reset_index(drop=True)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()

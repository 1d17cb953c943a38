"""Task inference: binary or multiclass classification, or regression, from the target.

Rules, on the non-missing target values:

* bool, text and categorical targets are classes: ``binary`` with two, else ``multiclass``;
* numeric targets with exactly two distinct values are ``binary`` (0/1, 1/2, ...);
* numeric targets with a fractional value are ``regression``;
* integer-valued targets are ``multiclass`` when they have at most 20 distinct values and at
  least two rows per value on average (``n_distinct <= n_rows / 2``), else ``regression``.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from shipyard.errors import DataError

__all__ = ["infer_task"]

logger = logging.getLogger(__name__)

MAX_INTEGER_CLASSES = 20


def infer_task(y: pd.Series) -> Literal["binary", "multiclass", "regression"]:
    """Guess the task from the target column.

    Args:
        y: the target values (missing values are ignored).

    Returns:
        ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Raises:
        DataError: when the target has fewer than two distinct non-missing values.

    Example:
        >>> infer_task(pd.Series(["yes", "no", "yes"]))
        'binary'
    """
    present = y.dropna()
    n_distinct = int(present.nunique())
    if n_distinct < 2:
        msg = (
            f"the target {y.name!r} has {n_distinct} distinct non-missing value(s) "
            f"({present.unique()[:1].tolist()}) in {len(y)} rows; a model needs at least two "
            "(check data.target names the right column, or the source's filter)"
        )
        raise DataError(msg)
    task = _task_of(present, n_distinct)
    logger.debug("target %r: %d distinct values -> %s", y.name, n_distinct, task)
    return task


def _task_of(present: pd.Series, n_distinct: int) -> Literal["binary", "multiclass", "regression"]:
    dtype = present.dtype
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if not numeric:
        return "binary" if n_distinct == 2 else "multiclass"
    if n_distinct == 2:
        return "binary"
    values = present.to_numpy(dtype="float64")
    whole = bool(np.all(values == np.round(values)))
    if whole and n_distinct <= MAX_INTEGER_CLASSES and n_distinct <= len(values) / 2:
        return "multiclass"
    return "regression"

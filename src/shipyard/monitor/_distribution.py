"""The prediction distribution a check keeps: compact enough to store with every check, so
that the UI can draw it over time without the prediction log.

A classifier's is the share of each predicted class in the reference and in the window
(:func:`class_share_summary`); a regression's, the deciles of the predicted value in both
(:func:`quantile_summary`). Both are JSON-ready dicts (a check's ``summary["distribution"]``).

Example:
    >>> class_share_summary({"a": 0.6, "b": 0.4}, {"a": 0.25, "b": 0.75})["current"]
    {'a': 0.25, 'b': 0.75}
    >>> quantile_summary(range(101), range(50, 151))["current"][4]  # the median
    100.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["MAX_CLASSES", "OTHER", "QUANTILES", "class_share_summary", "quantile_summary"]

QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""The quantiles kept of a regression's predictions: the deciles (the median is the fifth)."""
MAX_CLASSES = 30
"""The most classes kept by name; the rarest beyond them are summed as :data:`OTHER`."""
OTHER = "(other)"
"""The name of the classes summed beyond :data:`MAX_CLASSES`."""


def class_share_summary(
    reference: Mapping[str, float], current: Mapping[str, float]
) -> dict[str, Any]:
    """Each predicted class's share in the reference and in the window (every class named in
    either, a class absent from one at 0; beyond :data:`MAX_CLASSES` classes, the rarest are
    summed as :data:`OTHER`).

    Returns:
        ``{"kind": "classes", "reference": {class: share}, "current": {class: share}}``,
        classes by their reference share, most common first.
    """
    names = sorted(
        set(reference) | set(current),
        key=lambda c: (-reference.get(c, 0.0), -current.get(c, 0.0), c),
    )
    kept = names if len(names) <= MAX_CLASSES else names[: MAX_CLASSES - 1]

    def shares(found: Mapping[str, float]) -> dict[str, float]:
        out = {name: _round(found.get(name, 0.0)) for name in kept}
        if len(kept) < len(names):
            out[OTHER] = _round(sum(v for k, v in found.items() if k not in set(kept)))
        return out

    return {"kind": "classes", "reference": shares(reference), "current": shares(current)}


def quantile_summary(reference: Iterable[Any], current: Iterable[Any]) -> dict[str, Any]:
    """The :data:`QUANTILES` of a predicted value in the reference and in the window (missing
    and infinite values left out; ``None`` for a side without a finite value).

    Returns:
        ``{"kind": "quantiles", "quantiles": [...], "reference": [...], "current": [...]}``.
    """
    return {
        "kind": "quantiles",
        "quantiles": list(QUANTILES),
        "reference": _quantiles(reference),
        "current": _quantiles(current),
    }


def _quantiles(values: Iterable[Any]) -> list[float] | None:
    array = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return None
    return [_round(float(v)) for v in np.quantile(array, QUANTILES)]


def _round(value: float) -> float:
    """Six significant digits: enough for a chart, short in the store."""
    return float(f"{value:.6g}")

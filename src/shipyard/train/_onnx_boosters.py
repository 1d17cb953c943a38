"""ONNX converters for the catalogue's boosting estimators.

skl2onnx finds a converter by the estimator's exact type, so the early-stopping subclasses
(:mod:`._lightgbm`, :mod:`._xgboost`) need the libraries' converters registered under their
own names; XGBoost's own classes are registered too. Both onnxmltools converters keep only
the trees up to the best iteration.

XGBoost's ``hist`` thresholds are training values themselves (a row equal to one goes right),
and the graph computes the features in float32 where scikit-learn computes them in float64:
a row at a threshold may land one rounding error below it and go left. So the XGBoost
converter here lowers every threshold by about eight float32 rounding errors, which sends
those rows right, as XGBoost does; only a row within that distance below a threshold (not a
training value) would now differ. CatBoost's estimators have no converter: their conversion
fails with :class:`~shipyard.train.OnnxConversionError` and the model runs on the
scikit-learn runtime.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["register_booster_converters"]

logger = logging.getLogger(__name__)

_CLASSIFIER_OPTIONS = {"nocl": [True, False], "zipmap": [True, False, "columns"]}

_registered = False
_NUDGE = 2.0**-20  # relative: eight float32 rounding errors
_NUDGE_FLOOR = 1e-7  # near zero


def register_booster_converters() -> None:
    """Teach skl2onnx the boosting estimators (once per process; XGBoost when installed)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    for classifier, regressor, converter in _converters():
        for model, shapes, options in (
            (classifier, calculate_linear_classifier_output_shapes, _CLASSIFIER_OPTIONS),
            (regressor, calculate_linear_regressor_output_shapes, None),
        ):
            update_registered_converter(
                model,
                f"Shipyard{model.__module__.replace('.', '')}{model.__name__}",
                shapes,
                converter,
                options=options,
                overwrite=True,
            )
    _registered = True


def _converters() -> list[tuple[type, type, Any]]:
    """``(classifier, regressor, converter)`` for each library that is installed."""
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

    from shipyard.train._lightgbm import EarlyStoppingLGBMClassifier, EarlyStoppingLGBMRegressor

    out: list[tuple[type, type, Any]] = [
        (EarlyStoppingLGBMClassifier, EarlyStoppingLGBMRegressor, convert_lightgbm)
    ]
    try:
        import xgboost
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    except ImportError:
        logger.debug("xgboost is not installed: no XGBoost converters")
        return out
    from shipyard.train._xgboost import EarlyStoppingXGBClassifier, EarlyStoppingXGBRegressor

    def convert(scope: Any, operator: Any, container: Any) -> None:
        before = len(container.nodes)
        convert_xgboost(scope, operator, container)
        for node in container.nodes[before:]:
            if node.op_type.startswith("TreeEnsemble"):
                _lower_thresholds(node)

    out += [
        (xgboost.XGBClassifier, xgboost.XGBRegressor, convert),
        (EarlyStoppingXGBClassifier, EarlyStoppingXGBRegressor, convert),
    ]
    return out


def _lower_thresholds(node: Any) -> None:
    """Lower a tree ensemble's split thresholds (``x < t``) a little; see the module."""
    import numpy as np

    for attr in node.attribute:
        if attr.name == "nodes_values":
            t = np.asarray(attr.floats, dtype=np.float64)
            lowered = t - np.maximum(np.abs(t) * _NUDGE, _NUDGE_FLOOR)
            del attr.floats[:]
            attr.floats.extend(lowered.astype(np.float32).tolist())

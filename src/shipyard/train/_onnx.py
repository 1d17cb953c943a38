"""Convert a fitted pipeline to ONNX, so the server can run it without sklearn and pandas.

The graph takes one input per Signature column, shaped ``(n, 1)``: ``float32`` for numbers,
integers and booleans (NaN for missing) and strings for categories (``""`` for missing). This
is the feed :class:`shipyard.model.OnnxRuntime` builds from records. The converters come from
skl2onnx (sklearn) and onnxmltools (LightGBM); two gaps in them are filled here:

- ``SimpleImputer(add_indicator=True)``, which skl2onnx cannot convert: imputation plus the
  missing-value indicator columns, concatenated as sklearn does.
- A categorical ``SimpleImputer`` whose missing value is NaN: skl2onnx needs a string there,
  so the conversion works on a copy whose imputer treats ``""`` as missing, the feed's marker.

Whether the graph reproduces the pipeline is checked by the caller on real data (see
:func:`shipyard.model.compare_predictions`); this module only converts.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import numpy as np

from shipyard.data import Signature
from shipyard.errors import ShipyardError

__all__ = ["ONNX_OPSETS", "OnnxConversionError", "convert_to_onnx"]

logger = logging.getLogger(__name__)

ONNX_OPSETS = {"": 17, "ai.onnx.ml": 3}
"""The operator sets the graphs target (onnxruntime >= 1.14 runs them)."""

_NUMERIC_KINDS = frozenset({"number", "integer", "boolean"})
_CATEGORY_KINDS = frozenset({"category"})


class OnnxConversionError(ShipyardError):
    """The pipeline cannot be converted to ONNX; the message says why."""


def convert_to_onnx(pipeline: Any, signature: Signature) -> bytes:
    """Convert a fitted sklearn pipeline (features + estimator) to a serialised ONNX model.

    Args:
        pipeline: the fitted ``Pipeline`` from :func:`shipyard.train.make_pipeline`.
        signature: its inputs; each becomes one ``(n, 1)`` graph input of the same name.

    Returns:
        The ONNX model's bytes. Classifiers output ``label`` and ``probabilities`` (one column
        per class, in ``pipeline.classes_`` order); regressors output ``variable``.

    Raises:
        OnnxConversionError: a column kind (datetime, free text) or an estimator has no
            converter, or the converter failed; the message names which.
    """
    unsupported = [
        f"{c.name} ({c.kind})"
        for c in signature.inputs
        if c.kind not in _NUMERIC_KINDS | _CATEGORY_KINDS
    ]
    if unsupported:
        msg = f"no ONNX conversion for input columns {', '.join(unsupported)}"
        raise OnnxConversionError(msg)
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError as exc:  # pragma: no cover - a core dependency
        msg = f"skl2onnx is not installed ({exc}); reinstall shipyard"
        raise OnnxConversionError(msg) from exc
    _register_converters()
    graph_input = copy.deepcopy(pipeline)
    _string_imputers_use_empty_marker(graph_input)
    inputs = [
        (
            col.name,
            FloatTensorType([None, 1])
            if col.kind in _NUMERIC_KINDS
            else StringTensorType([None, 1]),
        )
        for col in signature.inputs
    ]
    estimator = graph_input.steps[-1][1]
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "classes_") else None
    try:
        onx = convert_sklearn(
            graph_input, initial_types=inputs, options=options, target_opset=ONNX_OPSETS
        )
    except Exception as exc:  # the converters raise RuntimeError, NotImplementedError, ...
        text = str(exc).strip()
        reason = text.splitlines()[0][:200] if text else type(exc).__name__
        msg = f"the ONNX converters cannot convert {type(estimator).__name__}: {reason}"
        raise OnnxConversionError(msg) from exc
    return bytes(onx.SerializeToString())


def _string_imputers_use_empty_marker(pipeline: Any) -> None:
    """On a copy: string-filling imputers treat ``""`` (the feed's marker) as missing."""
    from sklearn.impute import SimpleImputer

    for step in _walk(pipeline):
        if (
            isinstance(step, SimpleImputer)
            and isinstance(step.fill_value, str)
            and _is_nan(step.missing_values)
        ):
            step.missing_values = ""


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _walk(estimator: Any) -> list[Any]:
    """The estimator and every estimator nested in pipelines, column transformers and
    ensembles."""
    out = [estimator]
    for attr in ("steps", "transformers_"):
        for item in getattr(estimator, attr, None) or []:
            out += _walk(item[1])
    for member in getattr(estimator, "estimators_", None) or []:  # an ensemble's members
        out += _walk(member)
    return out


_registered = False


def _register_converters() -> None:
    """Teach skl2onnx LightGBM and imputers with missing-value indicators (once per process)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from sklearn.impute import SimpleImputer

    update_registered_converter(
        SimpleImputer,
        "SklearnSimpleImputer",
        _imputer_shape,
        _convert_imputer,
        overwrite=True,
    )
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:  # pragma: no cover - both are core dependencies
        logger.warning("onnxmltools or lightgbm missing: LightGBM models will not convert")
    else:
        classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=classifier_options,
        )
        update_registered_converter(
            LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
        )
    _registered = True


def _imputer_shape(operator: Any) -> None:
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes

    calculate_sklearn_imputer_output_shapes(operator)
    indicator = getattr(operator.raw_operator, "indicator_", None)
    if indicator is not None:
        n_imputed = operator.outputs[0].type.shape[1]
        operator.outputs[0].type.shape = [None, n_imputed + len(indicator.features_)]


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """SimpleImputer; with ``add_indicator``: ``concat(imputed, isnan(x)[:, features_])``."""
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    imputer = operator.raw_operator
    indicator = getattr(imputer, "indicator_", None)
    if indicator is None or isinstance(operator.inputs[0].type, StringTensorType):
        if indicator is not None:
            msg = "missing-value indicators on string columns"
            raise NotImplementedError(msg)
        convert_sklearn_imputer(scope, operator, container)
        return
    _convert_numeric_imputer_with_indicator(scope, operator, container, imputer, indicator)


def _convert_numeric_imputer_with_indicator(
    scope: Any, operator: Any, container: Any, imputer: Any, indicator: Any
) -> None:
    from skl2onnx.common._apply_operation import apply_concat
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.proto import onnx_proto

    if not _is_nan(imputer.missing_values):
        msg = f"indicators for missing_values={imputer.missing_values!r} (only NaN converts)"
        raise NotImplementedError(msg)
    x = concatenate_variables(scope, operator.inputs, container)
    imputed = scope.get_unique_variable_name("imputed")
    container.add_node(
        "Imputer",
        [x],
        [imputed],
        op_domain="ai.onnx.ml",
        name=scope.get_unique_operator_name("Imputer"),
        imputed_value_floats=np.asarray(imputer.statistics_, dtype=np.float32),
        replaced_value_float=float("nan"),
    )
    is_nan = scope.get_unique_variable_name("is_nan")
    container.add_node("IsNaN", [x], [is_nan], name=scope.get_unique_operator_name("IsNaN"))
    features = [int(i) for i in indicator.features_]
    index = scope.get_unique_variable_name("indicator_features")
    container.add_initializer(index, onnx_proto.TensorProto.INT64, [len(features)], features)
    picked = scope.get_unique_variable_name("indicators")
    container.add_node(
        "Gather", [is_nan, index], [picked], axis=1, name=scope.get_unique_operator_name("Gather")
    )
    as_float = scope.get_unique_variable_name("indicators_float")
    container.add_node(
        "Cast",
        [picked],
        [as_float],
        to=onnx_proto.TensorProto.FLOAT,
        name=scope.get_unique_operator_name("Cast"),
    )
    apply_concat(scope, [imputed, as_float], operator.outputs[0].full_name, container, axis=1)

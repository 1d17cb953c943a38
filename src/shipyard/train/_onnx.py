"""Convert a fitted pipeline to ONNX, so the server can run it without sklearn and pandas.

The graph takes one input per Signature column, shaped ``(n, 1)``: ``float32`` for numbers,
integers and booleans (NaN for missing) and strings for categories and text (``""`` for
missing). This is the feed :class:`shipyard.model.OnnxRuntime` builds from records. The
converters come from skl2onnx (sklearn) and onnxmltools (LightGBM); their gaps are filled here:

- ``SimpleImputer(add_indicator=True)``, which skl2onnx cannot convert: imputation plus the
  missing-value indicator columns, concatenated as sklearn does.
- A categorical ``SimpleImputer`` whose missing value is NaN: skl2onnx needs a string there,
  so the conversion works on a copy whose imputer treats ``""`` as missing, the feed's marker.
- :class:`shipyard.features.NonNegativeTransform` (``features.transforms`` ``log``/``sqrt``)
  and ``MissingIndicator`` (binned columns' indicators), which have no converter in skl2onnx.
- ``PowerTransformer(method="yeo-johnson")``, whose skl2onnx converter turns a missing value
  into 0 (sklearn keeps it missing, for the imputer after it).

The feature options convert through skl2onnx's own converters: ``bins`` (``KBinsDiscretizer``),
``target_encode`` (``TargetEncoder``, on ``category`` or ``string`` inputs) and ``select``
(``SelectKBest``, ``SelectFromModel``, ``VarianceThreshold``). TF-IDF text features
(``features.text``) are refused: onnxruntime tokenises with re2 (ASCII ``\\w``) and lowercases
through a system locale, so a graph would score non-ASCII text differently from scikit-learn
(and fail to load where the locale is missing); such a model runs on the sklearn runtime.
So does a ``quantile`` transform (``QuantileTransformer`` to a normal distribution has no
converter) and target encoding for a multiclass target (skl2onnx converts binary and
continuous targets only).

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

__all__ = ["ONNX_OPSETS", "OnnxConversionError", "convert_to_onnx", "register_converters"]

logger = logging.getLogger(__name__)

ONNX_OPSETS = {"": 17, "ai.onnx.ml": 3}
"""The operator sets the graphs target (onnxruntime >= 1.14 runs them)."""

_NUMERIC_KINDS = frozenset({"number", "integer", "boolean"})
_TEXT_KINDS = frozenset({"category", "string"})


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
        OnnxConversionError: a column kind (datetime), a feature (TF-IDF text) or an estimator
            has no converter, or the converter failed; the message names which.
    """
    unsupported = [
        f"{c.name} ({c.kind})"
        for c in signature.inputs
        if c.kind not in _NUMERIC_KINDS | _TEXT_KINDS
    ]
    if unsupported:
        msg = f"no ONNX conversion for input columns {', '.join(unsupported)}"
        raise OnnxConversionError(msg)
    _refuse_unconvertible(pipeline)
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError as exc:  # pragma: no cover - a core dependency
        msg = f"skl2onnx is not installed ({exc}); reinstall shipyard"
        raise OnnxConversionError(msg) from exc
    register_converters()
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


def _refuse_unconvertible(pipeline: Any) -> None:
    """Refuse TF-IDF and normal quantile features (see the module docstring) and CatBoost
    models, by name."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import QuantileTransformer, TargetEncoder

    for step in _walk(pipeline):
        if any(cls.__module__.partition(".")[0] == "catboost" for cls in type(step).__mro__):
            # refused before any member converts (an ensemble's boosters take seconds)
            msg = f"{type(step).__name__} has no ONNX converter (CatBoost serves it)"
            raise OnnxConversionError(msg)
        if isinstance(step, QuantileTransformer) and step.output_distribution == "normal":
            msg = (
                "a quantile transform to a normal distribution (features.transforms: quantile) "
                "has no ONNX converter"
            )
            raise OnnxConversionError(msg)
        if isinstance(step, TargetEncoder) and step.target_type_ == "multiclass":
            msg = (
                "target encoding (features.target_encode) of a multiclass target has no ONNX "
                "converter"
            )
            raise OnnxConversionError(msg)

    columns: list[str] = []
    for step in _walk(pipeline):
        if isinstance(step, ColumnTransformer):
            for _, transformer, cols in step.transformers_:
                if any(isinstance(s, CountVectorizer) for s in _walk(transformer)):
                    columns += [str(c) for c in np.atleast_1d(cols)]
    if columns or any(isinstance(s, CountVectorizer) for s in _walk(pipeline)):
        msg = (
            f"TF-IDF text features (features.text: {columns}) do not convert: onnxruntime's "
            "tokenizer and lowercasing differ from scikit-learn's on non-ASCII text"
        )
        raise OnnxConversionError(msg)


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


def register_converters() -> None:
    """Teach skl2onnx LightGBM, imputers with missing-value indicators and the log/sqrt
    transform (once per process)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.preprocessing import PowerTransformer

    update_registered_converter(
        SimpleImputer,
        "SklearnSimpleImputer",
        _imputer_shape,
        _convert_imputer,
        overwrite=True,
    )
    from shipyard.features import NonNegativeTransform

    update_registered_converter(
        NonNegativeTransform,
        "ShipyardNonNegativeTransform",
        _same_shape,
        _convert_non_negative,
        overwrite=True,
    )
    update_registered_converter(
        MissingIndicator, "ShipyardMissingIndicator", _indicator_shape, _convert_indicator
    )
    update_registered_converter(
        PowerTransformer,
        "SklearnPowerTransformer",
        _same_shape,
        _convert_power_transformer,
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
    from shipyard.train._onnx_boosters import register_booster_converters

    register_booster_converters()  # the catalogue's early-stopping boosters, XGBoost
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
    as_float = scope.get_unique_variable_name("indicators_float")
    _emit_indicators(scope, container, x, indicator.features_, as_float)
    apply_concat(scope, [imputed, as_float], operator.outputs[0].full_name, container, axis=1)


def _emit_indicators(scope: Any, container: Any, x: str, features: Any, output: str) -> None:
    """``output = float(isnan(x)[:, features])``."""
    from skl2onnx.proto import onnx_proto

    is_nan = scope.get_unique_variable_name("is_nan")
    container.add_node("IsNaN", [x], [is_nan], name=scope.get_unique_operator_name("IsNaN"))
    columns = [int(i) for i in features]
    index = scope.get_unique_variable_name("indicator_features")
    container.add_initializer(index, onnx_proto.TensorProto.INT64, [len(columns)], columns)
    picked = scope.get_unique_variable_name("indicators")
    container.add_node(
        "Gather", [is_nan, index], [picked], axis=1, name=scope.get_unique_operator_name("Gather")
    )
    container.add_node(
        "Cast",
        [picked],
        [output],
        to=onnx_proto.TensorProto.FLOAT,
        name=scope.get_unique_operator_name("Cast"),
    )


def _same_shape(operator: Any) -> None:
    """Floats in, floats out, one output column per input column."""
    from skl2onnx.common.data_types import FloatTensorType

    n_columns = sum(i.type.shape[1] for i in operator.inputs)
    operator.outputs[0].type = FloatTensorType([None, n_columns])


def _convert_non_negative(scope: Any, operator: Any, container: Any) -> None:
    """``log1p(where(x < 0, 0, x))`` or ``sqrt(...)``; NaN stays NaN as in sklearn."""
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.proto import onnx_proto

    def name(prefix: str) -> str:
        return str(scope.get_unique_variable_name(prefix))

    def node(op: str, inputs: list[str], output: str) -> None:
        container.add_node(op, inputs, [output], name=scope.get_unique_operator_name(op))

    x = concatenate_variables(scope, operator.inputs, container)
    zero, one = name("zero"), name("one")
    container.add_initializer(zero, onnx_proto.TensorProto.FLOAT, [], [0.0])
    container.add_initializer(one, onnx_proto.TensorProto.FLOAT, [], [1.0])
    below, clipped = name("below_zero"), name("clipped")
    node("Less", [x, zero], below)
    node("Where", [below, zero, x], clipped)
    out = operator.outputs[0].full_name
    if operator.raw_operator.func == "sqrt":
        node("Sqrt", [clipped], out)
        return
    shifted = name("shifted")
    node("Add", [clipped, one], shifted)
    node("Log", [shifted], out)


def _indicator_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    n_columns = len(operator.raw_operator.features_)
    operator.outputs[0].type = FloatTensorType([None, n_columns])


def _convert_indicator(scope: Any, operator: Any, container: Any) -> None:
    """``MissingIndicator`` (NaN only): ``float(isnan(x)[:, features_])``."""
    from skl2onnx.operator_converters.common import concatenate_variables

    indicator = operator.raw_operator
    if not _is_nan(indicator.missing_values):
        msg = f"indicators for missing_values={indicator.missing_values!r} (only NaN converts)"
        raise NotImplementedError(msg)
    x = concatenate_variables(scope, operator.inputs, container)
    _emit_indicators(scope, container, x, indicator.features_, operator.outputs[0].full_name)


def _convert_power_transformer(scope: Any, operator: Any, container: Any) -> None:
    """Yeo-Johnson per column (then standardised), NaN staying NaN; Box-Cox as skl2onnx does.

    ``x >= 0``: ``((x + 1)^l - 1) / l`` (``log1p(x)`` when ``l == 0``); ``x < 0``:
    ``-((1 - x)^(2 - l) - 1) / (2 - l)`` (``-log1p(-x)`` when ``l == 2``), as sklearn computes.
    """
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.power_transformer import convert_powertransformer
    from skl2onnx.proto import onnx_proto

    transformer = operator.raw_operator
    if transformer.method != "yeo-johnson":
        convert_powertransformer(scope, operator, container)
        return
    lambdas = np.asarray(transformer.lambdas_, dtype=np.float64)
    eps = np.spacing(1.0)

    def const(prefix: str, values: Any, dtype: int = onnx_proto.TensorProto.FLOAT) -> str:
        values = np.atleast_1d(np.asarray(values))
        name = scope.get_unique_variable_name(prefix)
        container.add_initializer(name, dtype, list(values.shape), values.ravel().tolist())
        return str(name)

    def node(op: str, *inputs: str, output: str | None = None) -> str:
        out = output or str(scope.get_unique_variable_name(op.lower()))
        container.add_node(op, list(inputs), [out], name=scope.get_unique_operator_name(op))
        return out

    def branch(base: str, power: np.ndarray, is_log: np.ndarray) -> str:
        """``((base + 1)^p - 1) / p``, or ``log(base + 1)`` where ``is_log``: sklearn's terms."""
        shifted = node("Add", base, one)
        safe = np.where(is_log, 1.0, power)
        raised = node("Pow", shifted, const("power", safe.astype(np.float32)))
        ratio = node("Div", node("Sub", raised, one), const("divisor", safe.astype(np.float32)))
        mask = const("is_log", is_log, onnx_proto.TensorProto.BOOL)
        return node("Where", mask, node("Log", shifted), ratio)

    x = concatenate_variables(scope, operator.inputs, container)
    zero, one = const("zero", np.float32(0.0)), const("one", np.float32(1.0))
    negative = node("Less", x, zero)  # NaN is not negative: it flows through the x >= 0 terms
    positive_part = node("Where", negative, zero, x)
    negative_part = node("Neg", node("Where", negative, x, zero))
    upper = branch(positive_part, lambdas, np.abs(lambdas) < eps)
    lower = node("Neg", branch(negative_part, 2.0 - lambdas, np.abs(lambdas - 2.0) <= eps))
    transformed = node("Where", negative, lower, upper)
    scaler = getattr(transformer, "_scaler", None) if transformer.standardize else None
    out = operator.outputs[0].full_name
    if scaler is None:
        node("Identity", transformed, output=out)
        return
    centred = node("Sub", transformed, const("mean", scaler.mean_.astype(np.float32)))
    node("Div", centred, const("scale", scaler.scale_.astype(np.float32)), output=out)

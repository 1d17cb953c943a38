"""Turn a Signature into one sklearn ``ColumnTransformer``."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.data import Signature
from shipyard.errors import TrainingError
from shipyard.features._datetime import DatetimeFeatures

__all__ = ["MISSING_CATEGORY", "build_features"]

MISSING_CATEGORY = "__missing__"
"""Missing categorical values become this category of their own."""


def build_features(signature: Signature) -> ColumnTransformer:
    """Build the feature transformer for a Signature's inputs.

    Numeric and boolean columns: median imputation (with missing-value indicators) and
    scaling. Categories: missing values as a category of their own, then one-hot encoding
    that ignores categories unseen in training. Datetimes: calendar parts, imputed and scaled.
    Free text (``string``) never reaches a Signature built by
    :func:`shipyard.data.build_signature`, which leaves it out of the inputs with a warning; a
    hand-built Signature's ``string`` inputs are not transformed (the transformer drops them).

    Args:
        signature: the model's inputs; the frame given to ``fit``/``transform`` must have
            these columns with the dtypes of :func:`shipyard.data.coerce_frame`.

    Raises:
        TrainingError: no input column is a number, boolean, category or datetime.
    """
    by_kind: dict[str, list[str]] = {}
    for col in signature.inputs:
        by_kind.setdefault(col.kind, []).append(col.name)
    steps: list[tuple[str, Pipeline, list[str]]] = []
    numeric = by_kind.get("number", []) + by_kind.get("integer", []) + by_kind.get("boolean", [])
    if numeric:
        steps.append(("numeric", _numeric(), numeric))
    if by_kind.get("category"):
        steps.append(("category", _categorical(), by_kind["category"]))
    if by_kind.get("datetime"):
        pipe = make_pipeline(DatetimeFeatures(), *_numeric_steps())
        steps.append(("datetime", pipe, by_kind["datetime"]))
    if not steps:
        msg = (
            f"no usable feature columns among {signature.input_names}: every input is free "
            "text; declare some as 'category' under features.types"
        )
        raise TrainingError(msg)
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)


def _numeric() -> Pipeline:
    return make_pipeline(*_numeric_steps())


def _numeric_steps() -> list[SimpleImputer | StandardScaler]:
    return [
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    ]


def _categorical() -> Pipeline:
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )

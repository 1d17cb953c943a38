"""Feature pipelines: a Signature and the project's feature options become one sklearn
transformer (a ColumnTransformer, followed by a selector when ``features.select`` is set)."""

from shipyard.features._builder import (
    MISSING_CATEGORY,
    build_features,
    native_category_columns,
)
from shipyard.features._datetime import DatetimeFeatures
from shipyard.features._nonnegative import NonNegativeTransform
from shipyard.features._options import FeatureOptionProblem, check_feature_options

__all__ = [
    "MISSING_CATEGORY",
    "DatetimeFeatures",
    "FeatureOptionProblem",
    "NonNegativeTransform",
    "build_features",
    "check_feature_options",
    "native_category_columns",
]
